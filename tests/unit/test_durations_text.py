"""The one way lengths of time are written: for people (`duration`) and as D-HH:MM:SS (`clock`)."""

from __future__ import annotations

from backends.durations_text import clock, duration


def test_a_duration_reads_as_prose_and_keeps_every_part() -> None:
    assert duration(minutes=90) == "1 h 30 min"
    assert duration(minutes=2880) == "2 days"
    assert duration(minutes=0) == "0 min"
    assert duration(minutes=65) == "1 h 5 min"
    assert duration(minutes=1441) == "1 day 1 min"
    assert duration(seconds=45) == "45 s"
    assert duration(seconds=3 * 3600 + 59 * 60 + 59) == "3 h 59 min"  # seconds only under a minute
    assert duration(seconds=-5) == "0 min"  # a clock that went backwards is not a negative length


def test_the_clock_is_slurms_spelling() -> None:
    assert clock(5400) == "01:30:00"
    assert clock(93784) == "1-02:03:04"
    assert clock(0) == "00:00:00"
