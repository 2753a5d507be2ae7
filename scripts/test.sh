#!/usr/bin/env bash
# The README's test command: sets up what the tests need (scripts/bootstrap.sh), then runs lint,
# the strict type check, the import contracts and the whole pytest suite against the real local
# Slurm, SQLite and PostgreSQL (CONCIERGE_TEST_POSTGRES_URL, default 127.0.0.1:5432 with trust auth)
# and a real vLLM server on CPU (scripts/local-vllm.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# Root is needed to install packages and run Slurm with test users; come back through sudo if need be.
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then exec sudo -E "$0" "$@"; fi

scripts/bootstrap.sh

# The real vLLM server on CPU (the tests marked real_vllm) takes minutes to install and start on
# 2 cores: start it now, in the background, while lint and the type check run; its tests wait for
# it (CONCIERGE_VLLM_WAIT_S). It stays up afterwards, as Slurm does: `scripts/local-vllm.sh down`.
vllm_up_log="${TMPDIR:-/tmp}/concierge-local-vllm-up.log"
echo "test.sh: starting vLLM in the background (scripts/local-vllm.sh up, log: $vllm_up_log)"
scripts/local-vllm.sh up >"$vllm_up_log" 2>&1 &

.venv/bin/ruff check bot backends policies tests bench
.venv/bin/ruff format --check bot backends policies tests bench
.venv/bin/mypy
.venv/bin/lint-imports  # the layers and the third-party rooms (pyproject.toml [tool.importlinter])
.venv/bin/pytest -q -rs "$@"  # -rs: every skipped test with its reason
