"""How jobs that left the queue ended, from sacct's lines (real ones from the local slurmdbd 22.05)
and from slurmrestd's /slurmdb/…/jobs answers rendered as the same lines; what a failing sacct means."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from backends.errors import BackendUnavailable
from backends.job_accounting import ACCOUNTING_UNAVAILABLE
from backends.slurm.accounting import SACCT_FIELDS, parse_sacct_lines, read_ended_jobs, sacct_argv
from backends.slurm.json_formats import parse_squeue_json, split_stderr
from backends.slurm.rest_accounting import sacct_lines, sacct_query
from backends.types import JobRef, JobState

# `sacct -X -P -n -a --format=<SACCT_FIELDS> -j …` (TZ=UTC): 8, 11, 29, 36, 41 printed by the local
# cluster (29 as read right after slurmdbd came back: FAILED, ExitCode 0:0, End Unknown); 60-62 and
# the warning line constructed (a time limit, a signal and a comment holding a bar, memory).
LINES = (Path(__file__).parents[1] / "fixtures" / "slurm" / "sacct-22.05.txt").read_text()
REAL_LINES = LINES
CONSTRUCTED = LINES


def test_a_failed_job_keeps_its_exit_code_and_a_gpu_job_its_gpu_hours() -> None:
    found = parse_sacct_lines(REAL_LINES, {"8", "11", "36", "41"})
    by_id = {s.ref.job_id: s for s in found}
    failed, done, cancelled, never = by_id["11"], by_id["8"], by_id["36"], by_id["41"]
    assert (failed.state, failed.ending and failed.ending.exit_code) == (JobState.FAILED, 3)
    assert failed.ending is not None and failed.ending.gpu_hours is None  # no GPU, so no GPU-hours
    assert done.state is JobState.COMPLETED and done.ending is not None
    assert (done.ending.exit_code, done.ending.elapsed_seconds, done.ending.gpu_hours) == (
        0,
        1,
        round(1 / 3600, 4),
    )
    assert cancelled.state is JobState.CANCELLED and cancelled.raw_state == "CANCELLED"
    assert cancelled.ending is not None and cancelled.ending.gpu_hours == round(2 * 10 / 3600, 4)
    assert cancelled.request_id == "407d7eb6" and cancelled.user == "alice"
    assert never.started_at is None and never.ending is not None and never.ending.gpu_hours is None


def test_signals_time_limits_and_memory_read_as_the_queue_would_say_them() -> None:
    found = {s.ref.job_id: s for s in parse_sacct_lines(CONSTRUCTED, {"60", "61", "62"})}
    timeout, killed, oom = found["60"], found["61"], found["62"]
    assert timeout.state is JobState.TIMEOUT and timeout.ending is not None
    assert (timeout.ending.reason, timeout.ending.gpu_hours) == ("TimeLimit", round(2 * 3660 / 3600, 4))
    assert killed.ending is not None and (killed.ending.signal, killed.ending.exit_code) == (9, None)
    assert killed.comment == "x|y"  # the last field keeps a bar of its own
    assert oom.state is JobState.FAILED and oom.ending is not None and oom.ending.reason == "OutOfMemory"


def test_an_end_accounting_has_not_received_yet_is_not_an_end() -> None:
    (lagging,) = parse_sacct_lines(LINES, {"29"})
    assert lagging.state is JobState.UNKNOWN and lagging.ending is None and lagging.raw_state == "FAILED"


def test_only_the_jobs_asked_about_are_answered() -> None:
    assert [s.ref.job_id for s in parse_sacct_lines(REAL_LINES, {"11"})] == ["11"]
    assert parse_sacct_lines("", {"11"}) == []


class _Sacct:
    def __init__(self, answer: str | Exception) -> None:
        self.answer = answer
        self.calls: list[list[str]] = []
        self.command_count = 0

    def run(
        self, argv: Sequence[str], *, stdin: str | None = None, as_user: str | None = None,
        include_stderr: bool = False,
    ) -> str:  # fmt: skip
        self.calls.append(list(argv))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_one_sacct_for_every_job_asked_about() -> None:
    sacct = _Sacct(REAL_LINES)
    refs = [JobRef(backend="slurm", job_id=i) for i in ("8", "11", "99")]
    ended = read_ended_jobs(sacct, refs)
    assert sacct.calls == [sacct_argv(["8", "11", "99"])]
    assert sacct.calls[0][-2:] == ["-j", "8,11,99"] and "-X" in sacct.calls[0]
    assert sorted(s.ref.job_id for s in ended.statuses) == ["11", "8"] and ended.unavailable is None


def test_slurmdbd_down_is_unavailable_but_no_accounting_at_all_is_not() -> None:
    down = BackendUnavailable(  # as cli_errors words it, from what sacct said with slurmdbd stopped
        "Slurm's controller could not be reached (sacct: sacct: error: slurm_persist_conn_open_without_init: "
        "failed to open persistent connection to host:127.0.0.1:6819: Connection refused / sacct: error: "
        "Sending PersistInit msg: Connection refused / sacct: error: Problem talking to the database: "
        "Connection refused); the cluster may be restarting or down. Try again in a minute; if it persists, "
        "ask the cluster administrators whether slurmctld and munge are running."
    )
    refs = [JobRef(backend="slurm", job_id="8")]
    ended = read_ended_jobs(_Sacct(down), refs)
    assert ended.statuses == () and ended.unavailable is not None
    assert ended.unavailable == (
        f"{ACCOUNTING_UNAVAILABLE} (sacct: Problem talking to the database: Connection refused); ask the "
        "cluster administrators whether slurmdbd is running"
    )
    disabled = BackendUnavailable("sacct failed (exit 1): Slurm accounting storage is disabled")
    assert read_ended_jobs(_Sacct(disabled), refs).unavailable is None
    assert read_ended_jobs(_Sacct(REAL_LINES), []).statuses == ()


# /slurmdb/v0.0.38/jobs as the local slurmrestd 22.05 answers (trimmed to what is read).
V38 = {
    "jobs": [
        {
            "job_id": 11,
            "state": {"current": "FAILED", "reason": "None"},
            "exit_code": {"status": "SUCCESS", "return_code": 0},  # 22.05's, for a job that exited 3
            "time": {"elapsed": 0, "submission": 1796574333, "start": 1796574333, "end": 1796574333},
            "tres": {"allocated": [{"type": "cpu", "name": None, "id": 1, "count": 1}]},
            "user": "root", "name": "wrap", "partition": "gpu",
            "comment": {"administrator": None, "job": None, "system": None},
        },
        {
            "job_id": 8,
            "state": {"current": "COMPLETED", "reason": "None"},
            "exit_code": {"status": "SUCCESS", "return_code": 0},
            "time": {"elapsed": 1, "submission": 1796574333, "start": 1796574335, "end": 1796574336},
            "tres": {"allocated": [{"type": "cpu", "name": None, "count": 1},
                                   {"type": "gres", "name": "gpu", "count": 1}]},
            "user": "alice", "name": "wrap", "partition": "gpu",
            "comment": {"job": "gpu-concierge:abc"},
        },
    ]
}  # fmt: skip
# v0.0.41 (data_parser): numbers as objects, state.current a list, a signal by id.
V41 = {
    "jobs": [
        {
            "job_id": 61,
            "state": {"current": ["FAILED"], "reason": "None"},
            "exit_code": {"status": ["SIGNALED"],
                          "return_code": {"set": True, "infinite": False, "number": 0},
                          "signal": {"id": {"set": True, "infinite": False, "number": 9}, "name": "KILL"}},
            "time": {"elapsed": 125, "submission": 1796574000, "start": 1796574005, "end": 1796574130},
            "tres": {"allocated": [{"type": "gres", "name": "gpu", "count": 2}]},
            "user": "bob", "name": "train", "partition": "gpu", "comment": {"job": ""},
        }
    ]
}  # fmt: skip


def test_rest_answers_read_as_sacct_lines() -> None:
    lines = sacct_lines(V38)
    assert all(len(line.split("|")) == len(SACCT_FIELDS) for line in lines.splitlines())
    found = {s.ref.job_id: s for s in parse_sacct_lines(lines, {"8", "11"})}
    failed, done = found["11"], found["8"]
    assert failed.state is JobState.FAILED and failed.ending is not None
    assert failed.ending.exit_code is None  # 22.05's "success" for a failed job is not believed
    assert done.ending is not None and (done.ending.exit_code, done.ending.gpu_hours) == (
        0,
        round(1 / 3600, 4),
    )
    assert done.request_id == "abc" and done.started_at is not None
    (killed,) = parse_sacct_lines(sacct_lines(V41), {"61"})
    assert killed.ending is not None and (killed.ending.signal, killed.ending.gpu_hours) == (
        9,
        round(250 / 3600, 4),
    )


def test_the_job_ids_travel_as_the_step_filter_and_other_sacct_is_not_answered() -> None:
    assert sacct_query(sacct_argv(["1", "2"])[1:]) == {"step": "1,2"}
    assert sacct_query(["-X", "-P", "-S", "2026-12-01", "--format=JobID,AllocTRES"]) is None
    assert sacct_query(["-X", "-j", "1", "--format=JobID"]) is None


def test_squeue_with_munge_down_says_munge() -> None:
    """22.05's squeue --json exits 0 with a bare "Failed while looking for jobs"; stderr says why."""
    printed = (
        '{\n "errors": [{"description": "Failed while looking for jobs", "error_number": -1}],\n'
        ' "jobs": []\n}'  # no newline after the document: stderr follows at once
        "squeue: error: If munged is up, restart with --num-threads=10\n"
        'squeue: error: Munge encode failed: Failed to access "/run/munge/munge.socket.2": No such file or '
        "directory (Did you start munged?)\n"
    )
    document, stderr = split_stderr(printed)
    assert document.endswith("}") and stderr.strip().startswith("squeue: error: If munged")
    with pytest.raises(
        BackendUnavailable, match=r"MUNGE, which proves who is asking, is not answering"
    ) as told:
        parse_squeue_json(document, stderr)
    assert "Did you start munged?" in str(told.value) and told.value.exit_code == 6
    assert split_stderr('{"jobs": []}\n') == ('{"jobs": []}\n', "")
    assert split_stderr('{"jobs": []}squeue: warning\n') == ('{"jobs": []}', "squeue: warning\n")
