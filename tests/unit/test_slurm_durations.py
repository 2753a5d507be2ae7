"""Slurm's duration and instant spellings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backends.slurm.durations import (
    format_time_limit,
    from_epoch,
    parse_slurm_duration,
    parse_slurm_instant,
)


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        (1, "00:01:00"),
        (90, "01:30:00"),
        (240, "04:00:00"),
        (1440, "1-00:00:00"),
        (2 * 1440 + 61, "2-01:01:00"),
    ],
)
def test_format_and_read_back(minutes: int, text: str) -> None:
    assert format_time_limit(minutes) == text
    assert parse_slurm_duration(text) == minutes


def test_zero_minutes_is_not_a_time_limit() -> None:
    with pytest.raises(ValueError, match="at least one minute"):
        format_time_limit(0)


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("30", 30),
        ("30:30", 31),  # MM:SS, seconds round up
        ("1:00:00", 60),
        ("1-00:00:00", 1440),
        ("2-12", 2 * 1440 + 12 * 60),
        ("1-02:30", 1440 + 150),
        ("UNLIMITED", None),
        ("infinite", None),
        ("N/A", None),
        ("bogus", None),
    ],
)
def test_slurm_durations(text: str, minutes: int | None) -> None:
    assert parse_slurm_duration(text) == minutes


def test_instants_are_utc() -> None:
    assert parse_slurm_instant("2026-11-23T22:20:11") == datetime(2026, 11, 23, 22, 20, 11, tzinfo=UTC)
    assert parse_slurm_instant("N/A") is None
    assert parse_slurm_instant("Unknown") is None
    assert from_epoch(0) is None
    moment = from_epoch(1795471227)
    assert moment is not None and moment.tzinfo is UTC
