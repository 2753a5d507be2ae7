"""The real vLLM server of scripts/local-vllm.sh for the `real_vllm` tests: found, waited for, read back.

`scripts/test.sh` starts `scripts/local-vllm.sh up` in the background before lint and the type
check (installing vLLM and starting it takes minutes on 2 cores), so `wait_for_local_vllm` waits for
a start under way, up to CONCIERGE_VLLM_WAIT_S (600 s), and fails with the logs' tails when it
fails. With no server and no start under way the tests skip, saying how to start it; with
CONCIERGE_REQUIRE_VLLM=1 (CI) they fail instead, so CI cannot pass by skipping them.

What the server made of each request is read from its own log: uvicorn's access line (the status
it answered) and vLLM's DEBUG line naming request fields it ignored, the way it silently ignores
`guided_json` since 0.12 (the script turns that one logger on).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.llm.settings import LlmSettings

SCRIPT = Path(__file__).parents[2] / "scripts" / "local-vllm.sh"
FIRST_START = "the first `up` installs vLLM for CPU and a 135M model: ~4 min, 3.5 GB; a start takes ~1 min"
REQUIRE_VARIABLE = "CONCIERGE_REQUIRE_VLLM"
WAIT_VARIABLE = "CONCIERGE_VLLM_WAIT_S"
# A 135M model on 2 CPU cores answers in 2-7 s, more while the rest of the suite runs beside it.
GENEROUS_TIMEOUT_S = 60.0
_ACCESS_RE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>/\S*) HTTP/[\d.]+" (?P<status>\d{3})')
_IGNORED = ("were present in the request but ignored", "removed guided-decoding field")
_UP, _STARTING = 0, 2  # scripts/local-vllm.sh status's exit codes (1: down)


@dataclass(frozen=True)
class Exchange:
    """One request as the server's access log shows it."""

    method: str
    path: str
    status: int


@dataclass(frozen=True)
class LocalVllm:
    url: str  # the OpenAI base URL, ending in /v1
    model: str  # the served model name
    log: Path

    def settings(self, **overrides: object) -> LlmSettings:
        """The product's settings for this server (a generous timeout unless the test sets one)."""
        values: dict[str, object] = {"url": self.url, "model": self.model, "timeout_s": GENEROUS_TIMEOUT_S}
        return LlmSettings.model_validate(values | overrides)

    def mark(self) -> int:
        """Where the log ends now: what the server says from here on is the test's."""
        return self.log.stat().st_size

    def said_since(self, mark: int) -> str:
        with self.log.open("rb") as log:
            log.seek(mark if mark <= self.log.stat().st_size else 0)
            return log.read().decode(errors="replace")

    def exchanges_since(self, mark: int, expected: int, within_s: float = 5.0) -> list[Exchange]:
        """The requests answered since `mark` (the access line can trail the answer by a moment)."""
        deadline = time.monotonic() + within_s
        while True:
            found = [
                Exchange(m["method"], m["path"], int(m["status"]))
                for m in _ACCESS_RE.finditer(self.said_since(mark))
                if m["path"] != "/v1/models" or expected == 0
            ]
            if len(found) >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def ignored_since(self, mark: int) -> list[str]:
        """vLLM's lines about request fields it ignored since `mark` (empty: it used every field)."""
        return [line for line in self.said_since(mark).splitlines() if any(s in line for s in _IGNORED)]


@dataclass(frozen=True)
class Status:
    code: int
    said: str  # the script's words (stderr)
    values: dict[str, str]


def status() -> Status:
    done = subprocess.run([str(SCRIPT), "status"], capture_output=True, text=True, timeout=60, check=False)
    values = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return Status(done.returncode, done.stderr.strip(), values)


def _tail(path: str | None, lines: int = 25) -> str:
    if not path or not Path(path).exists():
        return ""
    return f"\n--- {path} (last {lines} lines):\n" + "\n".join(Path(path).read_text().splitlines()[-lines:])


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_VARIABLE}=1 requires it")
    pytest.skip(reason)


def wait_for_local_vllm() -> LocalVllm:
    """The server once it answers; waits while a start is under way, fails or skips otherwise."""
    limit = float(os.environ.get(WAIT_VARIABLE, "600"))
    deadline = time.monotonic() + limit
    while True:
        now = status()
        if now.code == _UP:
            return LocalVllm(now.values["url"], now.values["model"], Path(now.values["log"]))
        logs = "".join(_tail(now.values.get(name)) for name in ("script_log", "install_log", "log"))
        if now.code != _STARTING:
            failed = "failed" in now.said  # the last `up` failed: its logs say why
            said = now.said.removeprefix("local-vllm: ") or "scripts/local-vllm.sh status failed"
            _unavailable(f"no real vLLM server ({said}; {FIRST_START}){logs if failed else ''}")
        if time.monotonic() > deadline:
            pytest.fail(f"vLLM was still starting after {limit:g} s ({WAIT_VARIABLE}): {now.said}{logs}")
        time.sleep(2)
