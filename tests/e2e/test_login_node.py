"""A login node's path end to end: `concierge serve` (the Slack fake in HTTP mode, the login service on
127.0.0.1) over the real local Slurm and one SQLite store; alice and bob run the installed CLI as
themselves (runuser), root's site file naming the service, munged proving who they are. alice's
job runs as alice in Slurm, her y/N prompt answers the service's preview, bob cannot touch it."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store import Store
from tests.helpers.cli import squeue_field, wait_for
from tests.helpers.login_node import LoginNode, login_env, service_site
from tests.helpers.serve import concierge_serve, free_port, listening, serve_env
from tests.slack_fake import FakeSlack

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("munge") is None,
        reason="needs root (runuser; a private mount namespace for the site file), unshare(1) and munge",
    ),
]
JOB = "1 l40s for 5 minutes to run sleep 120"


@pytest.fixture
def service(slurm: None, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(the service's URL, its database URL) while `concierge serve` runs."""
    database_url = f"sqlite:///{tmp_path / 'service.db'}"
    port = free_port()
    with FakeSlack() as slack:
        env = serve_env(tmp_path, database_url, slack, LOGIN_SERVICE__PORT=str(port), METRICS__PORT="0")
        with concierge_serve(env) as bot:
            deadline = time.monotonic() + 60
            while not listening(port):
                assert bot.poll() is None, "serve ended before the login service opened its port"
                assert time.monotonic() < deadline, "the login service did not open its port"
                time.sleep(0.2)
            yield f"http://127.0.0.1:{port}", database_url


def test_alice_submits_through_the_service_and_her_job_runs_as_her(
    service: tuple[str, str], tmp_path: Path
) -> None:
    url, database_url = service
    node = LoginNode(service_site(tmp_path / "site", url), login_env(tmp_path / "home"))

    declined = node.in_terminal("alice", "ask", JOB, answer="n")
    assert "#SBATCH --gres=gpu:l40s:1" in declined and "Not submitted." in declined, declined
    accepted = node.in_terminal("alice", "ask", JOB, answer="y")
    submitted = re.search(r"Submitted job (\d+) \(request", accepted)
    assert submitted, accepted
    job = submitted.group(1)
    assert squeue_field(job, "%u") == "alice"  # sbatch --uid: the job runs as the person

    queue = node.concierge("bob", "queue")
    assert queue.code == 0 and job in queue.out and "alice" in queue.out, queue.err
    refused = node.concierge("bob", "cancel", job)
    assert refused.code == 3 and "alice" in refused.err, refused
    assert squeue_field(job, "%T") in {"PENDING", "RUNNING"}
    status = node.concierge("alice", "status", job)
    assert status.code == 0 and "Requested by alice via cli" in status.out, status
    assert node.concierge("bob", "ask", "--yes", "1 a100 for 5 minutes to run sleep 60").code == 0
    as_root = node.concierge("root", "ask", "--yes", JOB)  # root's uid is vouched for, but owns no job
    assert as_root.code == 3 and "As root, act for the person: `concierge --as USER ask …`" in as_root.err

    cancelled = node.concierge("alice", "cancel", job)
    assert cancelled.code == 0 and f"Cancelled job {job}." in cancelled.out, cancelled.err
    wait_for(lambda: squeue_field(job, "%T") in {"", "CANCELLED", "COMPLETING"})
    alices = node.concierge("alice", "history")
    assert "declined" in alices.out and job in alices.out and "a100" not in alices.out, alices

    store = Store(database_url)  # the one store: both people's requests, as the service recorded them
    try:
        recorded = store.history(None, 20)
    finally:
        store.close()
    assert {r.requester for r in recorded} == {"alice", "bob", "root"}
    assert [r.outcome for r in recorded if r.requester == "root"] == ["denied"]
    assert {r.door for r in recorded} == {"cli"}
    assert not (tmp_path / "home" / "never-made.db").exists()
