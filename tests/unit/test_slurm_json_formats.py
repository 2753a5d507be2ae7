"""`squeue --json` of 22.05 (captured) and 23.02/23.11/25.05 (constructed) read the same way."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backends.errors import BackendUnavailable
from backends.slurm.durations import parse_slurm_instant
from backends.slurm.json_formats import (
    SlurmJob,
    data_parser_version,
    map_job_state,
    parse_squeue_json,
    request_id_from_comment,
)
from backends.types import GpuAsk, JobState, JobStatus

FIXTURES = Path(__file__).parents[1] / "fixtures" / "slurm"
VERSIONS = {
    "squeue-22.05.json": "v0.0.38",
    "squeue-23.02.json": "v0.0.39",
    "squeue-23.11.json": "v0.0.40",
    "squeue-25.05.json": "v0.0.43",
}
NOW = datetime(2026, 11, 23, 21, 31, 0, tzinfo=UTC)


def load(name: str) -> dict[str, SlurmJob]:
    return {job.job_id: job for job in parse_squeue_json((FIXTURES / name).read_text())}


@pytest.fixture(params=sorted(VERSIONS))
def fixture_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def test_fixture_versions_are_what_they_claim(fixture_name: str) -> None:
    assert data_parser_version((FIXTURES / fixture_name).read_text()) == VERSIONS[fixture_name]


def test_every_version_reads_the_same_scenario(fixture_name: str) -> None:
    jobs = load(fixture_name)
    running = jobs["72"]
    assert (running.state, running.user, running.partition) == (JobState.RUNNING, "alice", "gpu")
    assert running.gpus == (GpuAsk(count=2, gpu_type="a100"),)
    assert running.time_limit_minutes == 30
    assert running.node_list == "vm"
    assert running.start_time == datetime.fromtimestamp(1795469427, tz=UTC)
    assert running.comment == "gpu-concierge:req-smoke-1"

    resources, priority = jobs["73"], jobs["74"]
    assert (resources.state, resources.reason) == (JobState.PENDING, "Resources")
    assert resources.expected_start == datetime.fromtimestamp(1795471227, tz=UTC)
    assert (priority.reason, priority.expected_start) == (
        "Priority",
        datetime.fromtimestamp(1795474800, tz=UTC),
    )
    assert resources.priority is not None and priority.priority is not None
    assert resources.priority > priority.priority

    too_long = jobs["75"]
    assert (too_long.reason, too_long.partition, too_long.time_limit_minutes) == (
        "PartitionTimeLimit",
        "short",
        120,
    )
    assert too_long.gpus == (GpuAsk(count=1, gpu_type="l40s"),)
    assert too_long.expected_start is None

    held = jobs["76"]
    assert (held.reason, held.priority, held.expected_start) == ("JobHeldUser", 0, None)
    dependent = jobs["77"]
    assert dependent.reason == "Dependency"
    assert dependent.dependency is not None and dependent.dependency.startswith("afterok:72")
    assert dependent.gpus == (GpuAsk(count=1, gpu_type="a100"),)

    bob = jobs["78"]
    assert (bob.user, bob.state, bob.gpus) == ("bob", JobState.RUNNING, (GpuAsk(count=1, gpu_type="l40s"),))
    assert jobs["68"].state is JobState.COMPLETED
    assert jobs["52"].state is JobState.CANCELLED


def test_list_valued_states_carry_flags() -> None:
    # The constructed ≥23.11 documents give job 53 the COMPLETING flag; 22.05 printed CANCELLED.
    assert load("squeue-22.05.json")["53"].state is JobState.CANCELLED
    for name in ("squeue-23.11.json", "squeue-25.05.json"):
        job = load(name)["53"]
        assert job.state is JobState.COMPLETING
        assert job.raw_state == "CANCELLED+COMPLETING"


def test_statuses_carry_our_request_id_and_elapsed_time(fixture_name: str) -> None:
    statuses = {job.job_id: job.to_status(NOW) for job in load(fixture_name).values()}
    running = statuses["72"]
    assert running.request_id == "req-smoke-1"
    assert running.elapsed_seconds == int((NOW - datetime.fromtimestamp(1795469427, tz=UTC)).total_seconds())
    assert running.started_at is not None and running.expected_start is None
    pending = statuses["73"]
    assert pending.started_at is None and pending.elapsed_seconds is None
    assert pending.expected_start is not None
    assert statuses["77"].request_id is None
    assert all(s.submitted_at is None or s.submitted_at.tzinfo is UTC for s in statuses.values())


def test_json_start_times_agree_with_squeue_start() -> None:
    # Captured at the same moment: the JSON estimate is what `squeue --start` prints.
    jobs = load("squeue-22.05.json")
    lines = (FIXTURES / "squeue-start-22.05.txt").read_text().splitlines()
    assert lines, "the capture lists the pending jobs"
    for line in lines:
        job_id, start, reason, _ = line.split("|")
        assert jobs[job_id].reason == reason
        assert jobs[job_id].expected_start == parse_slurm_instant(start)


@pytest.mark.parametrize(
    ("names", "state"),
    [
        (["PENDING"], JobState.PENDING),
        (["RUNNING"], JobState.RUNNING),
        (["RUNNING", "CONFIGURING"], JobState.RUNNING),
        (["COMPLETING"], JobState.COMPLETING),
        (["COMPLETED", "COMPLETING"], JobState.COMPLETING),
        (["PENDING", "REQUEUED"], JobState.PENDING),
        (["COMPLETED", "REQUEUE_HOLD"], JobState.PENDING),
        (["TIMEOUT"], JobState.TIMEOUT),
        (["DEADLINE"], JobState.TIMEOUT),
        (["NODE_FAIL"], JobState.FAILED),
        (["OUT_OF_MEMORY"], JobState.FAILED),
        (["BOOT_FAIL"], JobState.FAILED),
        (["PREEMPTED"], JobState.CANCELLED),
        (["SUSPENDED"], JobState.SUSPENDED),
        (["RUNNING", "STOPPED"], JobState.SUSPENDED),
        (["SOMETHING_NEW"], JobState.UNKNOWN),
        ([], JobState.UNKNOWN),
    ],
)
def test_state_mapping(names: list[str], state: JobState) -> None:
    assert map_job_state(names) is state


def test_slurm_errors_in_the_document_are_reported() -> None:
    document = {
        "meta": {},
        "errors": [{"error": "Unable to contact slurm controller", "error_number": 1}],
        "jobs": [],
    }
    with pytest.raises(BackendUnavailable, match="Unable to contact slurm controller"):
        parse_squeue_json(json.dumps(document))


def test_text_that_is_not_json_is_reported() -> None:
    with pytest.raises(BackendUnavailable, match="not JSON"):
        parse_squeue_json("squeue: unrecognized option '--json'")


def test_infinite_and_unset_numbers() -> None:
    job = {
        "job_id": 5,
        "name": "x",
        "user_name": "alice",
        "job_state": ["PENDING"],
        "time_limit": {"set": False, "infinite": True, "number": 0},
        "start_time": {"set": False, "infinite": False, "number": 0},
        "priority": None,
    }
    (parsed,) = parse_squeue_json(json.dumps({"jobs": [job], "errors": []}))
    assert parsed.time_limit_minutes is None
    assert parsed.start_time is None
    assert parsed.priority is None


def test_comment_tag() -> None:
    assert request_id_from_comment("gpu-concierge:r-1") == "r-1"
    assert request_id_from_comment("someone else's comment") is None
    assert request_id_from_comment(None) is None


def test_reason_none_is_kept_only_while_pending() -> None:
    def status_of(state: str) -> JobStatus:
        job = {"job_id": 9, "name": "x", "user_name": "alice", "job_state": state, "state_reason": "None"}
        (parsed,) = parse_squeue_json(json.dumps({"jobs": [job], "errors": []}))
        return parsed.to_status(datetime.now(UTC))

    assert status_of("RUNNING").reason is None
    assert status_of("PENDING").reason == "None"  # "not yet considered by the scheduler"


def test_statuses_say_what_their_jobs_say(fixture_name: str) -> None:
    # to_status reads squeue's object directly (for speed), the properties read it one by one:
    # both must tell the same story.
    for job in load(fixture_name).values():
        status = job.to_status(NOW)
        pending = job.state is JobState.PENDING
        assert (status.ref, status.name, status.user, status.partition, status.gpus) == (
            job.ref,
            job.name,
            job.user,
            job.partition,
            job.gpus,
        )
        assert (status.state, status.raw_state, status.nodes, status.time_limit_minutes) == (
            job.state,
            job.raw_state,
            job.node_count,
            job.time_limit_minutes,
        )
        assert (status.submitted_at, status.expected_start, status.comment) == (
            job.submitted_at,
            job.expected_start,
            job.comment,
        )
        assert status.started_at == (None if pending else job.start_time)
        assert status.elapsed_seconds == job.elapsed_seconds(NOW)
        assert status.request_id == request_id_from_comment(job.comment)
        assert status.reason == (job.reason if pending or job.reason != "None" else None)


def test_ended_jobs_count_elapsed_time_to_their_end() -> None:
    job = {
        "job_id": 8,
        "job_state": ["COMPLETED"],
        "start_time": {"set": True, "infinite": False, "number": 1795469000},
        "end_time": {"set": True, "infinite": False, "number": 1795469600},
    }
    (parsed,) = parse_squeue_json(json.dumps({"jobs": [job], "errors": []}))
    assert parsed.end_time == datetime.fromtimestamp(1795469600, tz=UTC)
    assert parsed.to_status(NOW).elapsed_seconds == 600 == parsed.elapsed_seconds(NOW)


def test_values_of_unexpected_types_are_still_read() -> None:
    # Every version so far prints these as strings and ints; a new one might not.
    job = {
        "job_id": "9",
        "name": None,
        "user_id": 1001,
        "job_state": None,
        "nodes": 5,
        "partition": "N/A",
        "start_time": "1795469427",
        "submit_time": 1795469000.0,
        "end_time": True,
    }
    (parsed,) = parse_squeue_json(json.dumps({"jobs": [job], "errors": []}))
    assert (parsed.job_id, parsed.name, parsed.user) == ("9", "", "1001")
    assert (parsed.state, parsed.raw_state) == (JobState.UNKNOWN, "UNKNOWN")
    assert (parsed.node_list, parsed.partition, parsed.end_time) == ("5", None, None)
    assert parsed.start_time == datetime.fromtimestamp(1795469427, tz=UTC)
    assert parsed.to_status(NOW).submitted_at == datetime.fromtimestamp(1795469000, tz=UTC)


EXIT_127 = {"status": ["EXITED"], "return_code": {"set": True, "infinite": False, "number": 127}}
KILLED = {"status": ["SIGNALED"], "return_code": {"set": True, "number": 0}, "signal": {"id": {"number": 9}}}


@pytest.mark.parametrize(
    ("state", "exit_code", "output", "expected"),
    [
        # 22.05 and 23.02: the raw wait status; the --output pattern as given, relative or absolute.
        (
            "FAILED",
            127 << 8,
            "/home/alice/concierge-%x-%j.out",
            (127, None, "/home/alice/concierge-train-7.out"),
        ),
        ("CANCELLED", 15, "%u/%4j_%%.log", (None, 15, "/home/alice/alice/0007_%.log")),
        ("TIMEOUT", 9, "out\\%j", (None, 9, "/home/alice/out\\%j")),  # a backslash turns expansion off
        # 23.11 and later: {"status", "return_code", "signal"}.
        (["FAILED"], EXIT_127, "/dev/null", (127, None, None)),
        (["FAILED"], KILLED, "", (None, 9, None)),
    ],
)
def test_an_ended_job_says_how_it_ended(
    state: object, exit_code: object, output: str, expected: tuple[int | None, int | None, str | None]
) -> None:
    job = {
        "job_id": 7,
        "name": "train",
        "user_name": "alice",
        "job_state": state,
        "state_reason": "NonZeroExitCode",
        "exit_code": exit_code,
        "standard_output": output,
        "current_working_directory": "/home/alice",
    }
    (parsed,) = parse_squeue_json(json.dumps({"jobs": [job], "errors": []}))
    ending = parsed.to_status(NOW).ending
    assert ending is not None and ending.reason == "NonZeroExitCode"
    assert (ending.exit_code, ending.signal, ending.output_path) == expected
