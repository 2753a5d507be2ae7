"""The README's exit codes, each with a message that names the setting or the way out: the
installed `concierge` run as a person would, with SQLite in a temporary directory. The tests that
plan or submit a job need the local Slurm; the others fail before any cluster is asked."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers.cli import Cli
from tests.slack_fake import FakeSlack

DEFINED = "1 a100 for 10 minutes to run sleep 30"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCIERGE_")}
    env |= {"HOME": str(tmp_path), "CONCIERGE_DATABASE_URL": f"sqlite:///{tmp_path / 'concierge.db'}"}
    return Cli(env)


def with_env(cli: Cli, **extra: str) -> Cli:
    return Cli(cli.env | extra)


@pytest.mark.parametrize(
    ("env", "argv", "code", "named"),
    [
        (
            {"CONCIERGE_SLURM__COMMAND_TIMEOUT_S": "abc"},
            ("queue",),
            7,
            ["CONCIERGE_SLURM__COMMAND_TIMEOUT_S", "'abc'", "valid number"],
        ),
        ({"CONCIERGE_ADMINS": '["alice"'}, ("queue",), 7, ["CONCIERGE_ADMINS", "`a,b`"]),
        (
            {"CONCIERGE_DEFAULT_BACKEND": "pbs"},
            ("queue",),
            7,
            ["CONCIERGE_DEFAULT_BACKEND", "'slurm' or 'k8s'"],
        ),
        ({}, ("--as", "alice", "queue", "--backend", "k8s"), 7, ["CONCIERGE_K8S__KUBECONFIG"]),
        ({}, ("serve",), 7, ["CONCIERGE_SLACK__BOT_TOKEN"]),
        ({}, ("ask", "--json", DEFINED), 2, ["--dry-run", "--yes"]),
    ],
)
def test_a_setting_or_usage_error_names_what_to_change(
    cli: Cli, env: dict[str, str], argv: tuple[str, ...], code: int, named: list[str]
) -> None:
    done = with_env(cli, **env)(*argv)
    assert (done.code, done.out) == (code, ""), done.err
    assert all(words in done.err for words in named), done.err
    assert "incident" not in done.err


def test_a_list_setting_takes_plain_commas(cli: Cli) -> None:
    # As root, CONCIERGE_ADMINS counts: alice is an admin through the second name of a plain list.
    assert with_env(cli, CONCIERGE_ADMINS="bob, alice")("--as", "alice", "users", "list").code == 0
    refused = cli("--as", "alice", "users", "list")
    assert refused.code == 3 and "admins:` in /etc/gpu-concierge/site.yaml" in refused.err  # the way out


def test_serve_says_slack_is_unreachable_or_refuses_the_token(cli: Cli) -> None:
    tokens = {"CONCIERGE_SLACK__BOT_TOKEN": "xoxb-1", "CONCIERGE_SLACK__APP_TOKEN": "xapp-1"}
    with FakeSlack() as slack:
        slack.fail("auth.test", error="invalid_auth")
        refused = with_env(cli, **tokens, CONCIERGE_SLACK__API_URL=slack.api_url)("serve")
        unreachable_url = slack.api_url
    assert refused.code == 7 and "CONCIERGE_SLACK__BOT_TOKEN (invalid_auth)" in refused.err, refused.err
    unreachable = with_env(cli, **tokens, CONCIERGE_SLACK__API_URL=unreachable_url)("serve")  # stopped now
    assert unreachable.code == 6, unreachable.err
    assert "Slack could not be reached" in unreachable.err and "CONCIERGE_SLACK__API_URL" in unreachable.err


def test_version_and_the_mapping_commands(cli: Cli) -> None:
    assert cli("--version").out.startswith("concierge ")
    assert cli("users", "map", "U0ALICE", "--unix", "alice", "--group", "ml").code == 0
    listed = cli("users", "list").out.splitlines()
    assert listed[0].split() == ["REQUESTER", "UNIX", "K8S", "GROUPS", "NAMESPACE", "ADMIN"]
    assert listed[1].split() == ["U0ALICE", "alice", "-", "ml", "-", "no"]
    assert cli("users", "unmap", "U0ALICE").code == 0
    assert "U0ALICE" not in cli("users", "list").out
    again = cli("users", "unmap", "U0ALICE")
    assert again.code == 2 and "concierge users list" in again.err


@pytest.mark.slurm
@pytest.mark.parametrize(
    ("text", "code", "verdict"),
    [
        (DEFINED, 0, "allow"),
        ("6 a100 for 1 hour to run sleep 1", 3, "needs_approval"),
        ("999 a100 for 9 days to run sleep 1", 3, "deny"),
    ],
)
def test_policy_check_exits_by_its_verdict(slurm: None, cli: Cli, text: str, code: int, verdict: str) -> None:
    checked = cli("--as", "alice", "policy", "check", text)
    assert (checked.code, checked.out.splitlines()[0]) == (code, verdict), checked.err


@pytest.mark.slurm
@pytest.mark.parametrize("command", ["ask --dry-run", "policy check"])
def test_every_limit_a_request_is_past_is_told_at_once(slurm: None, cli: Cli, command: str) -> None:
    refused = cli("--as", "alice", *command.split(), "999 a100 for 900 days to run sleep 1")
    assert refused.code == 2, refused.err
    assert "900 days, more than the 366 days" in refused.err  # in days, not minutes
    assert "999 GPUs asked, your limit is 4 per job" in refused.err  # and the GPUs, in the same answer


@pytest.mark.slurm
def test_root_is_told_to_act_for_someone(slurm: None, cli: Cli) -> None:
    refused = cli("ask", "--dry-run", DEFINED)
    assert refused.code == 3 and "concierge --as USER ask" in refused.err, refused.err


@pytest.mark.slurm
def test_ask_json_yes_prints_only_json(slurm: None, cli: Cli) -> None:
    done = cli("--as", "alice", "ask", "--json", "--yes", DEFINED)
    assert done.code == 0, done.err
    printed = json.loads(done.out)
    assert printed["decision"]["verdict"] == "allow"
    assert printed["submitted"]["job_id"].isdigit() and printed["submitted"]["request_id"]
