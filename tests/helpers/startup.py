"""What a `concierge` command imports, seen from inside a fresh interpreter: the modules whose
import would cost its start-up (the store, the engine, the settings, any client)."""

from __future__ import annotations

import json
import sys

HEAVY = (
    "sqlalchemy", "alembic", "pydantic_settings", "apscheduler", "matplotlib", "kubernetes",
    "langchain_core", "langchain_openai", "slack_bolt", "slack_sdk", "backends.slurm.backend",
    "backends.k8s.backend", "bot.store.store", "bot.store.database", "bot.engine", "bot.settings", "policies",
)  # fmt: skip
# Runs the CLI's `run` with the arguments that follow, then prints [exit code, every module loaded].
PROBE = (
    "import json, sys; from bot.cli.main import run; code = run(sys.argv[1:]); "
    "print(json.dumps([code, sorted(sys.modules)]), file=sys.stderr)"
)


def probe_argv(*argv: str) -> list[str]:
    """The command line that runs `concierge ARGV` under the probe."""
    return [sys.executable, "-c", PROBE, *argv]


def probed(stderr: str) -> tuple[int, list[str], list[str]]:
    """(exit code, modules loaded, the heavy ones among them) from what the probe printed last."""
    code, modules = json.loads(stderr.strip().splitlines()[-1])
    heavy = [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    return code, modules, heavy
