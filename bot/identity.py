"""Who is asking, from a source the door can verify, never from the request's text.

At the CLI the operating system has already authenticated the person: the login name is the
requester. Only root (or a configured admin) may act for someone else with `--as`, which is how
an operator, or the README's demo running as root, submits a job that runs as that person.
"""

from __future__ import annotations

import os
import pwd

from backends.errors import PermissionDenied
from backends.types import Identity
from bot.settings import Settings
from bot.store import Store


def current_login() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def cli_identity(store: Store, settings: Settings, act_as: str | None = None) -> Identity:
    login = current_login()
    caller_is_admin = os.geteuid() == 0 or login in settings.admins
    if act_as and act_as != login:
        if not caller_is_admin:
            raise PermissionDenied(
                f"only root or an admin may act as another person; you are {login}. "
                "Run the command without --as."
            )
        requester = act_as
    else:
        requester = login
    mapped = store.identity_for(requester)
    if mapped is not None:
        return mapped
    is_admin = requester in settings.admins or (requester == login and os.geteuid() == 0)
    # Unmapped at the CLI: the login the OS vouched for is the person's name on both clusters.
    return Identity(requester=requester, unix_user=requester, k8s_user=requester, is_admin=is_admin)
