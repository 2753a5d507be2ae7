"""Terminal tables: column alignment, and what each column of `concierge queue` shows."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from backends.types import GpuAsk, JobRef, JobState, JobStatus
from bot import text_render as render

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def status(
    job_id: str,
    state: JobState,
    *,
    reason: str | None = None,
    gpus: tuple[GpuAsk, ...] = (),
    expected_start: datetime | None = None,
    elapsed_seconds: int | None = None,
    time_limit_minutes: int | None = None,
) -> JobStatus:
    return JobStatus(
        ref=JobRef(backend="slurm", job_id=job_id),
        name=f"job-{job_id}",
        user="alice",
        state=state,
        raw_state=state.value.upper(),
        reason=reason,
        gpus=gpus,
        expected_start=expected_start,
        elapsed_seconds=elapsed_seconds,
        time_limit_minutes=time_limit_minutes,
    )


def test_columns_line_up_on_the_widest_cell_and_lines_end_without_blanks() -> None:
    text = render.table(("A", "LONG HEADER", "C"), [("xxxx", "y", "z"), ("1", "2", "a longer last cell")])
    assert text.splitlines() == [
        "A     LONG HEADER  C",
        "xxxx  y            z",
        "1     2            a longer last cell",
    ]


def test_cells_are_printed_as_they_are() -> None:
    # Cells are arguments of the format, never part of it.
    text = render.table(["NAME", "NOTE"], [["100%", "{0} %s"], ["x", "%(a)s"]])
    assert text.splitlines() == ["NAME  NOTE", "100%  {0} %s", "x     %(a)s"]


def test_a_table_without_rows_is_its_header() -> None:
    assert render.table(("ID", "NAME"), []) == "ID  NAME"


def test_queue_rows_show_each_column() -> None:
    starts = NOW + timedelta(hours=1)
    statuses = [
        status(
            "7",
            JobState.RUNNING,
            gpus=(GpuAsk(count=2, gpu_type="a100"), GpuAsk(count=1)),
            elapsed_seconds=93_784,
            time_limit_minutes=2 * 24 * 60,
        ),
        status("8", JobState.PENDING, reason="Resources", expected_start=starts, time_limit_minutes=90),
        status("9", JobState.PENDING, reason="JobHeldUser"),
    ]
    running, pending, held = render.queue_rows(statuses, NOW)
    assert running == ("7", "job-7", "alice", "RUNNING", "-", "a100×2,gpu×1", "1-02:03:04/2-00:00:00", "-")
    assert pending[3:7] == ("PENDING", "Resources", "-", "-/01:30:00")
    assert pending[7] == render.when(starts, NOW)
    assert held[4:] == ("JobHeldUser", "-", "-/-", "-")


def test_expected_start_is_shown_for_pending_jobs_only() -> None:
    starts = NOW + timedelta(minutes=5)
    (row,) = render.queue_rows([status("5", JobState.COMPLETING, expected_start=starts)], NOW)
    assert row[7] == "-"


def test_expected_start_names_the_day_unless_it_is_today() -> None:
    moment = NOW + timedelta(minutes=30)
    today = render.when(moment, moment)
    assert re.fullmatch(r"\d\d:\d\d", today)
    later = render.when(moment, moment + timedelta(days=3))  # the same instant, seen days before
    assert later == f"{moment.astimezone().date().isoformat()} {today}"
    rows = render.queue_rows([status("3", JobState.PENDING, expected_start=moment)], moment)
    assert rows[0][7] == today


def test_the_queue_table_has_one_line_per_job() -> None:
    statuses = [status(str(i), JobState.PENDING, reason="Priority") for i in range(1, 12)]
    lines = render.queue(statuses, NOW).splitlines()
    assert len(lines) == 12
    assert lines[0].split() == [
        "ID",
        "NAME",
        "USER",
        "STATE",
        "REASON",
        "GPUS",
        "ELAPSED/LIMIT",
        "EXPECTED",
        "START",
    ]
    assert lines[-1].startswith("11  job-11  alice")
    assert all(line == line.rstrip() for line in lines)
    assert render.queue([], NOW) == "No jobs in the queue."
