#!/usr/bin/env bash
# The README's first command: set everything up (scripts/bootstrap.sh), then walk one person's
# GPU job through the product on the local Slurm with the default SQLite store: what is free,
# a job submitted as alice, a second one that has to wait and why, the queue, the tracker
# recording the states, cancelling, and the history the store kept.
set -euo pipefail
cd "$(dirname "$0")/.."
# Root is needed to install packages and run Slurm with test users; come back through sudo if need be.
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then exec sudo -E "$0" "$@"; fi

scripts/bootstrap.sh
concierge=.venv/bin/concierge
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
submitted() { sed -n 's/^Submitted job \([0-9]*\).*/\1/p'; }
# Also shown on stderr, through the script's own stderr (>&2): `tee /dev/stderr` would reopen it and
# truncate a log it is redirected to, and even `tee -a` would leave the script's later writes overwriting it.
shown() { local text; text=$(cat); printf '%s\n' "$text" >&2; printf '%s\n' "$text"; }

step "$concierge" free
first=$("$concierge" --as alice ask --yes "2 A100s for 30 minutes to run sleep 600" | shown | submitted)
second=$("$concierge" --as alice ask --yes "2 A100s for 30 minutes to run sleep 600" | shown | submitted)
sleep 2  # the scheduler settles a fresh submission within about a second
step "$concierge" queue
step "$concierge" track --once
step "$concierge" why "$second"
step "$concierge" --as bob cancel "$second" || echo "(refused, as it should be: the job is alice's)"
step "$concierge" --as alice cancel "$second"
step "$concierge" --as alice cancel "$first"
step "$concierge" track --once
step "$concierge" --as alice status "$first"
step "$concierge" --as alice history
