"""The root-owned site file configures the CLI once: the policy, Slurm and Kubernetes settings (and
the admins, tests/integration/test_cli_admins.py), never a secret; the caller's CONCIERGE_* still win.

The CLI reads only /etc/gpu-concierge/site.yaml, on purpose (bot/site_file.py). So each run here
is the installed console script in a private mount namespace where a temporary directory is
mounted on /etc/gpu-concierge: the real path, read and trust-checked as on a site, while the
machine's own /etc stays as it is (the empty mount point is created if missing)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bot.site_file import SITE_FILE
from tests.helpers.cli import CONCIERGE, Result

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare(1) to mount a site directory on /etc/gpu-concierge",
)
MOUNTED = 'mount --bind "$0" "$1" && shift && exec "$@"'


def concierge(site: Path, tmp_path: Path, *args: str, **env: str) -> Result:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONCIERGE_")}
    clean |= {"HOME": str(tmp_path), "CONCIERGE_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}", **env}
    SITE_FILE.parent.mkdir(mode=0o755, exist_ok=True)
    argv = ["unshare", "--mount", "sh", "-c", MOUNTED, str(site), str(SITE_FILE.parent), CONCIERGE, *args]
    done = subprocess.run(argv, env=clean, capture_output=True, text=True, timeout=60, check=False)
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    directory = tmp_path / "site"
    directory.mkdir(mode=0o755)
    (directory / "policy.yaml").write_text("max_gpus_per_job: 1\n")
    (directory / "other.yaml").write_text("max_gpus_per_job: 3\n")
    (directory / "site.yaml").write_text(
        f"policy_file: {directory / 'policy.yaml'}\n"
        "slurm: {bin_dir: /nonexistent/slurm}\n"
        "k8s: {kubeconfig: /nonexistent/kubeconfig}\n"
    )
    return directory


def test_the_site_file_sets_the_policy_slurm_and_kubernetes(site: Path, tmp_path: Path) -> None:
    shown = concierge(site, tmp_path, "policy", "show")
    assert shown.code == 0 and "max_gpus_per_job: 1\n" in shown.out, shown.err
    slurm = concierge(site, tmp_path, "free")
    assert slurm.code == 6 and "/nonexistent/slurm" in slurm.err, slurm.err
    k8s = concierge(site, tmp_path, "--as", "alice", "queue", "--backend", "k8s")
    assert k8s.code == 7 and "/nonexistent/kubeconfig" in k8s.err, k8s.err  # turned on, not "not configured"
    # The caller's own variable still wins over the site's default.
    mine = concierge(site, tmp_path, "policy", "show", CONCIERGE_POLICY_FILE=str(site / "other.yaml"))
    assert "max_gpus_per_job: 3\n" in mine.out, mine.err


@pytest.mark.parametrize(
    "secret", ["slack: {bot_token: xoxb-1}", "database_url: postgresql://u:pw@db/c", "llm: {api_key: k}"]
)
def test_a_secret_in_the_site_file_is_refused(site: Path, tmp_path: Path, secret: str) -> None:
    with (site / "site.yaml").open("a") as written:
        written.write(secret + "\n")
    refused = concierge(site, tmp_path, "policy", "show")
    assert refused.code == 7 and "never a secret" in refused.err and refused.out == "", refused.err
