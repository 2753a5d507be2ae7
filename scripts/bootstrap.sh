#!/usr/bin/env bash
# Installs everything GPU Concierge needs on a fresh Debian/Ubuntu machine, idempotently:
# Debian packages, a virtual environment with the project and its dev tools in .venv, and a real
# single-node Slurm with fake GPUs (scripts/local-slurm.sh). Run as root: Slurm and its test users
# need it. Shared by the README's two commands and by .ci/run, so they cannot drift apart.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "bootstrap: run as root (sudo $0): it installs Debian packages and starts Slurm" >&2
  exit 1
fi

need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v runuser >/dev/null || need_apt+=(util-linux)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# Reinstall only when the project's declared dependencies changed since the last bootstrap.
stamp=.venv/.concierge-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi

scripts/local-slurm.sh up
