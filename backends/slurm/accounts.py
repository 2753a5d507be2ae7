"""Unix accounts as the submitting machine knows them (passwd), behind a small seam for tests.

Jobs run as the person: as root we pass `--uid`/`--gid` of their account (without `--gid` sbatch
keeps root's group for the job, verified on 22.05) and default `--chdir` to their home, so the
output file lands where they can write. Tests pass their own `UnixAccounts`.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class UnixAccount:
    name: str
    uid: int
    gid: int
    home: str


class UnixAccounts(Protocol):
    def lookup(self, name: str) -> UnixAccount | None: ...

    def current(self) -> UnixAccount: ...


class PasswdAccounts:
    """The local passwd database (NSS: files, LDAP, SSSD, whatever the machine uses)."""

    def lookup(self, name: str) -> UnixAccount | None:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        return UnixAccount(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)

    def current(self) -> UnixAccount:
        entry = pwd.getpwuid(os.geteuid())
        return UnixAccount(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)
