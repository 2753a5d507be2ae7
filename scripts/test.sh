#!/usr/bin/env bash
# The README's test command: sets up what the tests need (scripts/bootstrap.sh), then runs lint,
# the strict type check, the import contracts and the whole pytest suite against the real local
# Slurm, SQLite and PostgreSQL (CONCIERGE_TEST_POSTGRES_URL, default 127.0.0.1:5432 with trust auth).
set -euo pipefail
cd "$(dirname "$0")/.."
# Root is needed to install packages and run Slurm with test users; come back through sudo if need be.
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then exec sudo -E "$0" "$@"; fi

scripts/bootstrap.sh

.venv/bin/ruff check bot backends policies tests bench
.venv/bin/ruff format --check bot backends policies tests bench
.venv/bin/mypy
.venv/bin/lint-imports  # the layers and the third-party rooms (pyproject.toml [tool.importlinter])
.venv/bin/pytest -q -rs "$@"  # -rs: every skipped test with its reason
