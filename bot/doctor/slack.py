"""Slack: the bot token, the granted scopes, Socket Mode's app token (bot/slack/health.py)."""

from __future__ import annotations

from bot.doctor.report import Check
from bot.slack.settings import SlackSettings

NAME = "slack"


def slack_checks(settings: SlackSettings) -> list[Check]:
    from bot.slack.health import slack_probes

    return [
        Check(NAME, p.what, p.ok, p.detail, p.fix, 0 if p.ok else p.exit_code) for p in slack_probes(settings)
    ]
