"""What `concierge doctor` asks of Slurm, through the backend's own transports (runner.py, rest.py).

Each probe returns what it saw or raises the transport's own `ConciergeError`, whose message
already names the setting to fix; the doctor only lays the answers out. Nothing is submitted or
cancelled: the CLI driver runs `sinfo --version` (the client is installed) and `scontrol ping`
(the controller answers); the REST driver negotiates the API version (a 401 there means the
server is up but the token is refused) and lists the queue as `rest_user` (the token works).
"""

from __future__ import annotations

from dataclasses import dataclass

from backends.errors import ConciergeError, ConfigurationError, PermissionDenied
from backends.slurm.rest import SlurmRest
from backends.slurm.runner import SlurmCli
from backends.slurm.settings import SlurmSettings


@dataclass(frozen=True, slots=True)
class Probe:
    """One thing checked: `seen` when it worked, else `error` (a message that says what to fix)."""

    what: str
    seen: str | None = None
    error: ConciergeError | None = None


def cli_probes(settings: SlurmSettings) -> list[Probe]:
    runner = SlurmCli(settings)
    try:
        version = runner.run(["sinfo", "--version"]).strip()
    except ConciergeError as e:
        return [Probe("client commands found", error=e)]
    probes = [Probe("client commands found", version)]
    try:
        answer = runner.run(["scontrol", "ping"]).strip()
        probes.append(Probe("controller answers", " ".join(answer.split())))
    except ConciergeError as e:
        probes.append(Probe("controller answers", error=e))
    return probes


def rest_probes(settings: SlurmSettings) -> list[Probe]:
    rest = SlurmRest(settings)
    try:
        version = rest.version()
    except ConfigurationError as e:  # no token source: nothing was sent
        return [Probe("token configured", error=e)]
    except PermissionDenied as e:  # it answered, so it is reachable; the token is the problem
        return [Probe("reachable", settings.rest_url), Probe("API version negotiated", error=e)]
    except ConciergeError as e:
        return [Probe("reachable", error=e)]
    probes = [Probe("reachable", settings.rest_url), Probe("API version negotiated", version)]
    try:
        rest.run(["squeue", "--json"])
        probes.append(Probe("token works", f"the queue was read as {settings.rest_user or 'the bot'}"))
    except ConciergeError as e:
        probes.append(Probe("token works", error=e))
    return probes
