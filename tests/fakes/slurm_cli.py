"""The Slurm CLIs, faked at the backend's command-runner seam: each program answers captured output."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class FakeSlurm:
    """Answers by program name; a value that is an exception is raised (as the real runner would)."""

    def __init__(self, answers: Mapping[str, str | Exception]) -> None:
        self.answers = dict(answers)
        self.command_count = 0
        self.calls: list[tuple[list[str], str | None, str | None]] = []

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        as_user: str | None = None,
        include_stderr: bool = False,
    ) -> str:
        self.command_count += 1
        self.calls.append((list(argv), stdin, as_user))
        answer = self.answers[argv[0]]
        if isinstance(answer, Exception):
            raise answer
        return answer
