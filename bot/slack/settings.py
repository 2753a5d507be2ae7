"""The Slack door's typed settings; nested under the main settings as `slack`.

Socket Mode is the default because it needs no inbound port (a bot behind a cluster firewall
dials out to Slack); HTTP mode needs the signing secret, which Bolt checks on every request.
Tokens are `SecretStr` so they never appear in a repr, a log line or a settings dump.

The email identity rule needs `email_domains`: an address at any other domain (a guest, a Slack
Connect partner, a personal address) says nothing about a user on this site's clusters, so the rule
without domains is refused at start-up rather than guessed. Self-approval is off unless a site turns
it on in so many words (`allow_self_approval`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator

from backends.errors import ConfigurationError
from bot.slack.http_settings import HttpEdgeSettings
from bot.system_accounts import DEFAULT_SYSTEM_USERS

SLACK_API_URL = "https://slack.com/api/"


class SlackSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bot_token: SecretStr  # xoxb-…
    signing_secret: SecretStr | None = None  # needed in HTTP mode
    app_token: SecretStr | None = None  # xapp-…, needed in Socket Mode (scope connections:write)
    mode: Literal["socket", "http"] = "socket"
    host: str = "0.0.0.0"  # noqa: S104 - HTTP mode listens for Slack's requests
    port: int = 3000
    path: str = "/slack/events"
    approvers_channel: str | None = None  # channel id where approval requests go
    # Slack user ids who may approve, besides the store's admins (`concierge users map … --admin`).
    approvers: tuple[str, ...] = ()
    # How a person's Slack profile becomes their cluster user on first contact.
    identity_rule: Literal["email_local_part", "none"] = "none"
    # The email rule maps only addresses at these domains (e.g. ["example.org"]), never a system account:
    # one on `system_users` (root and slurm always) or with a uid outside login.defs' UID_MIN–UID_MAX.
    email_domains: tuple[str, ...] = ()
    system_users: tuple[str, ...] = DEFAULT_SYSTEM_USERS
    # Whether an approver may approve their own request (off: another approver must decide it).
    allow_self_approval: bool = False
    api_url: str = SLACK_API_URL  # the Web API; tests point it at a local fake
    # Requests worked on at once after their ack, each mostly waiting on the cluster: a burst of
    # 100 /gpu is answered in about four rounds of the cluster's own time (bench/slack_ack.py).
    workers: int = 32
    http: HttpEdgeSettings = HttpEdgeSettings()  # HTTP mode's limits (CONCIERGE_SLACK__HTTP__…)

    @field_validator("email_domains")
    @classmethod
    def _domains_in_lower_case(cls, domains: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(d.strip().lower().removeprefix("@") for d in domains if d.strip())

    @model_validator(mode="after")
    def _email_rule_has_its_domains(self) -> SlackSettings:
        if self.identity_rule == "email_local_part" and not self.email_domains:
            raise ConfigurationError(
                "the email identity rule needs the site's email domains, or anyone's address would name a "
                "cluster user: set CONCIERGE_SLACK__EMAIL_DOMAINS='[\"example.org\"]' (your domains), or "
                "CONCIERGE_SLACK__IDENTITY_RULE=none and map people with `concierge users map`"
            )
        return self

    @model_validator(mode="after")
    def _mode_has_its_secret(self) -> SlackSettings:
        if self.mode == "http" and self.signing_secret is None:
            raise ConfigurationError(
                "Slack HTTP mode needs the app's signing secret: set CONCIERGE_SLACK__SIGNING_SECRET "
                "(Slack app settings → Basic Information → Signing Secret)"
            )
        if self.mode == "socket" and (
            self.app_token is None or not self.app_token.get_secret_value().startswith("xapp-")
        ):
            raise ConfigurationError(
                "Slack Socket Mode needs an app-level token starting with xapp- "
                "(scope connections:write): set CONCIERGE_SLACK__APP_TOKEN, or use mode http"
            )
        return self
