"""The CLI's person-facing commands through the concierge service (bot/remote/), when root's site
file names one: the service judges, records and submits with the one engine; this side keeps only
the terminal's part (the y/N prompts, stdout/stderr, exit codes), as `ask`, `queue`, `status`,
`why`, `free`, `cancel` and `history` do standalone (bot/cli/main.py), so a person sees the same.

The other commands keep working standalone: `parse` and `eval` need no store, `policy show` reads
the policy files; the operators' commands (`users`, `serve`, `track`, `digest`, `agent`) run on the
service's host with its settings.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from backends.types import IntentKind, Target
from bot.remote import protocol
from bot.remote.client import ServiceClient, error_from
from bot.terminal_text import echo, printable


def service_named_by_site(act_as: str | None) -> ServiceClient | None:
    """The service root's site file names, or None: the CLI then runs standalone."""
    from bot.site_file import SITE_FILE, load_site_file

    service = load_site_file().service
    if service is None:
        return None
    return ServiceClient(service.url, str(SITE_FILE), act_as=act_as, timeout_s=service.timeout_s)


def ask(
    service: ServiceClient, text: str, *, yes: bool, dry_run: bool, as_json: bool, backend: Target | None
) -> None:
    from bot.cli.main import _confirmed, _may_ask_to_confirm

    if as_json and not (dry_run or yes):
        raise click.UsageError("--json prints no prompt: add --dry-run to only plan, or --yes to submit")
    may_prompt = not yes and sys.stdin.isatty()
    fields = {"text": text, "yes": yes, "dry_run": dry_run, "json": as_json, "backend": backend}
    answer = service.call(protocol.ASK, **fields, may_prompt=may_prompt)
    if answer.get("help"):
        parent = click.get_current_context().parent
        click.echo(parent.get_help() if parent else "")
        return
    if isinstance(job := answer.get("confirm_first"), str):
        _may_ask_to_confirm(job, yes)  # raises: --yes does not confirm it, or there is no terminal
    if "json" in answer:
        click.echo(json.dumps(answer["json"], indent=2))
        _fail_if_refused(answer)
        return
    answer = _confirm_cancel_at_the_terminal(service, answer)
    _shown(answer)
    if answer.get("confirm"):
        request_id = str(answer["request_id"])
        if _confirmed():
            answer = service.call(protocol.SUBMIT, request_id=request_id)
        else:
            _shown(service.call(protocol.DECLINE, request_id=request_id))
            return
    submitted = answer.get("submitted")
    if isinstance(submitted, dict):
        echo(f"Submitted job {submitted['job_id']} (request {str(submitted['request_id'])[:8]}).")
        echo(f"Follow it with: concierge status {submitted['job_id']}")


def answer(service: ServiceClient, kind: IntentKind, *, as_json: bool = False, **about: Any) -> None:
    """A question verb, answered by the service; printed as standalone."""
    answered = service.call(protocol.ANSWER, kind=kind.value, json=as_json, **about)
    if "json" in answered:
        click.echo(json.dumps(answered["json"], indent=2))
        return
    _shown(_confirm_cancel_at_the_terminal(service, answered))


def history(service: ServiceClient, *, everyone: bool, questions: bool, limit: int) -> None:
    _shown(service.call(protocol.HISTORY, everyone=everyone, questions=questions, limit=limit))


def _confirm_cancel_at_the_terminal(service: ServiceClient, answer: dict[str, Any]) -> dict[str, Any]:
    """A cancel the assistant read is confirmed with a y/N (No by default) before the service acts."""
    asked = answer.get("confirm_cancel")
    if not isinstance(asked, dict):
        return answer
    echo(str(asked["explanation"]))
    confirmed = click.confirm(printable(f"{asked['action']}?"), default=False)
    return service.call(protocol.CONFIRM, request_id=str(asked["request_id"]), confirmed=confirmed)


def _shown(answer: dict[str, Any]) -> None:
    if isinstance(text := answer.get("text"), str):
        echo(text)
    _fail_if_refused(answer)


def _fail_if_refused(answer: dict[str, Any]) -> None:
    if isinstance(refused := answer.get("error"), dict):
        raise error_from(refused)
