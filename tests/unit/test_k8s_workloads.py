"""Our workloads (Deployments, Jobs) with their pods, their state, and how people name them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from backends.k8s.workloads import find_workloads, workload_status
from backends.types import GpuAsk, JobState
from tests.helpers.k8s_objects import (
    JSON,
    deployment,
    job,
    member,
    only,
    pod,
    running_container,
    unschedulable,
    waiting,
    workloads,
)

NOW = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)
PENDING_GPU = unschedulable("0/3 nodes are available: 3 Insufficient nvidia.com/gpu.")


def test_a_deployment_with_every_replica_ready_is_running() -> None:
    ready: dict[str, Any] = {
        "phase": "Running",
        "node_name": "gpu-1",
        "container_statuses": [running_container()],
    }
    status = workload_status(
        only([deployment("llm", replicas=2, ready=2)], pods=[member("llm", "a", "service", **ready)]), NOW
    )
    assert (status.state, status.raw_state, status.reason) == (JobState.RUNNING, "2/2 ready", None)
    assert status.ref.job_id == "research/llm" and status.ref.backend == "k8s"
    assert status.started_at == datetime(2026, 11, 23, 21, 30, tzinfo=UTC)
    assert status.elapsed_seconds == 30 * 60
    assert (status.user, status.partition, status.nodes) == ("alice", "research", 2)
    assert status.gpus == (GpuAsk(count=1, gpu_type="a100"),)
    assert status.request_id == "req-llm"


def test_a_partly_ready_deployment_runs_and_says_why_the_rest_waits() -> None:
    pods = [
        member("llm", "a", "service", node_name="gpu-1"),
        member("llm", "b", "service", phase="Pending", conditions=PENDING_GPU),
    ]
    status = workload_status(only([deployment("llm", replicas=2, ready=1)], pods=pods), NOW)
    assert (status.state, status.raw_state, status.reason) == (JobState.RUNNING, "1/2 ready", "Unschedulable")


def test_a_deployment_whose_image_cannot_be_pulled_is_pending_with_that_reason() -> None:
    stuck = member(
        "llm",
        "a",
        "service",
        node_name="gpu-1",
        phase="Pending",
        conditions=[{"type": "PodScheduled", "status": "True"}],
        container_statuses=[waiting("ImagePullBackOff", "Back-off pulling image")],
    )
    status = workload_status(only([deployment("llm")], pods=[stuck]), NOW)
    assert (status.state, status.reason) == (JobState.PENDING, "ImagePullBackOff")


def test_scaled_to_zero_is_suspended_and_deleting_is_completing() -> None:
    assert workload_status(only([deployment("llm", replicas=0)]), NOW).state is JobState.SUSPENDED
    assert workload_status(only([deployment("llm", deleting=True)]), NOW).state is JobState.COMPLETING


def test_a_deployment_with_a_replica_failure_is_pending_with_it() -> None:
    failure = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "quota"}
    status = workload_status(only([deployment("llm", conditions=[failure])]), NOW)
    assert (status.state, status.reason) == (JobState.PENDING, "FailedCreate")


@pytest.mark.parametrize(
    ("conditions", "state", "reason"),
    [
        ([{"type": "Complete", "status": "True"}], JobState.COMPLETED, None),
        ([{"type": "SuccessCriteriaMet", "status": "True"}], JobState.COMPLETED, None),
        (
            [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
            JobState.FAILED,
            "BackoffLimitExceeded",
        ),
        (
            [{"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded"}],
            JobState.TIMEOUT,
            "DeadlineExceeded",
        ),
        ([{"type": "Failed", "status": "False"}], JobState.PENDING, "Pending"),
    ],
)
def test_a_jobs_end_comes_from_its_conditions(
    conditions: list[JSON], state: JobState, reason: str | None
) -> None:
    status = {
        "conditions": conditions,
        "startTime": "2026-11-23T21:00:00Z",
        "completionTime": "2026-11-23T21:40:00Z",
    }
    found = workload_status(only(jobs=[job("train", status=status)]), NOW)
    assert (found.state, found.reason) == (state, reason)
    assert found.time_limit_minutes == 240
    if state.is_final:
        assert found.elapsed_seconds == 40 * 60


@pytest.mark.parametrize(
    ("job_reason", "terminated", "ending"),
    [
        # The container's reason when it says more than "Error"; its message is the log's last lines.
        ("BackoffLimitExceeded", {"exitCode": 137, "reason": "OOMKilled"}, (137, "OOMKilled", None)),
        ("BackoffLimitExceeded", {"exitCode": 127, "reason": "Error", "message": "sh: python: not found\n"},
         (127, "BackoffLimitExceeded", "sh: python: not found")),
        # Stopped at its deadline: the Job says why, its container only "Error".
        ("DeadlineExceeded", {"exitCode": 143, "reason": "Error"}, (143, "DeadlineExceeded", None)),
    ],
)  # fmt: skip
def test_a_failed_job_says_how_its_container_ended(
    job_reason: str, terminated: JSON, ending: tuple[int, str, str | None]
) -> None:
    failed = {"conditions": [{"type": "Failed", "status": "True", "reason": job_reason}]}
    ended = {"name": "main", "state": {"terminated": terminated}}
    pods = [member("train", "a", "batch", phase="Failed", container_statuses=[ended])]
    found = workload_status(only(jobs=[job("train", status=failed)], pods=pods), NOW).ending
    assert found is not None and (found.exit_code, found.reason, found.message) == ending


def test_a_job_runs_while_its_pod_runs_and_waits_while_it_cannot_be_placed() -> None:
    running = member("train", "x", "batch", node_name="gpu-1", container_statuses=[running_container()])
    assert workload_status(only(jobs=[job("train")], pods=[running]), NOW).state is JobState.RUNNING
    waiting_pod = member("train", "x", "batch", phase="Pending", conditions=PENDING_GPU)
    status = workload_status(only(jobs=[job("train")], pods=[waiting_pod]), NOW)
    assert (status.state, status.reason, status.elapsed_seconds) == (JobState.PENDING, "Unschedulable", None)
    assert workload_status(only(jobs=[job("train", suspend=True)]), NOW).state is JobState.SUSPENDED


def test_pods_join_their_own_workload_even_when_a_job_and_a_deployment_share_a_name() -> None:
    found = workloads(
        [deployment("x")],
        [job("x")],
        [member("x", "d", "service", node_name="gpu-1"), member("x", "j", "batch", phase="Pending")],
    )
    by_kind = {w.kind: [p.metadata.name for p in w.pods] for w in found}
    assert by_kind == {"Deployment": ["x-d"], "Job": ["x-j"]}


def test_people_name_workloads_several_ways() -> None:
    found = workloads(
        [deployment("llm"), deployment("llm", "vision")],
        [job("train"), job("llm", "research")],
    )
    assert [w.kind for w in find_workloads(found, "research/llm")] == ["Deployment", "Job"]
    assert [w.job_id for w in find_workloads(found, "llm")] == ["research/llm", "vision/llm", "research/llm"]
    assert [w.kind for w in find_workloads(found, "research/job/llm")] == ["Job"]
    assert [w.job_id for w in find_workloads(found, "deployment/llm")] == ["research/llm", "vision/llm"]
    assert find_workloads(found, "train")[0].job_id == "research/train"
    assert find_workloads(found, "nope") == [] and find_workloads(found, "a/b/c/d") == []


def test_objects_without_our_label_are_ignored_even_if_the_server_sent_them() -> None:
    foreign = deployment("theirs")
    foreign["metadata"]["labels"] = {"app": "theirs"}
    stray = pod("theirs-a", node_name="gpu-1", labels={"app.kubernetes.io/name": "llm"})
    found = workloads([foreign, deployment("llm")], [], [stray])
    assert [(w.name, len(w.pods)) for w in found] == [("llm", 0)]
