"""Slurm through the configured driver: the CLI (client found, version, controller) or slurmrestd
(reachable, API version, token) — backends/slurm/health.py does the asking."""

from __future__ import annotations

from backends.slurm.health import Probe, cli_probes, rest_probes
from backends.slurm.settings import SlurmSettings
from bot.doctor.report import Check, failed, passed

FIXES = {
    "cli": (
        "install Slurm's client commands and munge on this host, or set CONCIERGE_SLURM__BIN_DIR (and "
        "__SLURM_CONF) to where they are; if the controller does not answer, check slurmctld there"
    ),
    "rest": (
        "check CONCIERGE_SLURM__REST_URL (is slurmrestd running?) and the token: CONCIERGE_SLURM__REST_TOKEN "
        "or __REST_TOKEN_COMMAND"
    ),
}


def slurm_checks(settings: SlurmSettings) -> list[Check]:
    name = f"slurm ({settings.driver})"
    probes = cli_probes(settings) if settings.driver == "cli" else rest_probes(settings)
    return [_check(name, settings.driver, probe) for probe in probes]


def _check(name: str, driver: str, probe: Probe) -> Check:
    if probe.error is None:
        return passed(name, probe.what, probe.seen or "")
    return failed(name, probe.what, probe.error.message, FIXES[driver], probe.error.exit_code)
