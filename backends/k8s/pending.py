"""Why a pod waits, in the scheduler's and the kubelet's own words, parsed into parts.

The scheduler's `PodScheduled=False/Unschedulable` message (the same text as the
`FailedScheduling` event) is a histogram of per-node reasons (pkg/scheduler FitError.Error):

    0/5 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: },
    4 Insufficient nvidia.com/gpu. preemption: 0/5 nodes are available: 5 No preemption victims found
    for incoming pod.

Entries are "<count> <reason>" sorted as strings and joined by ", "; a PreFilter failure has no
count (it is said of the pod, so of every node: `pod has unbound immediate
PersistentVolumeClaims`). After the histogram come further sentences (`no new claims to
deallocate,`) and the preemption verdict. Formats seen across releases, all accepted here:
- ≤1.21: no preemption part; taints as `node(s) had taint {k: v}, that the pod didn't tolerate`,
  selectors as `node(s) didn't match node selector`;
- 1.22–1.26: `preemption: …` whose own message ends with '.', so the text ends with `..`;
- 1.25–1.33: `node(s) had untolerated taint {k: v}`; 1.34+: `node(s) had untolerated taint(s)`
  (the taint is no longer named: the nodes' taints are read instead).
Entries split on ", <digit>", which no reason text contains (taint values cannot hold spaces).
Unknown reasons are kept verbatim with code OTHER, so a new wording degrades to honest text.

Container waiting reasons (ImagePullBackOff, CrashLoopBackOff, CreateContainerConfigError…) come
from the pod's `containerStatuses`, with the restart count and the last exit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from backends.k8s.capacity import is_gpu_resource
from backends.k8s.objects import ContainerStatus, Pod
from backends.types import PendingCode

_HEAD = re.compile(r"^\s*0/(?P<total>\d+) nodes are available:\s*")
_PREEMPTION = re.compile(r"(?:^|(?<=[\s,.]))preemption:\s*")
_SENTENCE_END = re.compile(r"\.\s+")
_ENTRY_SPLIT = re.compile(r",\s+(?=\d+\s)")
_COUNTED = re.compile(r"^(?P<count>\d+)\s+(?P<text>.+)$", re.DOTALL)
_INSUFFICIENT = re.compile(r"^Insufficient (?P<resource>\S+)$")
_TAINT_NAMED = re.compile(
    r"had (?:untolerated taints? \{(?P<new>[^}]*)\}|taints? \{(?P<old>[^}]*)\}, that the pod didn't tolerate)"
)
_TAINT_UNNAMED = re.compile(r"had untolerated taint\(s\)")
_AFFINITY = re.compile(
    r"didn't match (?:Pod's node affinity/selector|node selector|pod affinity rules|pod anti-affinity rules"
    r"|pod affinity/anti-affinity rules|pod topology spread constraints)"
    r"|didn't satisfy existing pods anti-affinity rules",
)
_CORDONED = re.compile(r"node\(s\) were unschedulable")
_VOLUME = re.compile(
    r"unbound immediate PersistentVolumeClaims|persistentvolumeclaim .* not found|volume node affinity "
    r"conflict|didn't find available persistent volumes to bind|unbound PersistentVolumeClaims",
    re.IGNORECASE,
)
# Taints the node lifecycle controller sets: the node is down or cordoned, not reserved.
NODE_STATE_TAINTS = {
    "node.kubernetes.io/not-ready": "not ready",
    "node.kubernetes.io/unreachable": "unreachable",
    "node.kubernetes.io/unschedulable": "cordoned",
    "node.kubernetes.io/network-unavailable": "without network",
    "node.kubernetes.io/disk-pressure": "short of disk",
    "node.kubernetes.io/memory-pressure": "short of memory",
    "node.kubernetes.io/pid-pressure": "short of process ids",
    "node.cloudprovider.kubernetes.io/uninitialized": "not initialised yet",
}


@dataclass(frozen=True)
class NodeVerdict:
    """One histogram entry: how many nodes said what."""

    nodes: int | None  # None: said of the pod itself (a PreFilter failure), so of every node
    text: str
    code: PendingCode
    resource: str | None = None  # "Insufficient <resource>"
    taint_key: str | None = None  # when the message names the taint
    taint_value: str | None = None


@dataclass(frozen=True)
class SchedulingFailure:
    raw: str
    total_nodes: int | None
    verdicts: tuple[NodeVerdict, ...]
    preemption: str | None = None
    other: tuple[str, ...] = ()

    @property
    def preemption_would_help(self) -> bool:
        text = (self.preemption or "").lower()
        return bool(text) and "not helpful" not in text and "no preemption victims" not in text


def classify(nodes: int | None, text: str) -> NodeVerdict:
    text = text.strip()
    insufficient = _INSUFFICIENT.match(text)
    if insufficient:
        resource = insufficient["resource"]
        code = (
            PendingCode.INSUFFICIENT_GPU
            if is_gpu_resource(resource) or "gpu" in resource
            else PendingCode.OTHER
        )
        return NodeVerdict(nodes, text, code, resource=resource)
    taint = _TAINT_NAMED.search(text)
    if taint:
        key, _, value = (taint["new"] if taint["new"] is not None else taint["old"]).partition(":")
        key, value = key.strip(), value.strip()
        code = PendingCode.NODES_UNAVAILABLE if key in NODE_STATE_TAINTS else PendingCode.UNTOLERATED_TAINT
        return NodeVerdict(nodes, text, code, taint_key=key, taint_value=value)
    if _TAINT_UNNAMED.search(text):
        return NodeVerdict(nodes, text, PendingCode.UNTOLERATED_TAINT)
    if _AFFINITY.search(text):
        return NodeVerdict(nodes, text, PendingCode.NODE_AFFINITY)
    if _CORDONED.search(text):
        return NodeVerdict(nodes, text, PendingCode.NODES_UNAVAILABLE)
    if _VOLUME.search(text):
        return NodeVerdict(nodes, text, PendingCode.UNBOUND_VOLUME)
    return NodeVerdict(nodes, text, PendingCode.OTHER)


def _entries(histogram: str) -> list[NodeVerdict]:
    verdicts = []
    for entry in _ENTRY_SPLIT.split(histogram):
        entry = entry.strip().rstrip(",").strip()
        if not entry:
            continue
        counted = _COUNTED.match(entry)
        if counted:
            verdicts.append(classify(int(counted["count"]), counted["text"]))
        else:
            verdicts.append(classify(None, entry))
    return verdicts


def _trimmed(text: str) -> str:
    return text.strip().rstrip(",").strip().rstrip(".").strip()


def parse_unschedulable(message: str) -> SchedulingFailure:
    """The parts of an Unschedulable/FailedScheduling message (any release's format)."""
    raw = message.strip()
    head = _HEAD.match(raw)
    if head is None:  # e.g. "no nodes available to schedule pods", or a plugin's own error
        return SchedulingFailure(raw, None, (classify(None, _trimmed(raw)),))
    rest = raw[head.end() :]
    preemption = None
    cut = _PREEMPTION.search(rest)
    if cut:
        preemption = _trimmed(rest[cut.end() :]) or None
        rest = rest[: cut.start()]
    sentences = [_trimmed(s) for s in _SENTENCE_END.split(_trimmed(rest))]
    sentences = [s for s in sentences if s]
    verdicts = _entries(sentences[0]) if sentences else []
    return SchedulingFailure(
        raw=raw,
        total_nodes=int(head["total"]),
        verdicts=tuple(verdicts),
        preemption=preemption,
        other=tuple(sentences[1:]),
    )


IMAGE_PULL_REASONS = frozenset(
    {
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "ErrImageNeverPull",
        "RegistryUnavailable",
        "SignatureValidationFailed",
    }
)
CRASH_REASONS = frozenset({"CrashLoopBackOff"})
STARTING_REASONS = frozenset({"ContainerCreating", "PodInitializing"})


@dataclass(frozen=True)
class ContainerProblem:
    pod: str
    container: str
    image: str
    code: PendingCode
    reason: str
    message: str
    restarts: int = 0
    last_exit_code: int | None = None
    last_exit_reason: str | None = None


def _problem(pod: Pod, status: ContainerStatus, spec_image: str) -> ContainerProblem | None:
    waiting = status.state.waiting
    if waiting is None or waiting.reason in STARTING_REASONS or not waiting.reason:
        return None
    if waiting.reason in IMAGE_PULL_REASONS:
        code = PendingCode.IMAGE_PULL
    elif waiting.reason in CRASH_REASONS:
        code = PendingCode.CRASH_LOOP
    else:
        code = PendingCode.OTHER
    last = status.last_state.terminated
    return ContainerProblem(
        pod=pod.metadata.name,
        container=status.name,
        image=status.image or spec_image,
        code=code,
        reason=waiting.reason,
        message=waiting.message,
        restarts=status.restart_count,
        last_exit_code=last.exit_code if last else None,
        last_exit_reason=last.reason if last else None,
    )


def container_problems(pod: Pod) -> list[ContainerProblem]:
    """Containers (init containers first) that wait for a reason other than starting up."""
    images = {c.name: c.image for c in (*pod.spec.init_containers, *pod.spec.containers)}
    problems = []
    for status in (*pod.status.init_container_statuses, *pod.status.container_statuses):
        problem = _problem(pod, status, images.get(status.name, ""))
        if problem is not None:
            problems.append(problem)
    return problems


def unschedulable_message(pod: Pod) -> str | None:
    """The scheduler's message when the pod is not scheduled because no node fits."""
    condition = pod.condition("PodScheduled")
    if condition is None or condition.status != "False":
        return None
    if condition.reason not in ("Unschedulable", "SchedulerError") and not condition.message:
        return None
    return condition.message or None
