"""Wall times in Slurm and human forms (bot/understanding/durations.py)."""

from __future__ import annotations

import pytest

from bot.understanding.durations import find_durations, parse_duration, parse_slurm_time


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("90", 90),
        ("45:00", 45),  # Slurm: minutes:seconds
        ("45:30", 46),  # seconds round up
        ("02:30:00", 150),
        ("1-00:00:00", 1440),
        ("2-12:00:00", 3600),
        ("2-12", 3600),  # days-hours
        ("1-06:30", 1830),  # days-hours:minutes
    ],
)
def test_slurm_forms_mean_what_slurm_means(text: str, minutes: int) -> None:
    assert parse_slurm_time(text) == minutes


@pytest.mark.parametrize("text", ["", "1:2:3:4", "a-10", "1-2-3", "UNLIMITED"])
def test_not_a_slurm_time(text: str) -> None:
    assert parse_slurm_time(text) is None


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("4h", 240),
        ("4 hours", 240),
        ("an hour", 60),
        ("1.5 hours", 90),
        ("ninety minutes", 90),
        ("90m", 90),
        ("20 min", 20),
        ("3 hrs", 180),
        ("2 days", 2880),
        ("1 day", 1440),
        ("a week", 10080),
        ("twenty-four hours", 1440),
        ("half an hour", 30),
        ("half a day", 720),
        ("a quarter of an hour", 15),
        ("three quarters of an hour", 45),
        ("an hour and a half", 90),
        ("one and a half hours", 90),
        ("a couple of hours", 120),
        ("1h30m", 90),
        ("4h30", 270),  # minutes after the hours with their unit unsaid
        ("1h 30m", 90),
        ("2d12h", 3600),
        ("2 hours and 30 minutes", 150),
        ("1 day, 12 hours", 2160),
        ("12-hour", 720),
        ("30s", 1),
        ("1:30 hours", 90),  # with an hours word, h:mm is what the person meant
        ("1-00:00:00", 1440),
        ("walltime 01:15:00", 75),
        ("time limit 2-12:00:00", 3600),
        ("--time=90", 90),
        ("walltime 90", 90),
    ],
)
def test_reads_every_form(text: str, minutes: int) -> None:
    assert parse_duration(text) == minutes


@pytest.mark.parametrize("text", ["overnight", "a while", "the weekend", "90", "2-12", "soon"])
def test_unlabelled_or_vague_times_are_not_guessed(text: str) -> None:
    assert parse_duration(text) is None


def test_gpu_models_and_files_are_not_times() -> None:
    assert find_durations("4 h100s and 8 l40s, python l40.py, 2 gpus") == []


def test_clock_times_are_not_wall_times() -> None:
    assert find_durations("start at 3:00 or by 10:30 pm") == []


def test_finds_positions_so_the_caller_can_blank_them() -> None:
    text = "4 A100 GPUs for 8 hours to run it"
    (found,) = find_durations(text)
    assert found.minutes == 480
    assert text[found.start : found.end] == "8 hours"


def test_a_labelled_bare_number_with_a_unit_is_read_in_that_unit() -> None:
    # not "walltime 2" (two minutes, as Slurm reads a bare number) followed by a stray word
    assert [d.minutes for d in find_durations("walltime 2 hours")] == [120]
