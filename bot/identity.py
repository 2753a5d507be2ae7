"""Who is asking, from a source the door can verify, never from the request's text.

At the CLI the operating system has already authenticated the person: the login name is the
requester. Only root or an admin may act for someone else with `--as`, which is how an operator,
or the README's demo running as root, submits a job that runs as that person.

Who is an admin must not be the caller's to say, and at the CLI everything in the settings is
(`CONCIERGE_*` variables, the YAML named by `CONCIERGE_CONFIG`, even `CONCIERGE_DATABASE_URL`). So
an admin is: root; a login listed in the root-owned site file (bot/site_file.py); or a login the
store maps with `--admin` (written only by an admin; a caller who points the CLI at a database of
their own is admin of that database only, and the OS still runs their jobs as themselves).
`Settings.admins` (`CONCIERGE_ADMINS`) counts only when the process runs as root, whose
environment is root's own: it marks whom root acts for as an admin (`concierge --as bob …`).
For anyone else it is ignored, and a refusal says so.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from backends.errors import PermissionDenied
from backends.types import Identity
from bot.settings import Settings
from bot.site_file import SITE_FILE, load_site_file
from bot.store import Store


@dataclass(frozen=True)
class Caller:
    """Who the operating system says is running the CLI."""

    login: str
    is_root: bool


def current_caller() -> Caller:
    euid = os.geteuid()
    return Caller(login=pwd.getpwuid(euid).pw_name, is_root=euid == 0)


def cli_identity(
    store: Store,
    settings: Settings,
    act_as: str | None = None,
    *,
    caller: Caller | None = None,
    site_file: Path = SITE_FILE,
) -> Identity:
    caller = caller or current_caller()
    site_admins = frozenset(load_site_file(site_file).admins)
    # CONCIERGE_ADMINS is root's word only: any other caller set it themselves.
    root_listed = frozenset(settings.admins) if caller.is_root else frozenset()

    def admin(name: str, mapped: Identity | None) -> bool:
        return name in site_admins or name in root_listed or (mapped is not None and mapped.is_admin)

    caller_mapped = store.identity_for(caller.login)
    caller_is_admin = caller.is_root or admin(caller.login, caller_mapped)
    requester = act_as or caller.login
    if requester != caller.login and not caller_is_admin:
        raise PermissionDenied(_not_an_admin(caller, settings, site_file))
    mapped = caller_mapped if requester == caller.login else store.identity_for(requester)
    is_admin = admin(requester, mapped) or (requester == caller.login and caller_is_admin)
    if mapped is not None:
        return mapped.model_copy(update={"is_admin": is_admin})
    # Unmapped at the CLI: the login the OS vouched for is the person's name on both clusters.
    return Identity(requester=requester, unix_user=requester, k8s_user=requester, is_admin=is_admin)


def _not_an_admin(caller: Caller, settings: Settings, site_file: Path) -> str:
    ignored = (
        " CONCIERGE_ADMINS names you, but it counts only when the concierge runs as root."
        if caller.login in settings.admins
        else ""
    )
    return (
        f"only root or an admin may act as another person; you are {caller.login}, not an admin.{ignored} "
        f"Admins are listed by root in {site_file} (`admins:`) or mapped by an admin with "
        f"`concierge users map {caller.login} --admin`. Run the command without --as."
    )
