"""Who clicked or typed: Slack's verified user id, mapped to a cluster identity through the store.

The id comes from the signed payload, never from the message text. On first contact the site rule
may derive the Unix/Kubernetes user from the Slack profile's email (`users:read.email`); the mapping
is then stored, so the profile is read once per person and an admin can correct it later with
`concierge users map`.

The email rule is a convenience, not an authority: a profile's address is only as good as its
domain, and its local part is whatever the mail system allowed. So it maps only addresses at the
site's own domains (`SlackSettings.email_domains`, required when the rule is on), only local parts
that are plain Unix logins, never a system account (bot/system_accounts.py: `slurm@`, `postgres@`,
`daemon@`, `root@` …), and never a bot or a deactivated user. Everything else is refused with
"ask an admin", and nothing is stored, so an admin's later mapping is not shadowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from backends.errors import BackendUnavailable, PermissionDenied
from backends.types import Identity
from bot.slack.settings import SlackSettings
from bot.store import Store
from bot.system_accounts import LOGIN_DEFS, SystemAccounts

# A Unix login: what `useradd` accepts by default, so a derived name is never a surprise on the cluster.
_UNIX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class EmailRule:
    """`jane@example.org` → `jane`, for the site's domains and people's accounts only."""

    domains: frozenset[str]
    accounts: SystemAccounts

    def local_user(self, user_id: str, slack_user: dict[str, Any]) -> str:
        """The cluster user the profile names; PermissionDenied (ask an admin) when it names none."""
        if slack_user.get("is_bot") or slack_user.get("deleted"):
            raise _ask_an_admin(user_id, "a bot or deactivated Slack account is never mapped by its email")
        email = (slack_user.get("profile") or {}).get("email")
        if not isinstance(email, str) or email.count("@") != 1:
            raise _ask_an_admin(user_id, "your Slack profile shows no email address")
        local_part, domain = email.lower().rsplit("@", 1)
        if domain not in self.domains:
            known = ", ".join(sorted(self.domains))
            raise _ask_an_admin(user_id, f"your Slack email is not at this site's domain ({known})")
        if not _UNIX_USER.match(local_part):
            raise _ask_an_admin(user_id, "your email's name part is not a Unix login")
        system = self.accounts.why_system(local_part)
        if system is not None:
            raise _ask_an_admin(user_id, f"{system}, which nobody is mapped to by email")
        return local_part


def email_rule(settings: SlackSettings, login_defs: Path = LOGIN_DEFS) -> EmailRule | None:
    """The site's rule, built once at start-up (it reads login.defs); None when the rule is off."""
    if settings.identity_rule != "email_local_part":
        return None
    accounts = SystemAccounts.of_this_host(settings.system_users, login_defs)
    return EmailRule(domains=frozenset(settings.email_domains), accounts=accounts)


def slack_identity(store: Store, client: WebClient, user_id: str, rule: EmailRule | None) -> Identity:
    mapped = store.identity_for(user_id)
    if mapped is not None:
        return mapped
    if rule is None:
        raise _ask_an_admin(user_id, None)
    local_user = rule.local_user(user_id, _slack_user(client, user_id))
    identity = Identity(requester=user_id, unix_user=local_user, k8s_user=local_user)
    store.map_identity(identity, by=user_id, detail={"rule": "email_local_part", "unix_user": local_user})
    return identity


def _ask_an_admin(user_id: str, why: str | None) -> PermissionDenied:
    because = f" ({why})" if why else ""
    return PermissionDenied(
        f"you are not mapped to a cluster user yet{because}, so nothing can run as you. Ask an admin to "
        f"run `concierge users map {user_id} --unix YOUR_UNIX_USER`."
    )


def _slack_user(client: WebClient, user_id: str) -> dict[str, Any]:
    try:
        response = client.users_info(user=user_id)
    except SlackApiError as e:
        raise BackendUnavailable(
            f"Slack did not tell me who you are ({e.response.get('error', 'unknown error')}); "
            "try again in a moment, or ask an admin to map you with `concierge users map`"
        ) from e
    user = response.get("user")
    return user if isinstance(user, dict) else {}
