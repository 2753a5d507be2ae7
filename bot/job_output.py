"""The last lines of a job's output file, read only as far as its owner could read them.

The bot runs as root, so the kernel's own check would let it read anything; the path comes from the
scheduler, and the person chose it (`--output`, or a symlink where the file should be). So the file
is opened the way the owner would reach it, and the same permission rules are applied by hand:
- the path is resolved once, then walked from `/` one directory at a time with O_NOFOLLOW: a symlink
  swapped in after resolving makes the walk fail instead of leading elsewhere;
- every directory on the way must be searchable (x) by the owner, and the file, opened with
  O_NOFOLLOW | O_NONBLOCK (a FIFO does not hang the reader), must be a regular file readable (r) by
  them: owner bits for their uid, group bits for their groups, other bits otherwise, as the kernel
  decides (root's override is exactly what is not granted);
- only the file's last `MAX_BYTES` are read, and the last `MAX_LINES` lines of those shown.
Anything that fails says why, in words the person can act on, instead of showing the file.
"""

from __future__ import annotations

import os
import pwd
import stat
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from backends.types import Identity, JobEnding, JobStatus
from bot.need_to_know import may_see_details

if TYPE_CHECKING:
    from bot.store import RequestRecord

MAX_BYTES = 8192
MAX_LINES = 10


@dataclass(frozen=True)
class OutputTail:
    path: str | None  # None: lines the scheduler kept (Kubernetes' termination message), not a file
    lines: tuple[str, ...] = ()
    unread: str | None = None  # why the lines are not shown, when they are not


@dataclass(frozen=True)
class _Reader:
    uid: int
    groups: frozenset[int]

    def may(self, info: os.stat_result, want: int) -> bool:
        """Whether they have `want` (4 read, 1 search) on `info`, as the kernel decides for non-root."""
        if info.st_uid == self.uid:
            bits = info.st_mode >> 6
        elif info.st_gid in self.groups:
            bits = info.st_mode >> 3
        else:
            bits = info.st_mode
        return bits & want == want


def read_tail(path: str, owner: str, *, max_bytes: int = MAX_BYTES, max_lines: int = MAX_LINES) -> OutputTail:
    """The last lines of `path` as the Unix user `owner` could read them."""
    try:
        entry = pwd.getpwnam(owner)
    except KeyError:
        return OutputTail(path, unread=f"{owner} is not a user on this machine")
    reader = _Reader(entry.pw_uid, frozenset(os.getgrouplist(owner, entry.pw_gid)))
    try:
        descriptor = _open_as(reader, os.path.realpath(path))
    except FileNotFoundError:
        return OutputTail(path, unread="the file does not exist (any more) on this machine")
    except PermissionError:
        return OutputTail(path, unread=f"{owner} may not read it")
    except OSError as e:
        return OutputTail(path, unread=f"it could not be read ({e.strerror or e})")
    with os.fdopen(descriptor, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        file.seek(max(size - max_bytes, 0))
        data = file.read(max_bytes)
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size > max_bytes and lines:
        lines = lines[1:]  # the first line read may be cut
    return OutputTail(path, lines=tuple(lines[-max_lines:]), unread=None if lines else "the file is empty")


def _open_as(reader: _Reader, resolved: str) -> int:
    """A descriptor of `resolved`, reached one component at a time as `reader` could reach it."""
    parts = [part for part in resolved.split("/") if part]
    if not parts:
        raise IsADirectoryError(resolved)
    directory = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            if not reader.may(os.fstat(directory), 1):
                raise PermissionError(resolved)
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory)
            os.close(directory)
            directory = child
        if not reader.may(os.fstat(directory), 1):
            raise PermissionError(resolved)
        descriptor = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
    finally:
        os.close(directory)
    info = os.fstat(descriptor)
    if stat.S_ISREG(info.st_mode) and reader.may(info, 4):
        return descriptor
    with suppress(OSError):
        os.close(descriptor)
    if not stat.S_ISREG(info.st_mode):
        raise OSError(0, "not a regular file")
    raise PermissionError(resolved)


def ending_of(status: JobStatus | None, record: RequestRecord | None) -> JobEnding | None:
    """How the job ended: as the scheduler says now, else as recorded with its last state."""
    if status is not None and status.ending is not None:
        return status.ending
    last = record.last_state if record is not None else None
    return last.ending if last is not None else None


def output_tail(
    viewer: Identity, ending: JobEnding | None, status: JobStatus | None, record: RequestRecord | None
) -> OutputTail | None:
    """The ended job's last output lines as `viewer` may see them: only its owner and admins (output
    can hold what the command holds, bot/need_to_know.py). Slurm's are read from its output file as
    the job's Unix user; Kubernetes' come with the pod's status (its termination message)."""
    if ending is None or (ending.output_path is None and not ending.message):
        return None
    if record is not None and not may_see_details(viewer, record, status):
        return None
    if record is None and not (viewer.is_admin or _runs_as(viewer, status)):
        return None
    if ending.output_path is None:
        return OutputTail(None, lines=tuple((ending.message or "").splitlines()[-MAX_LINES:]))
    planned = ((record.plan if record else None) or {}).get("identity") or {}
    owner = status.user if status is not None else planned.get("unix_user")
    if not owner:
        return OutputTail(ending.output_path, unread="the job's Unix user is not known")
    return read_tail(ending.output_path, str(owner))


def _runs_as(viewer: Identity, status: JobStatus | None) -> bool:
    """Whether a job not asked for through the concierge runs as `viewer` on its cluster."""
    if status is None:
        return False
    return status.user == (viewer.k8s_user if status.ref.backend == "k8s" else viewer.unix_user)
