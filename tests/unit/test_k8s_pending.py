"""The scheduler's Unschedulable message in every format FIELD_NOTES.md lists, and container reasons."""

from __future__ import annotations

import pytest

from backends.k8s.objects import Pod
from backends.k8s.pending import (
    SchedulingFailure,
    container_problems,
    parse_unschedulable,
    unschedulable_message,
)
from backends.types import PendingCode
from tests.helpers.k8s_objects import decoded, pod, unschedulable, waiting

GPU = PendingCode.INSUFFICIENT_GPU
TAINT = PendingCode.UNTOLERATED_TAINT
AFFINITY = PendingCode.NODE_AFFINITY
VOLUME = PendingCode.UNBOUND_VOLUME
DOWN = PendingCode.NODES_UNAVAILABLE
OTHER = PendingCode.OTHER


def entries(failure: SchedulingFailure) -> list[tuple[int | None, PendingCode]]:
    return [(v.nodes, v.code) for v in failure.verdicts]


# (message, total nodes, [(nodes, code)], preemption text or None)
FORMATS = [
    pytest.param(
        "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod.",
        3,
        [(3, GPU)],
        "0/3 nodes are available: 3 No preemption victims found for incoming pod",
        id="1.27+ with preemption",
    ),
    pytest.param(
        "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod..",
        3,
        [(3, GPU)],
        "0/3 nodes are available: 3 No preemption victims found for incoming pod",
        id="1.22-1.26 ending with ..",
    ),
    pytest.param(
        "0/4 nodes are available: 4 Insufficient nvidia.com/gpu.",
        4,
        [(4, GPU)],
        None,
        id="old, no preemption part",
    ),
    pytest.param(
        "0/5 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "4 Insufficient nvidia.com/gpu. preemption: 0/5 nodes are available: 1 Preemption is not helpful "
        "for scheduling, 4 No preemption victims found for incoming pod.",
        5,
        [(1, TAINT), (4, GPU)],
        "0/5 nodes are available: 1 Preemption is not helpful for scheduling, 4 No preemption victims "
        "found for incoming pod",
        id="untolerated taint {k: v} (1.25-1.33)",
    ),
    pytest.param(
        "0/3 nodes are available: 3 node(s) had untolerated taint(s). preemption: 0/3 nodes are "
        "available: 3 Preemption is not helpful for scheduling.",
        3,
        [(3, TAINT)],
        "0/3 nodes are available: 3 Preemption is not helpful for scheduling",
        id="untolerated taint(s) (1.34+)",
    ),
    pytest.param(
        "0/3 nodes are available: 1 node(s) had taint {node-role.kubernetes.io/master: }, that the pod "
        "didn't tolerate, 2 Insufficient nvidia.com/gpu.",
        3,
        [(1, TAINT), (2, GPU)],
        None,
        id="had taint {k: v}, that the pod didn't tolerate (<=1.24)",
    ),
    pytest.param(
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. preemption: "
        "0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
        2,
        [(2, AFFINITY)],
        "0/2 nodes are available: 2 Preemption is not helpful for scheduling",
        id="node affinity/selector",
    ),
    pytest.param(
        "0/2 nodes are available: 2 node(s) didn't match node selector.",
        2,
        [(2, AFFINITY)],
        None,
        id="old node selector",
    ),
    pytest.param(
        "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes "
        "are available: 3 Preemption is not helpful for scheduling..",
        3,
        [(None, VOLUME)],
        "0/3 nodes are available: 3 Preemption is not helpful for scheduling",
        id="unbound PVC, a PreFilter message without a count",
    ),
    pytest.param(
        "0/3 nodes are available: 3 pod has unbound immediate PersistentVolumeClaims.",
        3,
        [(3, VOLUME)],
        None,
        id="unbound PVC, old counted form",
    ),
    pytest.param(
        "0/4 nodes are available: 1 node(s) were unschedulable, 3 Insufficient nvidia.com/gpu.",
        4,
        [(1, DOWN), (3, GPU)],
        None,
        id="cordoned",
    ),
    pytest.param(
        "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint "
        "{node.kubernetes.io/not-ready: }. preemption: 0/2 nodes are available: 1 No preemption victims "
        "found for incoming pod, 1 Preemption is not helpful for scheduling.",
        2,
        [(1, GPU), (1, DOWN)],
        "0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not "
        "helpful for scheduling",
        id="not-ready taint is a down node",
    ),
    pytest.param(
        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.",
        1,
        [(1, OTHER), (1, OTHER)],
        None,
        id="cpu and memory",
    ),
    pytest.param(
        "0/3 nodes are available: 3 Insufficient nvidia.com/mig-3g.40gb.",
        3,
        [(3, GPU)],
        None,
        id="MIG slices",
    ),
    pytest.param(
        "0/6 nodes are available: 3 node(s) didn't match pod affinity rules, 3 node(s) had untolerated "
        "taint(s). no new claims to deallocate, preemption: 0/6 nodes are available: 6 Preemption is not "
        "helpful for scheduling.",
        6,
        [(3, AFFINITY), (3, TAINT)],
        "0/6 nodes are available: 6 Preemption is not helpful for scheduling",
        id="extra sentence before preemption (DRA)",
    ),
    pytest.param(
        "0/3 nodes are available: 3 node(s) had volume node affinity conflict.",
        3,
        [(3, VOLUME)],
        None,
        id="volume node affinity",
    ),
    pytest.param("no nodes available to schedule pods", None, [(None, OTHER)], None, id="no nodes at all"),
]


@pytest.mark.parametrize(("message", "total", "expected", "preemption"), FORMATS)
def test_every_format_parses_into_node_counts(
    message: str, total: int | None, expected: list[tuple[int | None, PendingCode]], preemption: str | None
) -> None:
    failure = parse_unschedulable(message)
    assert failure.total_nodes == total
    assert entries(failure) == expected
    assert failure.preemption == preemption
    assert failure.raw == message


def test_the_taint_and_the_resource_are_kept() -> None:
    failure = parse_unschedulable(
        "0/5 nodes are available: 2 node(s) had untolerated taint {dedicated: research}, "
        "3 Insufficient nvidia.com/gpu."
    )
    taint, gpu = failure.verdicts
    assert (taint.taint_key, taint.taint_value) == ("dedicated", "research")
    assert gpu.resource == "nvidia.com/gpu"
    old = parse_unschedulable(
        "0/1 nodes are available: 1 node(s) had taint {gpu: a100}, that the pod didn't tolerate."
    )
    assert (old.verdicts[0].taint_key, old.verdicts[0].taint_value) == ("gpu", "a100")


def test_preemption_that_would_help_is_told_apart() -> None:
    hopeless = parse_unschedulable(
        "0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: 0/1 nodes are available: "
        "1 No preemption victims found for incoming pod."
    )
    assert not hopeless.preemption_would_help
    assert parse_unschedulable("0/1 nodes are available: 1 Insufficient nvidia.com/gpu.").preemption is None


def test_the_extra_sentences_are_kept() -> None:
    failure = parse_unschedulable(
        "0/2 nodes are available: 2 node(s) had untolerated taint(s). no new claims to deallocate, "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    )
    assert failure.other == ("no new claims to deallocate",)


def test_an_unknown_reason_is_kept_verbatim() -> None:
    failure = parse_unschedulable("0/2 nodes are available: 2 node(s) had a brand new problem.")
    assert entries(failure) == [(2, OTHER)]
    assert failure.verdicts[0].text == "node(s) had a brand new problem"


def test_the_message_is_read_from_the_pods_condition() -> None:
    message = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    (waiting_pod,) = decoded([pod("p", phase="Pending", conditions=unschedulable(message))], Pod)
    assert unschedulable_message(waiting_pod) == message
    (running,) = decoded([pod("r")], Pod)
    assert unschedulable_message(running) is None


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("ImagePullBackOff", PendingCode.IMAGE_PULL),
        ("ErrImagePull", PendingCode.IMAGE_PULL),
        ("InvalidImageName", PendingCode.IMAGE_PULL),
        ("CrashLoopBackOff", PendingCode.CRASH_LOOP),
        ("CreateContainerConfigError", PendingCode.OTHER),
    ],
)
def test_container_waiting_reasons_become_codes(reason: str, code: PendingCode) -> None:
    status = waiting(reason, "some detail", restarts=4, last_exit=1)
    (stuck,) = decoded([pod("p", node_name="gpu-1", phase="Pending", container_statuses=[status])], Pod)
    (problem,) = container_problems(stuck)
    assert (problem.code, problem.reason, problem.message) == (code, reason, "some detail")
    assert (problem.restarts, problem.last_exit_code, problem.last_exit_reason) == (4, 1, "Error")
    assert problem.image == "docker.io/library/nope:1"


def test_starting_containers_are_not_problems() -> None:
    statuses = [waiting("ContainerCreating"), {"name": "side", "state": {"running": {}}}]
    (starting,) = decoded([pod("p", node_name="gpu-1", phase="Pending", container_statuses=statuses)], Pod)
    assert container_problems(starting) == []
