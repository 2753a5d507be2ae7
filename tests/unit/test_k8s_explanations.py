"""Why a workload waits, in plain words, with alternatives computed from the cluster's free GPUs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backends.k8s.capacity import ClusterCapacity, capacity_from
from backends.k8s.explanations import explain_workload
from backends.k8s.objects import Event, Node, Pod
from backends.types import PendingCode, PendingReason
from tests.helpers.k8s_objects import (
    GPU_TOLERATION,
    decoded,
    deployment,
    event,
    job,
    member,
    node,
    node_affinity,
    only,
    pod,
    running_container,
    unschedulable,
    waiting,
)

JSON = dict[str, Any]
X = "\N{MULTIPLICATION SIGN}"
A100 = "NVIDIA-A100-SXM4-80GB"
H100 = "NVIDIA-H100-80GB-HBM3"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
VISION_TAINT = {"key": "dedicated", "value": "vision", "effect": "NoSchedule"}


def cluster(nodes: Sequence[JSON], pods: Sequence[JSON]) -> ClusterCapacity:
    return capacity_from(decoded(nodes, Node), decoded(pods, Pod))


def gpu_node(name: str, product: str, gpus: int, **more: Any) -> JSON:
    return node(name, product=product, gpus=gpus, taints=[GPU_TAINT, *more.pop("taints", [])], **more)


def busy(node_name: str, gpus: int) -> JSON:
    return pod(f"other-{node_name}", "other", node_name=node_name, gpus=gpus)


BUSY_CLUSTER = cluster(
    [
        gpu_node("gpu-1", A100, 8),
        gpu_node("gpu-2", A100, 8),
        gpu_node("gpu-3", A100, 8),
        gpu_node("gpu-7", H100, 8),
        gpu_node("gpu-9", A100, 8, cordoned=True),
        node("ts-1", product="Tesla-T4", shared=4, sharing="time-slicing", taints=[GPU_TAINT]),
        node("cpu-1"),
    ],
    [busy("gpu-1", 6), busy("gpu-2", 6), busy("gpu-3", 8), busy("gpu-7", 4)],
)
GPU_MESSAGE = (
    "0/7 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match Pod's node "
    "affinity/selector, 4 Insufficient nvidia.com/gpu. preemption: 0/7 nodes are available: 3 "
    "Preemption is not helpful for scheduling, 4 No preemption victims found for incoming pod."
)


def waiting_job(conditions: list[JSON], gpus: int = 4) -> Any:
    return only(
        jobs=[job("train", gpus=gpus)],
        pods=[member("train", "x1", "batch", phase="Pending", conditions=conditions, gpus=gpus)],
    )


def llm_waiting(status: JSON, **fields: Any) -> Any:
    """Deployment research/llm whose one pod, placed on gpu-1, has a container in `status`."""
    pod = member("llm", "a", "service", node_name="gpu-1", container_statuses=[status], **fields)
    return only([deployment("llm")], pods=[pod])


def failed(reason: str, **message: str) -> JSON:
    """A Job's status with a Failed condition."""
    return {"conditions": [{"type": "Failed", "status": "True", "reason": reason, **message}]}


def codes(reasons: Sequence[PendingReason]) -> list[PendingCode]:
    return [r.code for r in reasons]


def test_too_few_free_gpus_explained_with_alternatives_from_capacity() -> None:
    reasons = explain_workload(waiting_job(unschedulable(GPU_MESSAGE)), [], BUSY_CLUSTER)
    # Nodes of other GPU kinds (affinity) are not a reason of their own beside the real ones.
    assert codes(reasons) == [PendingCode.INSUFFICIENT_GPU, PendingCode.NODES_UNAVAILABLE]
    gpu = reasons[0]
    assert gpu.raw == GPU_MESSAGE
    assert gpu.sentence.startswith(
        f"Job research/train waits: no node has 4 {X} a100 (nvidia.com/gpu) free for it "
        "(4 of 7 nodes have too few free nvidia.com/gpu)."
    )
    assert "Kubernetes gives no start estimate" in gpu.sentence
    assert "The most free on one node it may use is 2 (gpu-2)." in gpu.sentence
    assert "Not counted: gpu-9 is cordoned." in gpu.sentence
    assert "Preempting lower-priority pods would not make room." in gpu.sentence
    assert gpu.alternatives == (
        f"2 nodes have 2 {X} a100 free now (nodes gpu-1, gpu-2): ask for 2 instead of 4",
        f"h100 ({H100}): 4 free on node gpu-7 — ask for h100 instead",
        "the cluster time-slices GPUs: 4 shared GPUs are free now (node ts-1): ask for a shared GPU if "
        "the work fits on part of one",
    )
    assert gpu.expected_start is None


def test_alternatives_leave_out_what_the_pod_could_not_use() -> None:
    # gpu-7's H100s are free but tainted for another team: not a suggestion.
    capacity = cluster(
        [gpu_node("gpu-1", A100, 8), gpu_node("gpu-7", H100, 8, taints=[VISION_TAINT])],
        [busy("gpu-1", 8)],
    )
    (gpu,) = explain_workload(
        waiting_job(unschedulable("0/2 nodes are available: 2 Insufficient nvidia.com/gpu.")), [], capacity
    )
    assert gpu.alternatives == ()


def test_a_one_gpu_ask_may_take_a_mig_slice_instead() -> None:
    capacity = cluster(
        [
            gpu_node("gpu-1", A100, 8),
            node("mig-1", product=A100, mig={"3g.40gb": 2}, mig_strategy="mixed", taints=[GPU_TAINT]),
        ],
        [busy("gpu-1", 8)],
    )
    message = "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
    (gpu,) = explain_workload(waiting_job(unschedulable(message), gpus=1), [], capacity)
    assert gpu.alternatives == (
        "2 MIG 3g.40gb slices are free now (node mig-1): ask for a MIG slice 3g.40gb if 40 GB of GPU "
        "memory is enough",
    )


def test_a_node_with_room_now_is_named() -> None:
    capacity = cluster([gpu_node("gpu-1", A100, 8)], [])
    message = "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."
    (gpu,) = explain_workload(waiting_job(unschedulable(message)), [], capacity)
    assert "Node gpu-1 has room for it now: the scheduler places it at its next attempt." in gpu.sentence


def test_without_capacity_the_sentence_stands_alone() -> None:
    (gpu,) = explain_workload(
        waiting_job(unschedulable("0/3 nodes are available: 3 Insufficient nvidia.com/gpu.")), [], None
    )
    assert gpu.code is PendingCode.INSUFFICIENT_GPU and gpu.alternatives == ()
    assert "3 of 3 nodes have too few free nvidia.com/gpu" in gpu.sentence


def test_an_unnamed_taint_is_named_from_the_nodes() -> None:
    capacity = cluster(
        [gpu_node("gpu-1", A100, 8), gpu_node("gpu-5", A100, 8, taints=[VISION_TAINT])],
        [busy("gpu-1", 8)],
    )
    message = (
        "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint(s). "
        "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, "
        "1 Preemption is not helpful for scheduling."
    )
    gpu, taint = explain_workload(waiting_job(unschedulable(message)), [], capacity)
    assert gpu.code is PendingCode.INSUFFICIENT_GPU
    assert taint.code is PendingCode.UNTOLERATED_TAINT
    assert taint.sentence.startswith(
        "Job research/train waits: 1 of 2 nodes has taints (dedicated=vision:NoSchedule on gpu-5), which "
        "the pod does not tolerate"
    )
    assert taint.alternatives == (
        f"4 {X} a100 are free on gpu-5, reserved by dedicated=vision:NoSchedule: ask the cluster's admins "
        "whether your pods may tolerate it",
    )


def test_a_named_taint_is_quoted() -> None:
    message = "0/3 nodes are available: 3 node(s) had untolerated taint {dedicated: vision}."
    (taint,) = explain_workload(waiting_job(unschedulable(message)), [], None)
    assert "3 of 3 nodes have the taint dedicated=vision, which the pod does not tolerate" in taint.sentence


def test_an_image_that_cannot_be_pulled_is_explained_with_the_kubelets_words() -> None:
    stuck = llm_waiting(
        waiting("ImagePullBackOff", 'Back-off pulling image "docker.io/library/nope:1"'), phase="Pending"
    )
    events = decoded(
        [event("llm-a", "Failed", 'Failed to pull image "docker.io/library/nope:1": manifest unknown')], Event
    )
    (reason,) = explain_workload(stuck, events, None)
    assert reason.code is PendingCode.IMAGE_PULL
    assert reason.sentence.startswith(
        "Deployment research/llm waits: its image docker.io/library/nope:1 cannot be pulled "
        '(ImagePullBackOff): Failed to pull image "docker.io/library/nope:1": manifest unknown.'
    )
    assert "namespace research has a pull secret" in reason.sentence


def test_a_crash_loop_says_how_often_how_it_ended_and_where_to_look() -> None:
    crashing = llm_waiting(
        waiting("CrashLoopBackOff", "back-off 5m0s", restarts=6, last_exit=137),
        conditions=[{"type": "Ready", "status": "False"}],
    )
    (reason,) = explain_workload(crashing, [], None)
    assert reason.code is PendingCode.CRASH_LOOP
    assert "keeps crashing (restarted 6 times, last exit code 137 (Error))" in reason.sentence
    assert "`kubectl logs -n research llm-a -c main --previous`" in reason.sentence


def test_a_missing_secret_is_a_configuration_problem() -> None:
    stuck = llm_waiting(waiting("CreateContainerConfigError", 'secret "hf-token" not found'), phase="Pending")
    (reason,) = explain_workload(stuck, [], None)
    assert reason.code is PendingCode.OTHER
    assert 'cannot start (CreateContainerConfigError): secret "hf-token" not found' in reason.sentence


def test_an_unbound_claim_is_named() -> None:
    message = (
        "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 "
        "nodes are available: 3 Preemption is not helpful for scheduling."
    )
    claim = [{"name": "hf-cache", "persistentVolumeClaim": {"claimName": "hf-cache"}}]
    stuck = member("llm", "a", "service", phase="Pending", conditions=unschedulable(message), volumes=claim)
    (reason,) = explain_workload(only([deployment("llm")], pods=[stuck]), [], None)
    assert reason.code is PendingCode.UNBOUND_VOLUME
    assert "its PersistentVolumeClaim hf-cache is not bound to a volume" in reason.sentence


def test_replicas_waiting_for_the_same_reason_are_told_once() -> None:
    message = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    pods = [
        member("llm", "a", "service", node_name="gpu-1", container_statuses=[running_container()]),
        member("llm", "b", "service", phase="Pending", conditions=unschedulable(message)),
        member("llm", "c", "service", phase="Pending", conditions=unschedulable(message)),
    ]
    (reason,) = explain_workload(only([deployment("llm", replicas=3, ready=1)], pods=pods), [], None)
    assert reason.sentence.startswith("2 of the 3 pods of Deployment research/llm wait: no node has")


def test_a_failed_scheduling_event_stands_in_for_a_missing_condition() -> None:
    message = "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
    events = decoded([event("train-x1", "FailedScheduling", message)], Event)
    reasons = explain_workload(waiting_job([]), events, None)
    assert codes(reasons) == [PendingCode.INSUFFICIENT_GPU] and reasons[0].raw == message


def test_a_quota_that_keeps_pods_from_being_created_is_the_namespaces_limit() -> None:
    quota = (
        'Error creating: pods "train-x" is forbidden: exceeded quota: gpu-quota, requested: '
        "requests.nvidia.com/gpu=4, used: requests.nvidia.com/gpu=6, limited: requests.nvidia.com/gpu=8"
    )
    events = decoded([event("train", "FailedCreate", quota, kind="Job")], Event)
    (reason,) = explain_workload(only(jobs=[job("train")]), events, None)
    assert reason.code is PendingCode.ACCOUNT_GPU_LIMIT
    assert "namespace research has used up its ResourceQuota" in reason.sentence


def test_no_pods_and_no_failures_yet_means_not_yet_considered() -> None:
    (reason,) = explain_workload(only(jobs=[job("train")]), [], None)
    assert reason.code is PendingCode.NOT_YET_CONSIDERED
    unscheduled = only(jobs=[job("train")], pods=[member("train", "x", "batch", phase="Pending")])
    (reason,) = explain_workload(unscheduled, [], None)
    assert reason.code is PendingCode.NOT_YET_CONSIDERED
    assert "the scheduler has not looked at its pod yet" in reason.sentence


def test_a_placed_pod_that_is_starting_says_so_and_quotes_mount_failures() -> None:
    starting = member(
        "train",
        "x",
        "batch",
        node_name="gpu-1",
        phase="Pending",
        conditions=[{"type": "PodScheduled", "status": "True"}],
        container_statuses=[waiting("ContainerCreating")],
    )
    mount = 'MountVolume.SetUp failed for volume "hf-cache" : not found'
    events = decoded([event("train-x", "FailedMount", mount)], Event)
    (reason,) = explain_workload(only(jobs=[job("train")], pods=[starting]), events, None)
    assert "its pod is on node gpu-1 and its containers are being created" in reason.sentence
    assert mount in reason.sentence


def test_running_and_ended_workloads_are_not_pending() -> None:
    ready = member("llm", "a", "service", node_name="gpu-1", container_statuses=[running_container()])
    (up,) = explain_workload(only([deployment("llm", ready=1)], pods=[ready]), [], None)
    assert up.code is PendingCode.NOT_PENDING
    assert up.sentence == "Deployment research/llm is not pending: 1/1 replicas are ready on node gpu-1."
    backoff = failed("BackoffLimitExceeded", message="Job has reached the specified backoff limit")
    (down,) = explain_workload(only(jobs=[job("train", status=backoff)]), [], None)
    assert down.sentence == (
        "Job research/train is not pending: it has failed (BackoffLimitExceeded: Job has reached the "
        "specified backoff limit)."
    )
    (timeout,) = explain_workload(only(jobs=[job("train", status=failed("DeadlineExceeded"))]), [], None)
    assert "it ran past its time limit of 4 h" in timeout.sentence
    (scaled,) = explain_workload(only([deployment("llm", replicas=0)]), [], None)
    assert "`concierge scale research/llm 1`" in scaled.sentence


def test_a_shared_ask_that_does_not_fit_is_offered_whole_gpus() -> None:
    capacity = cluster(
        [gpu_node("gpu-1", A100, 8), node("ts-1", product="Tesla-T4", shared=2, taints=[GPU_TAINT])],
        [pod("s1", "other", node_name="ts-1", gpus={"nvidia.com/gpu.shared": 2})],
    )
    shared_pod = pod(
        "train-x1",
        phase="Pending",
        gpus={"nvidia.com/gpu.shared": 1},
        tolerations=[GPU_TOLERATION],
        conditions=unschedulable("0/2 nodes are available: 2 Insufficient nvidia.com/gpu.shared."),
    )
    shared_pod["metadata"]["labels"] = member("train", "x1", "batch")["metadata"]["labels"]
    (gpu,) = explain_workload(only(jobs=[job("train", gpus=1)], pods=[shared_pod]), [], capacity)
    assert gpu.sentence.startswith(
        f"Job research/train waits: no node has 1 {X} shared GPU (nvidia.com/gpu.shared) free"
    )
    assert gpu.alternatives == ("whole GPUs are free now (a100 on node gpu-1): ask for 1 whole GPU instead",)


def test_a_memory_floor_is_told_in_the_gigabytes_asked() -> None:
    affinity = node_affinity({"key": "nvidia.com/gpu.memory", "operator": "Gt", "values": ["73728"]})
    message = "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."
    waiting_pod = member("train", "x1", "batch", phase="Pending", conditions=unschedulable(message), gpus=2)
    waiting_pod["spec"]["affinity"] = affinity
    (gpu,) = explain_workload(only(jobs=[job("train", gpus=2)], pods=[waiting_pod]), [], None)
    assert f"no node has 2 {X} GPU with at least 80 GB each (nvidia.com/gpu) free" in gpu.sentence


def test_node_affinity_alone_is_still_explained() -> None:
    message = (
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: "
        "0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )
    reasons = explain_workload(waiting_job(unschedulable(message)), [], BUSY_CLUSTER)
    assert codes(reasons)[0] is PendingCode.NODE_AFFINITY
    assert "not the kind of node it asks for" in reasons[0].sentence
