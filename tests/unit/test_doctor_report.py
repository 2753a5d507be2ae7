"""The doctor's report: the scopes it expects are the manifest's, and its exit code is the first
failure's, in the order a request meets the dependencies."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from bot.doctor.report import Check, as_json, as_text, exit_code, failed, passed
from bot.slack.health import MANIFEST_SCOPES

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "slack-manifest.yml"


def test_the_expected_scopes_are_the_manifests() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == MANIFEST_SCOPES


def test_exit_code_is_the_first_failures_and_0_when_all_pass() -> None:
    healthy = [passed("database", "reachable"), passed("slurm (cli)", "client commands found")]
    assert exit_code(healthy) == 0
    broken = [
        *healthy,
        failed("model", "reachable", "refused", "start it", 6),
        failed("slack", "bot token accepted", "invalid_auth", "copy it again", 7),
    ]
    assert exit_code(broken) == 6
    assert exit_code([Check("x", "y", False)]) == 7  # a failure without its own code is configuration


def test_text_marks_each_line_and_shows_the_fix_under_a_failure() -> None:
    text = as_text(
        [passed("database", "reachable", "sqlite:///x"), failed("model", "reachable", "refused", "start it")]
    )
    assert text.splitlines() == [
        "✓ database: reachable: sqlite:///x",
        "✗ model: reachable: refused",
        "    fix: start it",
        "1 of 2 checks failed",
    ]
    assert json.loads(as_json([passed("database", "reachable")])) == [
        {"dependency": "database", "what": "reachable", "ok": True, "detail": "", "fix": "", "exit_code": 0}
    ]
