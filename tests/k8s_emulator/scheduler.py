"""kube-scheduler's filtering step and its `Unschedulable` message, over plain dicts.

Each node runs the default filter plugins in their order and stops at the first that fails:
NodeUnschedulable ("node(s) were unschedulable"), TaintToleration ("node(s) had untolerated taint
{k: v}", NoSchedule/NoExecute only), NodeAffinity ("node(s) didn't match Pod's node affinity/selector")
and NodeResourcesFit ("Too many pods", one "Insufficient <resource>" per short resource, against
allocatable minus the requests of the node's non-terminated pods). The message is FitError's: the
reason histogram as "<count> <reason>" strings sorted as Go's sort.Strings sorts them, then the
preemption verdict per node ("No preemption victims found for incoming pod" where resources were
short, "Preemption is not helpful for scheduling" where no eviction could help). Among feasible
nodes the first by name wins, so tests can tell where a pod lands.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from tests.k8s_emulator import resources
from tests.k8s_emulator.events import record_event
from tests.k8s_emulator.kubelet import start_pod
from tests.k8s_emulator.nodes import UNSCHEDULABLE_TAINT
from tests.k8s_emulator.quantities import parse_quantity
from tests.k8s_emulator.selectors import match_values
from tests.k8s_emulator.state import ClusterState, MessageStyle

JsonObject = dict[str, Any]

UNSCHEDULABLE = "node(s) were unschedulable"
AFFINITY_MISMATCH = "node(s) didn't match Pod's node affinity/selector"
LEGACY_AFFINITY_MISMATCH = "node(s) didn't match node selector"
NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
_TERMINAL = ("Succeeded", "Failed")


def pod_requests(pod: JsonObject) -> dict[str, Fraction]:
    """Effective requests: the sum over containers, raised to any single init container's."""
    spec = pod.get("spec") or {}
    total: dict[str, Fraction] = {}
    for container in spec.get("containers") or []:
        for name, quantity in ((container.get("resources") or {}).get("requests") or {}).items():
            total[name] = total.get(name, Fraction(0)) + parse_quantity(quantity)
    for container in spec.get("initContainers") or []:
        for name, quantity in ((container.get("resources") or {}).get("requests") or {}).items():
            total[name] = max(total.get(name, Fraction(0)), parse_quantity(quantity))
    for name, quantity in (spec.get("overhead") or {}).items():
        total[name] = total.get(name, Fraction(0)) + parse_quantity(quantity)
    return total


def is_terminated(pod: JsonObject) -> bool:
    return (pod.get("status") or {}).get("phase") in _TERMINAL


@dataclass
class NodeRoom:
    node: JsonObject
    allocatable: dict[str, Fraction]
    requested: dict[str, Fraction] = field(default_factory=dict)
    pods: int = 0

    def add(self, requests: dict[str, Fraction]) -> None:
        self.pods += 1
        for name, value in requests.items():
            self.requested[name] = self.requested.get(name, Fraction(0)) + value


def node_rooms(state: ClusterState, request_cache: dict[str, dict[str, Fraction]]) -> list[NodeRoom]:
    """Every node with what its bound, non-terminated pods request (pods' requests are cached by uid)."""
    rooms = {
        stored.name: NodeRoom(
            stored.obj,
            {
                k: parse_quantity(v)
                for k, v in ((stored.obj.get("status") or {}).get("allocatable") or {}).items()
            },
        )
        for stored in state.store.items(resources.NODES)
    }
    for stored in state.store.items(resources.PODS):
        pod = stored.obj
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name or node_name not in rooms or is_terminated(pod):
            continue
        uid = pod["metadata"]["uid"]
        if uid not in request_cache:
            request_cache[uid] = pod_requests(pod)
        rooms[node_name].add(request_cache[uid])
    return list(rooms.values())


def tolerates(tolerations: Iterable[JsonObject], taint: JsonObject) -> bool:
    for toleration in tolerations:
        if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
            continue
        if toleration.get("key") and toleration["key"] != taint.get("key"):
            continue
        operator = toleration.get("operator") or "Equal"
        if operator == "Exists" or (toleration.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _matches_term(node: JsonObject, term: JsonObject) -> bool:
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    labels = node["metadata"].get("labels") or {}
    for expression in expressions:
        if not match_values(
            expression["operator"], labels.get(expression["key"]), expression.get("values") or []
        ):
            return False
    for expression in fields:
        value = node["metadata"]["name"] if expression["key"] == "metadata.name" else None
        if not match_values(expression["operator"], value, expression.get("values") or []):
            return False
    return True


def matches_node_affinity(pod: JsonObject, node: JsonObject) -> bool:
    spec = pod.get("spec") or {}
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not required:
        return True
    return any(_matches_term(node, term) for term in required.get("nodeSelectorTerms") or [])


@dataclass(frozen=True)
class Verdict:
    """Why one node cannot take the pod: its reasons, and whether evicting pods could help."""

    reasons: tuple[str, ...]
    resolvable: bool


def _taint_reason(taint: JsonObject, style: MessageStyle) -> str:
    if style is MessageStyle.UNTOLERATED_TAINTS:
        return "node(s) had untolerated taint(s)"
    if style is MessageStyle.NO_PREEMPTION:
        return f"node(s) had taint {{{taint['key']}: {taint.get('value', '')}}}, that the pod didn't tolerate"
    return f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"


def check_node(
    pod: JsonObject, requests: dict[str, Fraction], room: NodeRoom, style: MessageStyle
) -> Verdict | None:
    """None when the pod fits on the node, else the first failing filter's verdict."""
    spec = pod.get("spec") or {}
    tolerations = spec.get("tolerations") or []
    node = room.node
    if (node.get("spec") or {}).get("unschedulable") and not tolerates(
        tolerations, {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}
    ):
        return Verdict((UNSCHEDULABLE,), resolvable=False)
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return Verdict((_taint_reason(taint, style),), resolvable=False)
    if not matches_node_affinity(pod, node):
        mismatch = LEGACY_AFFINITY_MISMATCH if style is MessageStyle.NO_PREEMPTION else AFFINITY_MISMATCH
        return Verdict((mismatch,), resolvable=False)
    reasons: list[str] = []
    if room.pods + 1 > room.allocatable.get("pods", Fraction(110)):
        reasons.append("Too many pods")
    for name, wanted in requests.items():
        if wanted <= 0:
            continue
        free = room.allocatable.get(name, Fraction(0)) - room.requested.get(name, Fraction(0))
        if wanted > free:
            reasons.append(f"Insufficient {name}")
    return Verdict(tuple(reasons), resolvable=True) if reasons else None


def _histogram(entries: Iterable[str]) -> str:
    return ", ".join(sorted(f"{count} {reason}" for reason, count in Counter(entries).items()))


def unschedulable_message(pod: JsonObject, verdicts: list[Verdict], style: MessageStyle) -> str:
    total = len(verdicts)
    if total == 0:
        return "no nodes available to schedule pods"
    message = f"0/{total} nodes are available: {_histogram(r for v in verdicts for r in v.reasons)}."
    if style is MessageStyle.NO_PREEMPTION:
        return message
    if (pod.get("spec") or {}).get("preemptionPolicy") == "Never":
        preemption = "preemption: not eligible due to preemptionPolicy=Never."
    else:
        outcomes = _histogram(NO_VICTIMS if v.resolvable else NOT_HELPFUL for v in verdicts)
        preemption = f"preemption: 0/{total} nodes are available: {outcomes}."
    if style is MessageStyle.DOUBLE_DOT:
        preemption += "."
    return f"{message} {preemption}"


def _missing_claim(state: ClusterState, pod: JsonObject) -> str | None:
    namespace = pod["metadata"].get("namespace", "")
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim and state.get(resources.PVCS, namespace, claim) is None:
            return str(claim)
    return None


class Scheduler:
    """Binds pending pods; remembers which still wait so a freed GPU is offered to them."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.waiting: dict[tuple[str, str], int] = {}  # pending pod → creation order
        self.untried: set[tuple[str, str]] = set()
        self.retry_all = False
        self.request_cache: dict[str, dict[str, Fraction]] = {}

    def notice(self, pod: JsonObject, deleted: bool) -> None:
        """Keeps the waiting set in step with a pod write."""
        key = (pod["metadata"].get("namespace", ""), pod["metadata"]["name"])
        waiting = not deleted and not (pod.get("spec") or {}).get("nodeName") and not is_terminated(pod)
        if waiting:
            if key not in self.waiting:
                self.waiting[key] = int(pod["metadata"].get("resourceVersion") or 0)
                self.untried.add(key)
        else:
            self.waiting.pop(key, None)
            self.untried.discard(key)
            if (pod.get("spec") or {}).get("nodeName") and (deleted or is_terminated(pod)):
                self.retry_all = True
                self.request_cache.pop(pod["metadata"]["uid"], None)

    def run(self) -> None:
        """One scheduling pass over the pods that wait (all, after capacity changed)."""
        keys = list(self.waiting) if self.retry_all else [k for k in self.waiting if k in self.untried]
        self.retry_all = False
        self.untried.clear()
        if not keys:
            return
        keys.sort(key=lambda k: self.waiting[k])
        rooms = node_rooms(self.state, self.request_cache)
        style = self.state.knobs.message_style
        for key in keys:
            stored = self.state.get(resources.PODS, *key)
            if stored is None or key not in self.waiting:
                continue
            pod = stored.obj
            requests = pod_requests(pod)
            claim = _missing_claim(self.state, pod)
            if claim is not None:
                message = (
                    f'0/{len(rooms)} nodes are available: persistentvolumeclaim "{claim}" not found. '
                    f"preemption: 0/{len(rooms)} nodes are available: {len(rooms)} {NO_VICTIMS}."
                )
                self._leave_pending(pod, message)
                continue
            verdicts: list[Verdict] = []
            chosen: NodeRoom | None = None
            for room in rooms:
                verdict = check_node(pod, requests, room, style)
                if verdict is None:
                    chosen = room
                    break
                verdicts.append(verdict)
            if chosen is None:
                self._leave_pending(pod, unschedulable_message(pod, verdicts, style))
                continue
            chosen.add(requests)
            self.request_cache[pod["metadata"]["uid"]] = requests
            self._bind(stored.thaw(), chosen.node["metadata"]["name"])

    def _bind(self, pod: JsonObject, node_name: str) -> None:
        pod["spec"]["nodeName"] = node_name
        namespace, name = pod["metadata"].get("namespace", ""), pod["metadata"]["name"]
        said = f"Successfully assigned {namespace}/{name} to {node_name}"
        record_event(self.state, pod, "Normal", "Scheduled", said, component="default-scheduler")
        start_pod(self.state, pod)
        self.state.write(resources.PODS, pod)

    def _leave_pending(self, pod: JsonObject, message: str) -> None:
        conditions = (pod.get("status") or {}).get("conditions") or []
        current = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
        if current and current.get("status") == "False" and current.get("message") == message:
            return
        updated = dict(pod)
        updated["status"] = {
            **(pod.get("status") or {}),
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "lastProbeTime": None,
                    "lastTransitionTime": self.state.timestamp(),
                    "reason": "Unschedulable",
                    "message": message,
                }
            ],
        }
        updated["metadata"] = dict(pod["metadata"])
        self.state.write(resources.PODS, updated)
        record_event(
            self.state, updated, "Warning", "FailedScheduling", message, component="default-scheduler"
        )
