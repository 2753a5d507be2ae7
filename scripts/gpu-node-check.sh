#!/usr/bin/env bash
# Checks the concierge's GPU telemetry on a real GPU node, end to end, and leaves the evidence in
# OUT (default ./gpu-node-check): NVML status and one raw reading per GPU, the agent sampling into
# a fresh SQLite store, its /metrics read back, and the digest (text + chart) built from the store.
# With --load (needs PyTorch) GPU 0 runs matrix products for the first half of the sampling so the
# chart shows busy and idle minutes. Usage: scripts/gpu-node-check.sh [--load] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
load=0; [ "${1:-}" = "--load" ] && { load=1; shift; }
seconds=${1:-120}
out=${OUT:-./gpu-node-check}
mkdir -p "$out"
export CONCIERGE_DATABASE_URL="sqlite:///$out/concierge.db"
py=${PYTHON:-python3}
concierge() { "$py" -c 'from bot.cli.main import main; main()' "$@"; }

concierge agent --check | tee "$out/agent-check.txt"
"$py" scripts/nvml_readings.py > "$out/nvml-readings.json"
if [ "$load" = 1 ]; then
  "$py" - "$((seconds / 2))" <<'PY' &
import sys, time, torch
a = torch.randn(8192, 8192, device="cuda"); b = torch.randn(8192, 8192, device="cuda")
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    (a @ b).sum().item()
PY
fi
concierge agent --store --serve 127.0.0.1:9400 --interval 5 --passes "$((seconds / 5))" > "$out/agent.txt" 2>&1 &
agent=$!
sleep 12
"$py" -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:9400/metrics", timeout=5).read().decode())' > "$out/metrics.txt"
concierge digest --dcgm http://127.0.0.1:9400/metrics > "$out/snapshot.txt" 2>&1 || true
wait "$agent"
wait || true
concierge digest --since 1h --chart "$out/digest.png" > "$out/digest.txt" 2> "$out/digest-notes.txt"
cat "$out/digest.txt" "$out/digest-notes.txt"
