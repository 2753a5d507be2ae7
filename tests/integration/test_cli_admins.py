"""Who is an admin at the CLI: root, the root-owned site file, or the store; never the caller's settings.

`cli_identity` is called as the CLI calls it, with the caller the OS would report passed in
(`Caller`), a real store (SQLite and PostgreSQL) and a site file written by the test; the site
file's ownership and modes are real (the tests run as root and chown/chmod it). The same controls
through the installed CLI as another Unix user are in tests/e2e/test_cli_trust.py.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from backends.errors import ConfigurationError, PermissionDenied
from backends.types import Identity
from bot.identity import Caller, cli_identity
from bot.settings import Settings
from bot.site_file import SiteFile, load_site_file
from bot.store import Store

ALICE = Caller(login="alice", is_root=False)
ROOT = Caller(login="root", is_root=True)
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the site file must be root's: these tests chown it, so they need root"
)


def site_file(directory: Path, text: str, *, owner: str = "root", mode: int = 0o644) -> Path:
    path = directory / "site.yaml"
    path.write_text(text)
    os.chown(path, pwd.getpwnam(owner).pw_uid, -1)
    path.chmod(mode)
    return path


def settings(admins: list[str] | None = None) -> Settings:
    """The settings the CLI would build; the store is passed to `cli_identity` on its own."""
    return Settings(database_url="sqlite://", admins=admins or [])


def test_the_callers_own_admins_setting_makes_them_no_admin(store: Store, tmp_path: Path) -> None:
    # CONCIERGE_ADMINS='["alice"]' (or `admins:` in the YAML of CONCIERGE_CONFIG): alice's to set.
    mine = settings(admins=["alice"])
    none = tmp_path / "no-site-file.yaml"
    me = cli_identity(store, mine, caller=ALICE, site_file=none)
    assert me == Identity(requester="alice", unix_user="alice", k8s_user="alice", is_admin=False)
    with pytest.raises(PermissionDenied, match="counts only when the concierge runs as root") as refused:
        cli_identity(store, mine, "bob", caller=ALICE, site_file=none)
    assert "Run the command without --as" in refused.value.message
    with pytest.raises(PermissionDenied, match="only root or an admin"):
        cli_identity(store, settings(), "bob", caller=ALICE, site_file=none)


def test_root_owned_site_file_makes_an_admin(store: Store, tmp_path: Path) -> None:
    path = site_file(tmp_path, "admins: [alice]\n")
    me = cli_identity(store, settings(), caller=ALICE, site_file=path)
    assert me.is_admin
    bob = cli_identity(store, settings(), "bob", caller=ALICE, site_file=path)
    assert bob.requester == "bob" and bob.unix_user == "bob" and not bob.is_admin


def test_an_admin_mapping_in_the_store_makes_an_admin(store: Store, tmp_path: Path) -> None:
    store.map_identity(Identity(requester="alice", unix_user="alice", is_admin=True))
    store.map_identity(Identity(requester="bob", unix_user="bobby", k8s_user="bob"))
    bob = cli_identity(store, settings(), "bob", caller=ALICE, site_file=tmp_path / "none.yaml")
    assert bob == Identity(requester="bob", unix_user="bobby", k8s_user="bob", is_admin=False)


def test_root_is_an_admin_and_its_admins_setting_counts(store: Store, tmp_path: Path) -> None:
    none = tmp_path / "none.yaml"
    assert cli_identity(store, settings(), caller=ROOT, site_file=none).is_admin
    bob = cli_identity(store, settings(admins=["bob"]), "bob", caller=ROOT, site_file=none)
    assert bob.is_admin and bob.unix_user == "bob"
    carol = cli_identity(store, settings(admins=["bob"]), "carol", caller=ROOT, site_file=none)
    assert not carol.is_admin


@pytest.mark.parametrize(
    ("owner", "mode", "fix"),
    [("alice", 0o644, "chown root"), ("root", 0o664, "chmod go-w"), ("root", 0o646, "chmod go-w")],
    ids=["owned-by-alice", "group-writable", "world-writable"],
)
def test_a_site_file_others_could_change_is_refused_even_for_root(
    store: Store, tmp_path: Path, owner: str, mode: int, fix: str
) -> None:
    path = site_file(tmp_path, "admins: [alice]\n", owner=owner, mode=mode)
    for caller in (ALICE, ROOT):
        with pytest.raises(ConfigurationError, match="site file is not trusted") as refused:
            cli_identity(store, settings(), caller=caller, site_file=path)
        assert f"{fix} {path}" in refused.value.message


def test_a_site_file_in_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    path = site_file(shared, "admins: [alice]\n")
    shared.chmod(0o777)  # alice could rename it away and put her own file in its place
    with pytest.raises(ConfigurationError, match=f"the directory {shared} is writable"):
        load_site_file(path)
    shared.chmod(0o1777)  # sticky, as /tmp: others cannot replace root's entry
    assert load_site_file(path).admins == ("alice",)


def test_a_symbolic_link_as_the_site_file_is_refused(tmp_path: Path) -> None:
    real = site_file(tmp_path, "admins: [alice]\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    with pytest.raises(ConfigurationError, match="not a symbolic link"):
        load_site_file(link)


def test_a_missing_or_empty_site_file_names_no_admins(tmp_path: Path) -> None:
    assert load_site_file(tmp_path / "absent.yaml") == SiteFile()
    assert load_site_file(site_file(tmp_path, "")) == SiteFile()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("admins: alice\n", "admins"),
        ("admin: [alice]\n", "admin: Extra inputs are not permitted"),
        ("- alice\n", "must hold a mapping"),
        ("admins: [alice\n", "not valid YAML"),
    ],
    ids=["not-a-list", "misspelt-key", "not-a-mapping", "broken-yaml"],
)
def test_a_malformed_site_file_is_a_clear_configuration_error(
    tmp_path: Path, text: str, problem: str
) -> None:
    with pytest.raises(ConfigurationError, match="site file") as refused:
        load_site_file(site_file(tmp_path, text))
    assert problem in refused.value.message
