"""A job's output is read as its owner could read it (bot/job_output.py), by a reader running as root.

Real files, directories and users (alice of the local Slurm set-up); the reader must not lend root's
override to a path the owner could not follow, nor hang on a FIFO, nor read more than its bound.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.job_output import MAX_LINES, read_tail

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="reading as another user needs root")
ALICE = pwd.getpwnam("alice")


@pytest.fixture
def place() -> Iterator[Path]:
    """A directory everyone may search, as a home directory is."""
    base = Path(tempfile.mkdtemp(dir="/tmp"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base)


def alices(path: Path, text: str, mode: int) -> Path:
    path.write_text(text)
    os.chown(path, ALICE.pw_uid, ALICE.pw_gid)
    path.chmod(mode)
    return path


def in_a_closed_directory(base: Path) -> Path:
    closed = base / "root-only"
    closed.mkdir(mode=0o700)
    return alices(closed / "out", "secret\n", 0o644)


def a_fifo(base: Path) -> Path:
    os.mkfifo(base / "fifo", 0o666)
    return base / "fifo"


@pytest.mark.parametrize(
    ("make", "lines", "unread"),
    [
        (lambda base: alices(base / "out", "one\ntwo\n", 0o600), ("one", "two"), None),
        (lambda base: alices(base / "out", "".join(f"{i}\n" for i in range(10_000)), 0o600), None, None),
        (lambda base: alices(base / "out", "x\n", 0o000), (), "alice may not read it"),
        (in_a_closed_directory, (), "alice may not read it"),
        (a_fifo, (), "it could not be read (not a regular file)"),
        (lambda base: base / "missing", (), "the file does not exist (any more) on this machine"),
    ],
)
def test_the_output_is_read_only_as_its_owner_could(
    place: Path, make: Callable[[Path], Path], lines: tuple[str, ...] | None, unread: str | None
) -> None:
    tail = read_tail(str(make(place)), "alice")
    assert tail.unread == unread
    if lines is None:  # a long file: its last lines only
        assert tail.lines == tuple(str(i) for i in range(10_000 - MAX_LINES, 10_000))
    else:
        assert tail.lines == lines
