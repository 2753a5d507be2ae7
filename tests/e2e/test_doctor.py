"""`concierge doctor` as an admin runs it: every configured dependency healthy (all ✓, exit 0),
then each broken in turn, saying which line failed and exiting with that failure's code.

Healthy means: SQLite migrated to head, the local Slurm (read only: `sinfo --version`,
`scontrol ping`), the Kubernetes emulator with the bot's RBAC, the fake vLLM serving the model,
the fake Slack granting the manifest's scopes, one dcgm-exporter endpoint. Slurm is broken by a
client path that does not exist or a slurmrestd URL that refuses, never by stopping the shared
cluster; PostgreSQL by a URL to a closed port.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic import command

from bot.slack.health import MANIFEST_SCOPES
from bot.store import Store
from bot.store.database import alembic_config
from tests.gpu_fakes.dcgm_fixtures import fixture
from tests.gpu_fakes.http_server import Received, Reply, dead_url, serving
from tests.helpers.cli import Cli, cli_env
from tests.k8s_emulator import BOT_USER, KubeEmulator
from tests.openai_fake import DEFAULT_MODEL, FakeVllm, Structured
from tests.slack_fake import FakeSlack
from tests.slurm_cluster import NOT_RUNNING, _unavailable

pytestmark = pytest.mark.slurm  # the healthy Slurm is the local one, only read


@dataclass
class Site:
    home: Path
    env: dict[str, str]
    kube: KubeEmulator
    model: FakeVllm
    slack: FakeSlack

    def doctor(self, *args: str) -> tuple[int, str, str]:
        done = Cli(self.env)("doctor", *args)
        return done.code, done.out, done.err


def _controller_answers() -> str | None:
    """None when the local slurmctld answers `scontrol ping` (all doctor reads), else why not; the
    other daemons `slurm_status` waits for (slurmdbd, slurmrestd) are not asked by these tests."""
    try:
        done = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{NOT_RUNNING} ({e})"
    return None if done.returncode == 0 else f"{NOT_RUNNING} (scontrol ping: {done.stdout.strip()})"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    if (why := _controller_answers()) is not None:
        _unavailable(why)
    database = f"sqlite:///{tmp_path / 'concierge.db'}"
    Store(database).migrate()

    def exporter(request: Received) -> Reply:
        return Reply(body=fixture("classic-hostname.txt").encode())

    with (
        KubeEmulator() as kube,
        FakeVllm(default=Structured({"intent": "queue"})) as model,
        FakeSlack() as slack,
        serving(exporter) as (dcgm_url, _),
    ):
        kube.add_token("bot-token", BOT_USER)
        kube.allow_bot()
        slack.oauth_scopes = tuple(sorted(MANIFEST_SCOPES))
        env = cli_env(
            tmp_path,
            database,
            K8S__KUBECONFIG=str(kube.write_kubeconfig(tmp_path / "kubeconfig", "bot-token")),
            LLM_URL=model.base_url,
            LLM_MODEL=DEFAULT_MODEL,
            SLACK__BOT_TOKEN="xoxb-1",
            SLACK__APP_TOKEN="xapp-1",
            SLACK__API_URL=slack.api_url,
            GPU__DCGM__ENDPOINTS=f"{dcgm_url}/metrics",
        )
        yield Site(tmp_path, env, kube, model, slack)


def test_all_healthy_is_all_ticks_and_exit_0(site: Site) -> None:
    code, out, err = site.doctor()
    assert code == 0, out + err
    assert "✗" not in out and out.rstrip().endswith("all checks passed")
    for line in (
        "✓ database: migrations current: at 0008",
        "✓ slurm (cli): controller answers",
        "✓ kubernetes: may impersonate users (cluster-wide)",
        "✓ model: serves " + DEFAULT_MODEL,
        "✓ model: a constrained call answers",
        "✓ slack: scopes the app manifest asks for: all 8 granted",
        "✓ slack: Socket Mode app token (apps.connections.open)",
        "✓ dcgm: ",
        "✓ schedule: leader: none yet",
    ):
        assert line in out, out
    code, out, _ = site.doctor("--json")
    checks = json.loads(out)
    assert code == 0 and all(check["ok"] for check in checks)
    assert {check["dependency"] for check in checks} == {
        "database", "schedule", "slurm (cli)", "kubernetes", "model", "slack", "dcgm",
    }  # fmt: skip


def _postgres_closed_port(site: Site) -> None:
    site.env["CONCIERGE_DATABASE_URL"] = dead_url("/concierge").replace("http://", "postgresql://concierge@")


def _sqlite_one_migration_behind(site: Site) -> None:
    store = Store(site.env["CONCIERGE_DATABASE_URL"])
    with store.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0007")


def _slurm_client_missing(site: Site) -> None:
    site.env["CONCIERGE_SLURM__BIN_DIR"] = str(site.home / "no-slurm-here")


def _slurmrestd_refuses(site: Site) -> None:
    site.env |= {
        "CONCIERGE_SLURM__DRIVER": "rest",
        "CONCIERGE_SLURM__REST_URL": dead_url(""),
        "CONCIERGE_SLURM__REST_TOKEN": "a.b.c",
    }


def _wrong_kubernetes_token(site: Site) -> None:
    site.kube.write_kubeconfig(site.env["CONCIERGE_K8S__KUBECONFIG"], "not-the-bot-token")


def _kubernetes_account_may_not_impersonate(site: Site) -> None:
    site.kube.add_token("reader-token", "reader")
    site.kube.allow("reader", ["get", "list", "watch"], api_group="*", resource="*")
    site.kube.allow("reader", ["impersonate"], resource=["groups"])  # users only is missing
    site.kube.write_kubeconfig(site.env["CONCIERGE_K8S__KUBECONFIG"], "reader-token")


def _model_down(site: Site) -> None:
    site.env["CONCIERGE_LLM_URL"] = dead_url("/v1")


def _model_not_served(site: Site) -> None:
    site.env["CONCIERGE_LLM_MODEL"] = "meta-llama/Llama-3.1-8B-Instruct"


def _bad_slack_token(site: Site) -> None:
    site.slack.fail("auth.test", error="invalid_auth")


def _scope_not_granted(site: Site) -> None:
    site.slack.oauth_scopes = tuple(sorted(MANIFEST_SCOPES - {"files:write"}))


def _dcgm_exporter_down(site: Site) -> None:
    site.env["CONCIERGE_GPU__DCGM__ENDPOINTS"] = dead_url()


@pytest.mark.parametrize(
    ("break_it", "failed_line", "code"),
    [
        (_postgres_closed_port, "✗ database: reachable: postgresql+psycopg://concierge@127.0.0.1", 6),
        (_sqlite_one_migration_behind, "✗ database: migrations current: the database is at 0007", 7),
        (_slurm_client_missing, "✗ slurm (cli): client commands found: sinfo is not in", 6),
        (_slurmrestd_refuses, "✗ slurm (rest): reachable: slurmrestd at http://127.0.0.1", 6),
        (
            _wrong_kubernetes_token,
            "✗ kubernetes: reachable with the bot's credentials: the Kubernetes API refused",
            7,
        ),
        (_kubernetes_account_may_not_impersonate, "✗ kubernetes: may impersonate users (cluster-wide)", 7),
        (_model_down, "✗ model: reachable: http://127.0.0.1", 6),
        (
            _model_not_served,
            f"✗ model: serves meta-llama/Llama-3.1-8B-Instruct: it serves {DEFAULT_MODEL}",
            7,
        ),
        (_bad_slack_token, "✗ slack: bot token accepted (auth.test): Slack refused it: invalid_auth", 7),
        (_scope_not_granted, "✗ slack: scopes the app manifest asks for: missing files:write", 7),
        (_dcgm_exporter_down, "✗ dcgm: http://127.0.0.1", 6),
    ],
)
def test_one_broken_dependency_is_one_cross_with_its_fix_and_code(
    site: Site, break_it: Callable[[Site], None], failed_line: str, code: int
) -> None:
    break_it(site)
    exit_code, out, err = site.doctor()
    assert exit_code == code, out + err
    crosses = [line for line in out.splitlines() if line.startswith("✗")]
    assert len(crosses) == 1 and crosses[0].startswith(failed_line), out
    fix = out.splitlines()[out.splitlines().index(crosses[0]) + 1]
    assert fix.startswith("    fix: "), out
    assert "incident" not in err


def test_json_names_the_failed_check_and_its_fix(site: Site) -> None:
    _bad_slack_token(site)
    code, out, _ = site.doctor("--json")
    failures = [check for check in json.loads(out) if not check["ok"]]
    assert code == 7 and [(c["dependency"], c["what"], c["exit_code"]) for c in failures] == [
        ("slack", "bot token accepted (auth.test)", 7)
    ]
    assert "CONCIERGE_SLACK__BOT_TOKEN" in failures[0]["fix"]
