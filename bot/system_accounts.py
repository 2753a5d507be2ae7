"""Which local account names belong to the system, so that no automatic rule maps a person to one.

A Slack profile's email is the person's to choose within their workspace's rules, so a rule that
derives the cluster user from it (`slurm@…` → `slurm`) would otherwise hand out the scheduler's own
account, the database's or root. A name is a system account when:
- it is on the denylist: the site's list (default `DEFAULT_SYSTEM_USERS`), which always holds root
  and `slurm`, the usual SlurmUser (a site whose SlurmUser has another name adds it to the list;
  asking `scontrol show config` would put a Slurm call into every Slack door), or
- it exists on this host with a uid outside [UID_MIN, UID_MAX] of /etc/login.defs (defaults 1000
  and 60000, as `useradd` reads them): system users below, `nobody` and package accounts above
  (Debian's `slurm` is uid 64030).
A name this host does not know (the bot in a container, whose /etc/passwd lists none of the
cluster's people) is judged by the denylist alone; the cluster's own account database stays the
final word on whether the user exists at all.
"""

from __future__ import annotations

import pwd
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

LOGIN_DEFS = Path("/etc/login.defs")
DEFAULT_UID_MIN = 1000
DEFAULT_UID_MAX = 60000
ALWAYS_DENIED = ("root", "slurm")
DEFAULT_SYSTEM_USERS = (
    *ALWAYS_DENIED,
    "slurmdbd",
    "slurmrestd",
    "munge",
    "postgres",
    "mysql",
    "redis",
    "daemon",
    "bin",
    "sys",
    "sync",
    "nobody",
    "nfsnobody",
    "sshd",
    "www-data",
    "admin",
    "administrator",
    "operator",
)
_LOGIN_DEFS_LINE = re.compile(r"^\s*(UID_MIN|UID_MAX)\s+(\d+)\s*(?:#.*)?$")


@dataclass(frozen=True)
class SystemAccounts:
    denied: frozenset[str]
    uid_min: int = DEFAULT_UID_MIN
    uid_max: int = DEFAULT_UID_MAX

    @classmethod
    def of_this_host(cls, denied: Iterable[str], login_defs: Path = LOGIN_DEFS) -> SystemAccounts:
        """The denylist (plus root and slurm, always) and the uid range of `login_defs`."""
        uid_min, uid_max = _uid_range(login_defs)
        names = frozenset(name.strip().lower() for name in (*ALWAYS_DENIED, *denied))
        return cls(denied=names, uid_min=uid_min, uid_max=uid_max)

    def why_system(self, name: str) -> str | None:
        """Why `name` is a system account (a phrase), or None when it may be a person's."""
        if name.lower() in self.denied:
            return f"{name} is a system account on this site's list"
        try:
            uid = pwd.getpwnam(name).pw_uid
        except KeyError:
            return None
        if not self.uid_min <= uid <= self.uid_max:
            return f"{name} is a system account (uid {uid}, outside {self.uid_min}–{self.uid_max})"
        return None


def _uid_range(login_defs: Path) -> tuple[int, int]:
    found = {"UID_MIN": DEFAULT_UID_MIN, "UID_MAX": DEFAULT_UID_MAX}
    try:
        lines = login_defs.read_text(errors="replace").splitlines()
    except OSError:
        lines = []  # no login.defs (a slim container): the shadow-utils defaults
    for line in lines:
        match = _LOGIN_DEFS_LINE.match(line)
        if match:
            found[match.group(1)] = int(match.group(2))
    return found["UID_MIN"], found["UID_MAX"]
