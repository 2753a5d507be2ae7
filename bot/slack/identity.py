"""Who clicked or typed: Slack's verified user id, mapped to a cluster identity through the store.

The id comes from the signed payload, never from the message text. On first contact the site rule
may derive the Unix/Kubernetes user from the Slack profile's email (`users:read.email`); the mapping
is then stored, so the profile is read once per person and an admin can correct it later with
`concierge users map`.
"""

from __future__ import annotations

import re
from typing import Literal

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from backends.errors import BackendUnavailable, PermissionDenied
from backends.types import Identity
from bot.store import Store

IdentityRule = Literal["email_local_part", "none"]
# A Unix login: what `useradd` accepts by default, so a derived name is never a surprise on the cluster.
_UNIX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def slack_identity(store: Store, client: WebClient, user_id: str, rule: IdentityRule) -> Identity:
    mapped = store.identity_for(user_id)
    if mapped is not None:
        return mapped
    if rule == "email_local_part":
        local_part = _email_local_part(client, user_id)
        if local_part is not None and _UNIX_USER.match(local_part):
            identity = Identity(requester=user_id, unix_user=local_part, k8s_user=local_part)
            store.map_identity(identity)
            store.audit(user_id, "map_identity", user_id, {"rule": rule, "unix_user": local_part})
            return identity
    raise PermissionDenied(
        "you are not mapped to a cluster user yet, so nothing can run as you. Ask an admin to run "
        f"`concierge users map {user_id} --unix YOUR_UNIX_USER`."
    )


def _email_local_part(client: WebClient, user_id: str) -> str | None:
    try:
        response = client.users_info(user=user_id)
    except SlackApiError as e:
        raise BackendUnavailable(
            f"Slack did not tell me who you are ({e.response.get('error', 'unknown error')}); "
            "try again in a moment, or ask an admin to map you with `concierge users map`"
        ) from e
    user = response.get("user") or {}
    email = (user.get("profile") or {}).get("email")
    if not isinstance(email, str) or "@" not in email:
        return None
    return email.split("@", 1)[0].lower()
