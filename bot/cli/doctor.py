"""`concierge doctor`: what is configured, checked one line at a time (bot/doctor).

Kept apart from main.py and imported only when it runs: the checks import the store, the
backends' clients and the model's, which `concierge --help` must not pay for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from bot.terminal_text import echo

if TYPE_CHECKING:
    from bot.cli.main import App


@click.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON list, one object per check.")
@click.pass_obj
def doctor(app: App, as_json: bool) -> None:
    """Check each configured dependency: database, Slurm, Kubernetes, model, Slack, GPU sources."""
    from bot.doctor.report import as_json as json_text
    from bot.doctor.report import as_text, exit_code
    from bot.doctor.run import run_checks

    checks = run_checks(app.settings)
    echo(json_text(checks) if as_json else as_text(checks))
    code = exit_code(checks)
    if code:
        click.get_current_context().exit(code)
