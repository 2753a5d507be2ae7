#!/usr/bin/env bash
# The README's test command: sets up what the tests need (scripts/bootstrap.sh), then runs lint,
# the strict type check and the whole pytest suite against the real local Slurm, SQLite and
# PostgreSQL (CONCIERGE_TEST_POSTGRES_URL, default 127.0.0.1:5432 with trust auth).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh

.venv/bin/ruff check bot backends policies tests bench
.venv/bin/ruff format --check bot backends policies tests bench
.venv/bin/mypy
.venv/bin/pytest -q "$@"
