"""A command on a pseudo-terminal, with a prompt answered as a person would type it."""

from __future__ import annotations

import os
import pty
import time
from collections.abc import Sequence


def answered_at_prompt(
    argv: Sequence[str], env: dict[str, str], answer: str, prompt: bytes, timeout: float = 90
) -> str:
    """Everything `argv` printed on the terminal, `answer` typed once `prompt` appeared."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, with the test's environment
        os.execvpe(argv[0], list(argv), env)
    printed, answered = b"", False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal: it has exited
            break
        if not chunk:
            break
        printed += chunk
        if not answered and prompt in printed:
            os.write(fd, answer.encode() + b"\n")
            answered = True
    os.waitpid(pid, 0)
    return printed.decode(errors="replace")
