"""Unix accounts as the Slurm backend looks them up (backends/slurm/accounts.py), without the
machine's passwd: the backend is handed this instead of the real lookup."""

from __future__ import annotations

from backends.slurm.accounts import UnixAccount

ACCOUNTS = {
    "alice": UnixAccount("alice", 1001, 1002, "/home/alice"),
    "bob": UnixAccount("bob", 1002, 1003, "/home/bob"),
    "carol": UnixAccount("carol", 1003, 1004, "/home/carol"),
    "root": UnixAccount("root", 0, 0, "/root"),
    "concierge": UnixAccount("concierge", 990, 990, "/var/lib/concierge"),
}


class FakeAccounts:
    def __init__(self, current: str) -> None:
        self._current = current

    def lookup(self, name: str) -> UnixAccount | None:
        return ACCOUNTS.get(name)

    def current(self) -> UnixAccount:
        return ACCOUNTS[self._current]
