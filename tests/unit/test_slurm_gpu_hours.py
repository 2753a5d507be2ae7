"""Slurm GPU allocations over a window from one `sacct -a -X -n -P` (sacct(1), 22.05 spellings)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from backends.allocations import GpuAllocation
from backends.errors import BackendUnavailable
from backends.slurm.accounting import allocated_gpus
from backends.slurm.cli_errors import translate_failure
from backends.slurm.gpu_hours import (
    parse_allocations,
    read_gpu_allocations,
    sacct_window_argv,
)
from tests.fakes.slurm_cli import FakeSlurm

T = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)
# JobIDRaw|User|Account|Partition|State|Start|End|AllocTRES, as sacct -P prints them under TZ=UTC.
SACCT = (
    "57|alice|physics|gpu|COMPLETED|2026-12-06T16:20:00|2026-12-06T16:20:31|billing=2,cpu=2,gres/gpu=2,mem=2000M,node=1\n"
    "58|bob|chemistry|short|RUNNING|2026-12-06T16:21:00|Unknown|billing=1,cpu=1,gres/gpu:a100=1,gres/gpu=1,mem=1000M,node=1\n"
    "59|alice|physics|gpu|PENDING|Unknown|Unknown|\n"
    "60|alice|physics|gpu|CANCELLED by 1001|None|2026-12-06T16:22:00|\n"
    "61|bob|physics|gpu|COMPLETED|2026-12-06T16:23:00|2026-12-06T16:24:00|billing=1,cpu=1,mem=1000M,node=1\n"
    "62|carol|physics|gpu|COMPLETED|2026-12-06T16:25:00|2026-12-06T16:26:00|cpu=1,gres/gpu:a100=1,gres/gpu:l40s=2\n"
)


def test_only_allocations_that_started_and_hold_gpus_are_kept() -> None:
    assert parse_allocations(SACCT) == [
        GpuAllocation(
            "slurm",
            "57",
            "alice",
            "physics",
            "gpu",
            2,
            datetime(2026, 12, 6, 16, 20, tzinfo=UTC),
            datetime(2026, 12, 6, 16, 20, 31, tzinfo=UTC),
        ),
        GpuAllocation(
            "slurm", "58", "bob", "chemistry", "short", 1, datetime(2026, 12, 6, 16, 21, tzinfo=UTC), None
        ),
        GpuAllocation(
            "slurm",
            "62",
            "carol",
            "physics",
            "gpu",
            3,
            datetime(2026, 12, 6, 16, 25, tzinfo=UTC),
            datetime(2026, 12, 6, 16, 26, tzinfo=UTC),
        ),
    ]


@pytest.mark.parametrize(
    ("tres", "gpus"),
    [
        ("cpu=1,gres/gpu=4,node=1", 4),
        ("gres/gpu:a100=1,gres/gpu=1", 1),
        ("gres/gpu:a100=1,gres/gpu:l40s=2", 3),
        ("cpu=1", None),
        ("", None),
    ],
)
def test_gpus_are_the_untyped_total_or_the_sum_of_the_types(tres: str, gpus: int | None) -> None:
    assert allocated_gpus(tres) == gpus


def test_hours_inside_a_window_count_only_the_overlap() -> None:
    (done, running, _) = parse_allocations(SACCT)
    window_end = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)
    assert done.hours_within(T, window_end) == pytest.approx(2 * 31 / 3600)
    assert running.hours_within(T, window_end) == pytest.approx(39 / 60)  # counted up to the window's end
    assert done.hours_within(window_end, window_end.replace(hour=18)) == 0.0
    read = replace(running, read_at=datetime(2026, 12, 6, 16, 31, tzinfo=UTC))
    assert read.hours_within(T, window_end) == pytest.approx(10 / 60)  # held until it was read, not beyond


def test_one_sacct_call_for_the_window() -> None:
    fake = FakeSlurm({"sacct": SACCT})
    read = read_gpu_allocations(fake, T, T.replace(hour=17))
    assert read and all(allocation.read_at is not None for allocation in read)
    assert fake.calls == [(sacct_window_argv(T, T.replace(hour=17)), None, None)]
    assert sacct_window_argv(T, T.replace(hour=17))[5:9] == [
        "-S",
        "2026-12-06T16:00:00",
        "-E",
        "2026-12-06T17:00:00",
    ]


def test_a_cluster_without_accounting_says_so() -> None:
    fake = FakeSlurm(
        {"sacct": translate_failure("sacct", 1, "sacct: error: Slurm accounting storage is disabled\n")}
    )
    with pytest.raises(BackendUnavailable, match="Slurm keeps no accounting here"):
        read_gpu_allocations(fake, T, T.replace(hour=17))
