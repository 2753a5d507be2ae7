"""System accounts by name (the site's denylist, root and slurm always) and by uid (login.defs)."""

from __future__ import annotations

import pwd
from pathlib import Path

from bot.system_accounts import DEFAULT_UID_MAX, DEFAULT_UID_MIN, SystemAccounts


def test_root_and_slurm_are_denied_whatever_the_site_lists(tmp_path: Path) -> None:
    accounts = SystemAccounts.of_this_host(["svc-backup", " Jenkins "], tmp_path / "absent")
    assert accounts.denied == {"root", "slurm", "svc-backup", "jenkins"}
    for name in ("root", "slurm", "svc-backup", "jenkins", "ROOT"):
        assert accounts.why_system(name) is not None


def test_uid_range_comes_from_login_defs_with_the_shadow_defaults(tmp_path: Path) -> None:
    defs = tmp_path / "login.defs"
    defs.write_text(
        "# comment\nUID_MIN\t\t\t 2000\n#UID_MAX 10\nUID_MAX 50000  # trailing\nSYS_UID_MIN 100\n"
    )
    read = SystemAccounts.of_this_host([], defs)
    assert (read.uid_min, read.uid_max) == (2000, 50000)
    missing = SystemAccounts.of_this_host([], tmp_path / "absent")
    assert (missing.uid_min, missing.uid_max) == (DEFAULT_UID_MIN, DEFAULT_UID_MAX)


def test_an_account_of_this_host_outside_the_uid_range_is_a_system_account(tmp_path: Path) -> None:
    accounts = SystemAccounts(denied=frozenset())
    daemon = pwd.getpwuid(1).pw_name  # uid 1 exists on every Unix: daemon (or bin)
    assert accounts.why_system(daemon) == f"{daemon} is a system account (uid 1, outside 1000–60000)"
    assert SystemAccounts(denied=frozenset(), uid_min=0, uid_max=0).why_system("root") is None  # in range
    assert accounts.why_system("no-such-user-here") is None  # judged by the denylist alone
