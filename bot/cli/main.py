"""`concierge`: the CLI door. It only translates between the terminal and the engine.

Expected failures (`ConciergeError`) print one specific line on stderr and exit with the error's
code; anything else is a bug: it is logged with a traceback under an incident id, and the person
sees only that id. No traceback reaches the terminal for an expected failure. Text that comes from
people or other systems is printed through `terminal_text.echo`, without its escape sequences.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from backends.durations_text import plural
from backends.errors import ConciergeError, ConfigurationError, PermissionDenied, PolicyDenied, RequestInvalid
from backends.types import Identity, IntentKind, Target
from bot.terminal_text import echo, printable

# Imported only where used: `concierge --help` and `parse` start without the engine, the store, the
# settings or any client (bench/cli_startup.py; tests/unit/test_cli_startup.py holds them to it).
if TYPE_CHECKING:
    from bot.conversations import Conversations
    from bot.engine import Concierge, Prepared
    from bot.llm.routing import RoutedUnderstanding
    from bot.remote.client import ServiceClient
    from bot.settings import Settings
    from bot.store import Store

log = logging.getLogger("concierge")
BACKEND_CHOICE = click.Choice(["slurm", "k8s"])
# The way out of an admin-only refusal: who the admins are (bot/identity.py).
ASK_AN_ADMIN = "ask an admin (listed under `admins:` in /etc/gpu-concierge/site.yaml, or mapped with --admin)"
BACKEND_HELP = "Slurm or Kubernetes; default: where the job is (a name is Kubernetes), else the site's."


class App:
    """What the commands share; built lazily so `parse` and `eval` need no database or cluster."""

    def __init__(self, act_as: str | None) -> None:
        self.act_as = act_as

    @cached_property
    def settings(self) -> Settings:
        from bot.settings import load_settings

        return load_settings()

    @cached_property
    def store(self) -> Store:
        from bot.assembly import open_store

        return open_store(self.settings)

    @cached_property
    def concierge(self) -> Concierge:
        from bot.assembly import build_concierge

        return build_concierge(self.settings, self.store, self.routing)

    @cached_property
    def conversations(self) -> Conversations:
        from bot.assembly import build_conversations

        return build_conversations(self.settings, self.concierge, self.store, self.routing)

    @cached_property
    def routing(self) -> RoutedUnderstanding | None:
        from bot.assembly import build_routing

        return build_routing(self.settings)

    @cached_property
    def identity(self) -> Identity:
        from bot.identity import cli_identity

        return cli_identity(self.store, self.settings, self.act_as)

    @cached_property
    def service(self) -> ServiceClient | None:
        """The concierge service root's site file names (a login node), else None: standalone."""
        from bot.cli.remote import service_named_by_site

        return service_named_by_site(self.act_as)


pass_app = click.make_pass_decorator(App)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gpu-concierge", prog_name="concierge", message="%(prog)s %(version)s")
@click.option("--as", "act_as", metavar="USER", help="Act for USER (root or admins only).")
@click.pass_context
def cli(ctx: click.Context, act_as: str | None) -> None:
    """GPU Concierge: ask for GPUs in plain words; see why jobs wait."""
    ctx.obj = App(act_as)


# --- submit ------------------------------------------------------------------------------------


@cli.command()
@click.argument("text")
@click.option("--yes", "-y", is_flag=True, help="Submit without asking.")
@click.option("--dry-run", is_flag=True, help="Show the plan; submit nothing.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print only JSON: the plan, and the job once submitted (with --dry-run or --yes).",
)
@click.option("--backend", type=BACKEND_CHOICE, help="Slurm or Kubernetes; default from the request or site.")
@pass_app
def ask(app: App, text: str, yes: bool, dry_run: bool, as_json: bool, backend: Target | None) -> None:
    """Ask in plain words, e.g. "2 A100s for 4 hours to run python3 train.py"."""
    if app.service is not None:  # a login node: the service judges, records and submits
        from bot.cli import remote

        with _root_acts_for_someone(app):
            remote.ask(app.service, text, yes=yes, dry_run=dry_run, as_json=as_json, backend=backend)
        return
    from bot import text_render as render
    from bot.answers import QUESTIONS

    reading = app.concierge.read(text)
    intent = reading.intent
    if intent.kind not in (IntentKind.SUBMIT, IntentKind.UNKNOWN) and not dry_run:
        if intent.kind not in QUESTIONS:
            parent = click.get_current_context().parent
            click.echo(parent.get_help() if parent else "")
            return
        if reading.confirm_first is not None:
            _may_ask_to_confirm(reading.confirm_first.job, yes)
        _answer(
            app,
            intent.kind,
            job=intent.job,
            gpu_type=intent.request.gpu_type,
            confirm_first=reading.confirm_first,
        )
        return
    if as_json and not (dry_run or yes):
        raise click.UsageError("--json prints no prompt: add --dry-run to only plan, or --yes to submit")
    with _root_acts_for_someone(app):
        prepared = app.concierge.prepare(app.identity, text, "cli", backend=backend, reading=reading)
    if as_json:
        _submit_printing_json(app, prepared, submit=not dry_run)
        return
    echo(render.prepared(prepared))
    if dry_run:
        app.concierge.settle(prepared, "dry_run")
        return
    if prepared.allowed and not yes and not _confirmed():
        app.concierge.settle(prepared, "declined")
        echo("Not submitted.")
        return
    ref = app.concierge.submit(prepared)
    echo(f"Submitted job {ref.job_id} (request {prepared.request_id[:8]}).")
    echo(f"Follow it with: concierge status {ref.job_id}")


def _submit_printing_json(app: App, prepared: Prepared, *, submit: bool) -> None:
    """The contract, then (when submitted) the job, as one JSON object: nothing else on stdout."""
    from bot.remote.handlers import dry_run_contract

    printed = dry_run_contract(prepared)
    if not submit:
        app.concierge.settle(prepared, "dry_run")
        click.echo(json.dumps(printed, indent=2))
        return
    printed["submitted"] = None
    try:
        ref = app.concierge.submit(prepared)
        printed["submitted"] = {"job_id": ref.job_id, "request_id": prepared.request_id}
    finally:  # a refusal still prints what was judged; its reason goes to stderr
        click.echo(json.dumps(printed, indent=2))


@contextmanager
def _root_acts_for_someone(app: App) -> Iterator[None]:
    """Root at the CLI is refused as the job's owner; say how root submits for a person."""
    try:
        yield
    except PermissionDenied as e:
        if app.act_as is not None or os.geteuid() != 0:
            raise
        raise PermissionDenied(f"{e.message} As root, act for the person: `concierge --as USER ask …`") from e


def _confirmed() -> bool:
    if not sys.stdin.isatty():
        raise click.UsageError("no terminal to ask on: add --yes to submit, or --dry-run to only plan")
    return click.confirm("Submit this job?", default=False)


def _may_ask_to_confirm(job: str, yes: bool) -> None:
    """An order the assistant read (bot/confirmation.py) is confirmed with a y/N, No by default.
    `--yes` is for submitting a preview and does not answer it: exit 2, naming the command that
    needs no prompt; so does a missing terminal."""
    explicit = f"concierge cancel {job}"
    if yes:
        raise click.UsageError(
            f"the assistant read this as an order to cancel job {job}, and --yes does not confirm "
            f"that: nothing was cancelled. To cancel it without a prompt, run `{explicit}`"
        )
    if not sys.stdin.isatty():
        raise click.UsageError(
            f"the assistant read this as an order to cancel job {job}, and there is no terminal to "
            f"confirm it on: nothing was cancelled. To cancel it, run `{explicit}`"
        )


def _answer(app: App, kind: IntentKind, *, as_json: bool = False, **about: Any) -> None:
    """A question verb (`bot.answers.Question` of `kind` and `about`), answered by the engine and
    printed; an order the assistant read is confirmed at the terminal first."""
    if app.service is not None:
        from bot.cli import remote

        remote.answer(app.service, kind, as_json=as_json, **about)
        return
    from bot import text_render as render
    from bot.answers import ConfirmCancel, Question, QueueAnswer

    answer = app.concierge.answer(app.identity, Question(kind, **about), "cli")
    if isinstance(answer, ConfirmCancel):
        echo(answer.confirm.explanation)
        confirmed = click.confirm(printable(f"{answer.confirm.action}?"), default=False)
        answer = app.concierge.confirm(app.identity, answer.request_id, confirmed=confirmed)
    if as_json and isinstance(answer, QueueAnswer):
        click.echo(json.dumps([j.to_json() for j in answer.jobs], indent=2))
    else:
        echo(render.answer(answer))


# --- questions -----------------------------------------------------------------------------


@cli.command("queue")
@click.option("--mine", is_flag=True, help="Only your jobs.")
@click.option("--all", "show_all", is_flag=True, help="Also jobs that have just ended.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per job, as a list.")
@click.option("--backend", type=BACKEND_CHOICE, help=BACKEND_HELP)
@pass_app
def queue_cmd(app: App, mine: bool, show_all: bool, as_json: bool, backend: Target | None) -> None:
    """The queue: id, name, user, state, reason, GPUs, elapsed/limit, expected start."""
    _answer(app, IntentKind.QUEUE, as_json=as_json, mine=mine, everything=show_all, backend=backend)


@cli.command()
@click.argument("job")
@click.option("--backend", type=BACKEND_CHOICE, help=BACKEND_HELP)
@pass_app
def status(app: App, job: str, backend: Target | None) -> None:
    """One job now, with its history as recorded in the store."""
    _answer(app, IntentKind.STATUS, job=job, backend=backend)


@cli.command()
@click.argument("job")
@click.option("--backend", type=BACKEND_CHOICE, help=BACKEND_HELP)
@pass_app
def why(app: App, job: str, backend: Target | None) -> None:
    """Why a job waits, in plain words, and what would start sooner."""
    _answer(app, IntentKind.WHY_PENDING, job=job, backend=backend)


@cli.command()
@click.option("--type", "gpu_type", help="Only this GPU type, e.g. a100.")
@click.option("--backend", type=BACKEND_CHOICE, help=BACKEND_HELP)
@pass_app
def free(app: App, gpu_type: str | None, backend: Target | None) -> None:
    """Free and total GPUs by partition and type, read from the cluster."""
    _answer(app, IntentKind.CAPACITY, gpu_type=gpu_type, backend=backend)


@cli.command()
@click.argument("job")
@click.option("--backend", type=BACKEND_CHOICE, help=BACKEND_HELP)
@pass_app
def cancel(app: App, job: str, backend: Target | None) -> None:
    """Cancel a job: only its owner or an admin may."""
    _answer(app, IntentKind.CANCEL, job=job, backend=backend)


@cli.command()
@click.argument("job")
@click.argument("replicas", type=click.IntRange(min=0))
@click.option("--backend", type=BACKEND_CHOICE, help="Default: k8s (only services scale).")
@pass_app
def scale(app: App, job: str, replicas: int, backend: Target | None) -> None:
    """Change how many replicas a service runs (Kubernetes)."""
    app.concierge.scale(app.identity, job, replicas, "cli", backend=backend)
    echo(f"Scaled {job} to {replicas} {plural(replicas, 'replica', 'replicas')}.")


@cli.command()
@click.option("--everyone", is_flag=True, help="Everybody's requests (admins).")
@click.option(
    "--all", "questions", is_flag=True, help="Also the questions: queue, status, why, free, policy check."
)
@click.option("--limit", default=20, show_default=True, help="How many requests, newest first.")
@pass_app
def history(app: App, everyone: bool, questions: bool, limit: int) -> None:
    """Your job requests (submits and cancels) and their outcomes, from the store."""
    if app.service is not None:
        from bot.cli import remote

        remote.history(app.service, everyone=everyone, questions=questions, limit=limit)
        return
    from bot import text_render as render

    if everyone and not app.identity.is_admin:
        raise PermissionDenied("only admins may see everybody's requests; drop --everyone to see yours")
    found = app.concierge.history(app.identity, everyone=everyone, limit=limit, questions=questions)
    echo(render.history(found))


# --- understanding -------------------------------------------------------------------------


@cli.command()
@click.argument("text", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON object for TEXT.")
@click.option("--jsonl", is_flag=True, help="One JSON object per line of standard input.")
def parse(text: str | None, as_json: bool, jsonl: bool) -> None:
    """Print how a request is understood (shared/contracts/parse.md)."""
    from bot.understanding.grammar import understand

    if jsonl:
        for line in sys.stdin:
            click.echo(json.dumps(understand(line.rstrip("\n")).to_contract()))
        return
    if text is None:
        raise click.UsageError("give TEXT, or --jsonl to read lines from standard input")
    printed = understand(text).to_contract()
    # --json is the contract's one-line form; without it the same object, indented for reading.
    click.echo(json.dumps(printed) if as_json else json.dumps(printed, indent=2))


@cli.command("eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--llm",
    "with_llm",
    is_flag=True,
    help="Also score the language model (CONCIERGE_LLM_URL): grammar only, model only and routed side "
    "by side, with per-field accuracy, grounding rejections and latency p50/p95.",
)
@pass_app
def eval_cmd(app: App, file: Path, with_llm: bool) -> None:
    """Score the parser on a JSONL file of {"text", "expect"} cases."""
    from bot.understanding.evaluation import evaluate, load_cases, render_report
    from bot.understanding.grammar import understand

    cases = load_cases(file)
    if with_llm:
        from bot.llm.evaluation import compare_with_model, render_comparison

        echo(render_comparison(compare_with_model(cases, app.settings.llm)))
        return
    report = evaluate(cases, lambda t: understand(t).to_contract())
    echo(render_report(report))


# --- administration ------------------------------------------------------------------------


@cli.group()
def policy() -> None:
    """Show the policy in force, or check a request against it."""


@policy.command("show")
@pass_app
def policy_show(app: App) -> None:
    """Print the policy in force (the shipped default with the site's file over it), as YAML."""
    import yaml

    echo(yaml.safe_dump(app.concierge.policy.model_dump(mode="json"), sort_keys=False).rstrip())


@policy.command("check")
@click.argument("text")
@pass_app
def policy_check(app: App, text: str) -> None:
    """Judge a request against the policy without planning or submitting it. Exits 0 when it is
    allowed, 3 when it is denied or needs an admin's approval (the first line says which)."""
    from policies.decision import Verdict

    decision = app.concierge.check_policy(app.identity, text, "cli")
    echo(decision.verdict.value)
    for reason in decision.reasons:
        echo(f"  - {reason}")
    if decision.verdict != Verdict.ALLOW:
        click.get_current_context().exit(PolicyDenied.exit_code)


@cli.group()
def users() -> None:
    """Map people to cluster identities (admins)."""


@users.command("map")
@click.argument("requester")
@click.option("--unix", "unix_user", help="Unix user the person's Slurm jobs run as.")
@click.option("--k8s", "k8s_user", help="Kubernetes user to impersonate.")
@click.option("--group", "k8s_groups", multiple=True, help="Kubernetes group (repeatable).")
@click.option("--namespace", help="Default Kubernetes namespace.")
@click.option("--admin/--no-admin", default=False, help="May act for others and approve requests.")
@pass_app
def users_map(
    app: App,
    requester: str,
    unix_user: str | None,
    k8s_user: str | None,
    k8s_groups: tuple[str, ...],
    namespace: str | None,
    admin: bool,
) -> None:
    """Say who REQUESTER (a Slack user id or a login) runs as on the clusters (admins only)."""
    if not app.identity.is_admin:
        raise PermissionDenied(f"only admins may map identities; {ASK_AN_ADMIN}")
    mapped = Identity(
        requester=requester,
        unix_user=unix_user,
        k8s_user=k8s_user,
        k8s_groups=k8s_groups,
        default_namespace=namespace,
        is_admin=admin,
    )
    app.store.map_identity(mapped, by=app.identity.requester)
    echo(f"Mapped {requester} → unix={unix_user or '-'} k8s={k8s_user or '-'} admin={admin}.")


@users.command("list")
@pass_app
def users_list(app: App) -> None:
    """Everyone mapped: requester, Unix user, Kubernetes user and groups, namespace, admin (admins only)."""
    from bot import text_render as render

    if not app.identity.is_admin:
        raise PermissionDenied(f"only admins may list the mapped identities; {ASK_AN_ADMIN}")
    rows = [
        (i.requester, i.unix_user or "-", i.k8s_user or "-", ",".join(i.k8s_groups) or "-",
         i.default_namespace or "-", "yes" if i.is_admin else "no")
        for i in app.store.identities()
    ]  # fmt: skip
    headers = ("REQUESTER", "UNIX", "K8S", "GROUPS", "NAMESPACE", "ADMIN")
    echo(
        render.table(headers, rows)
        if rows
        else "Nobody is mapped yet: `concierge users map REQUESTER --unix USER`."
    )


@users.command("unmap")
@click.argument("requester")
@pass_app
def users_unmap(app: App, requester: str) -> None:
    """Forget REQUESTER's mapping; their requests and jobs stay (admins only)."""
    if not app.identity.is_admin:
        raise PermissionDenied(f"only admins may unmap identities; {ASK_AN_ADMIN}")
    if not app.store.unmap_identity(requester, by=app.identity.requester):
        raise RequestInvalid(f"{requester} is not mapped; `concierge users list` shows who is")
    echo(f"Unmapped {requester}.")


@cli.command()
@pass_app
def serve(app: App) -> None:
    """Run the Slack bot (Socket Mode, or HTTP with signature checks) and the login nodes' service."""
    if app.settings.slack is None and app.settings.login_service is not None:
        from bot.remote.service import serve_login_nodes

        serve_login_nodes(app.settings, app.settings.login_service)
        return
    from bot.slack.serve import serve as serve_slack

    if app.settings.slack is None:
        raise ConfigurationError(
            "Slack is not configured: set CONCIERGE_SLACK__BOT_TOKEN and CONCIERGE_SLACK__APP_TOKEN "
            "(Socket Mode) or CONCIERGE_SLACK__MODE=http with CONCIERGE_SLACK__SIGNING_SECRET; or, to "
            "serve only the login nodes, CONCIERGE_LOGIN_SERVICE__PORT (README: Login nodes)"
        )
    serve_slack(app.settings, app.settings.slack)


@cli.command()
@click.option("--once", is_flag=True, help="Poll once and exit.")
@click.option("--interval", type=float, help="Seconds between polls (default from settings).")
@pass_app
def track(app: App, once: bool, interval: float | None) -> None:
    """Follow submitted jobs and record each state change once."""
    import time

    from backends.endings import ending_sentence
    from bot.assembly import build_backends
    from bot.tracker import Tracker

    tracker = Tracker(app.store, build_backends(app.settings))
    pause = interval or app.settings.tracker_interval_s
    while True:
        result = tracker.poll_once()
        for t in result.transitions:
            how = ending_sentence(t.state, t.ending)
            echo(
                f"job {t.ref.job_id}: {t.state.value}"
                + (f" ({t.reason})" if t.reason else "")
                + (f"; {how}" if how else "")
            )
        for name in result.unavailable:
            echo(f"warning: {name} could not be asked; will retry", err=True)
        for why in result.accounting_unavailable:
            echo(f"warning: {why}; jobs that left the queue are asked about again next poll", err=True)
        if once:
            return
        time.sleep(pause)


# --- entry point ---------------------------------------------------------------------------


class _Elsewhere(click.Command):
    """A command defined in another module, imported when it runs; its help (the command's docstring)
    is copied here for `concierge --help`, and tests/unit/test_cli_startup.py checks the copy."""

    def __init__(self, name: str, where: str, short_help: str) -> None:
        super().__init__(name, short_help=short_help)
        self.where = where

    def command(self) -> click.Command:
        module, _, attribute = self.where.partition(":")
        found: click.Command = getattr(importlib.import_module(module), attribute)
        return found

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        return self.command().make_context(info_name, args, parent, **extra)


for _name, _where, _help in (
    (
        "chat",
        "bot.cli.chat:chat",
        'Talk to the concierge; change the request as you go; "submit it" when ready.',
    ),
    (
        "digest",
        "bot.cli.telemetry:digest",
        "GPU use: utilisation by type, idle allocated GPUs, GPU-hours by user, the queue, the trend.",
    ),
    (
        "agent",
        "bot.cli.telemetry:agent",
        "Sample this node's GPUs through NVML, into the store and/or on /metrics.",
    ),
    (
        "doctor",
        "bot.cli.doctor:doctor",
        "Check each configured dependency: database, Slurm, Kubernetes, model, Slack, GPU sources.",
    ),
):
    cli.add_command(_Elsewhere(_name, _where, _help))


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    try:
        returned = cli.main(args=argv, prog_name="concierge", standalone_mode=False)
    except ConciergeError as e:
        echo(f"error: {e.message}", err=True)
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except Exception:
        return _report_incident()
    return returned if isinstance(returned, int) else 0  # a command's ctx.exit(code)


def _report_incident() -> Literal[70]:
    from platformdirs import user_log_dir

    incident = uuid.uuid4().hex[:12]
    log_dir = Path(user_log_dir("gpu-concierge"))
    log_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=log_dir / "incidents.log", level=logging.ERROR)
    log.exception("incident %s", incident)
    click.echo(
        f"error: something unexpected went wrong (incident {incident}); "
        f"details are in {log_dir / 'incidents.log'}. Please report the incident id.",
        err=True,
    )
    return 70
