"""What `concierge doctor` asks of Slack, through the bot's own Web API client (app.web_client).

`auth.test` proves the bot token; its `x-oauth-scopes` header lists the scopes the token was
granted, compared with `MANIFEST_SCOPES` (deploy/slack-manifest.yml's, kept equal by a test): a
scope added to the manifest but not reinstalled shows up here, not as a `missing_scope` error in
front of a person. Socket Mode's app token is proven by `apps.connections.open`, the call Socket
Mode makes first (the URL it returns is not dialled).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.app import web_client
from bot.slack.settings import SlackSettings

MANIFEST_SCOPES: frozenset[str] = frozenset(
    {
        "app_mentions:read", "chat:write", "commands", "files:write", "im:history", "im:write",
        "users:read", "users:read.email",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SlackProbe:
    what: str
    ok: bool
    detail: str
    fix: str = ""
    exit_code: int = 7  # the CLI's: 7 a token or scope to fix, 6 Slack unreachable


def slack_probes(settings: SlackSettings) -> list[SlackProbe]:
    client = web_client(settings)
    try:
        answer = client.auth_test()
    except SlackApiError as e:
        error = e.response.get("error", "an error")
        return [
            SlackProbe(
                "bot token accepted (auth.test)",
                False,
                f"Slack refused it: {error}",
                "copy the bot token (xoxb-…) again from the app's OAuth & Permissions page into "
                "CONCIERGE_SLACK__BOT_TOKEN",
            )
        ]
    except OSError as e:
        return [
            SlackProbe(
                "reachable",
                False,
                f"{settings.api_url}: {e}",
                "check this host's network and proxy (HTTPS_PROXY), or CONCIERGE_SLACK__API_URL",
                6,
            )
        ]
    probes = [
        SlackProbe("bot token accepted (auth.test)", True, f"{answer.get('user')} in {answer.get('team')}"),
        _scopes(answer.headers),
    ]
    probes.append(_socket_mode(settings) if settings.mode == "socket" else _http_mode(settings))
    return probes


def _scopes(headers: Mapping[str, object]) -> SlackProbe:
    what = "scopes the app manifest asks for"
    granted_header = next((str(v) for k, v in headers.items() if k.lower() == "x-oauth-scopes"), None)
    if granted_header is None:
        return SlackProbe(
            what, False, "Slack sent no x-oauth-scopes header", "is CONCIERGE_SLACK__API_URL Slack?"
        )
    granted = {scope.strip() for scope in granted_header.split(",") if scope.strip()}
    missing = sorted(MANIFEST_SCOPES - granted)
    if missing:
        return SlackProbe(
            what,
            False,
            f"missing {', '.join(missing)}",
            "add them under OAuth & Permissions (or paste deploy/slack-manifest.yml) and reinstall the app",
        )
    return SlackProbe(what, True, f"all {len(MANIFEST_SCOPES)} granted")


def _socket_mode(settings: SlackSettings) -> SlackProbe:
    what = "Socket Mode app token (apps.connections.open)"
    fix = (
        "create an app-level token with connections:write under Basic Information and set "
        "CONCIERGE_SLACK__APP_TOKEN (xapp-…)"
    )
    if settings.app_token is None:
        return SlackProbe(what, False, "no app token is set", fix)
    try:
        WebClient(base_url=settings.api_url).apps_connections_open(
            app_token=settings.app_token.get_secret_value()
        )
    except SlackApiError as e:
        return SlackProbe(what, False, f"Slack refused it: {e.response.get('error', 'an error')}", fix)
    except OSError as e:
        return SlackProbe(what, False, f"{settings.api_url}: {e}", fix, 6)
    return SlackProbe(what, True, "a connection URL was issued")


def _http_mode(settings: SlackSettings) -> SlackProbe:
    # Slack signs each request with it; nothing can be asked to prove it ahead of the first request.
    present = settings.signing_secret is not None
    return SlackProbe(
        "HTTP mode signing secret",
        present,
        "set" if present else "not set",
        "" if present else "set CONCIERGE_SLACK__SIGNING_SECRET from the app's Basic Information",
    )
