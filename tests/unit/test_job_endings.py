"""How an ended job ended, in words (backends/endings.py): the exit code's usual meaning, a signal by
name, the scheduler's reason where it adds something, nothing where the scheduler said nothing."""

from __future__ import annotations

import pytest

from backends.endings import ending_sentence
from backends.types import JobEnding, JobState

FAILED = JobState.FAILED


@pytest.mark.parametrize(
    ("state", "ending", "said"),
    [
        (FAILED, JobEnding(exit_code=127), "exited with code 127: the shell could not find"),
        (FAILED, JobEnding(exit_code=126), "exited with code 126: a program it runs was found but"),
        (FAILED, JobEnding(exit_code=137), "exited with code 137: a program it ran was killed by SIGKILL"),
        (FAILED, JobEnding(exit_code=2, reason="NonZeroExitCode"), "exited with code 2"),
        (JobState.COMPLETED, JobEnding(exit_code=0), "exited with code 0"),
        (JobState.TIMEOUT, JobEnding(signal=15, reason="TimeLimit"), "was killed by signal 15 (SIGTERM); it"),
        (FAILED, JobEnding(exit_code=137, reason="OOMKilled"), "SIGKILL; it ran out of memory, so"),
        (FAILED, JobEnding(reason="DeadlineExceeded"), "reached its time limit (the Job's deadline), so"),
    ],
)
def test_an_end_is_said_in_words(state: JobState, ending: JobEnding, said: str) -> None:
    assert said in (ending_sentence(state, ending) or "")


@pytest.mark.parametrize(
    ("state", "ending"),
    [
        (JobState.COMPLETED, None),
        (JobState.CANCELLED, JobEnding(exit_code=0)),  # cancelled before it ran: no exit to speak of
        (FAILED, JobEnding(reason="SomethingNew")),
    ],
)
def test_nothing_is_said_where_the_scheduler_said_nothing(state: JobState, ending: JobEnding | None) -> None:
    assert ending_sentence(state, ending) is None
