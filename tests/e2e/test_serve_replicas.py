"""Two `concierge serve` replicas against one PostgreSQL, as deploy/k8s runs them: both start on an
empty database (the migrations run once, under their lock), one leads the schedule, and when the
leader is killed (SIGKILL: no goodbye, its lease simply stops being renewed) the other takes over
and posts the digest, once.

Each replica scrapes its own fake dcgm-exporter, so the test sees which one runs the schedule.
The digest is due at each minute boundary, so the first test takes up to about a minute and a half.
A replica stopped the way Kubernetes stops a pod (SIGTERM) hands its lease over at once.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from backends.errors import ConfigurationError
from bot.store import Store
from bot.store.schedule import ScheduleStore
from tests.gpu_fakes.dcgm_fixtures import fixture
from tests.gpu_fakes.http_server import Received, Reply, serving
from tests.helpers.cli import CONCIERGE
from tests.helpers.serve import serve_env, stopped
from tests.slack_fake import FakeSlack

pytestmark = pytest.mark.postgres

DIGEST_CHANNEL = "C0DIGEST"
DIGEST = "every-minute"
LEASE_TTL_S = 4  # short, so a killed leader is replaced within the test


def replica_env(
    database_url: str, slack: FakeSlack, exporter: str, home: Path, lease_ttl_s: float
) -> dict[str, str]:
    return serve_env(
        home,
        database_url,
        slack,
        METRICS__PORT="0",  # two on one host
        GPU__DCGM__ENDPOINTS=json.dumps([f"{exporter}/metrics"]),
        SCHEDULE__DIGESTS=json.dumps(
            [{"channel": DIGEST_CHANNEL, "cron": "* * * * *", "since": "1h", "name": DIGEST}]
        ),
        SCHEDULE__SAMPLE_INTERVAL_S="1",
        SCHEDULE__LEASE_TTL_S=str(lease_ttl_s),
        SCHEDULE__LEASE_RENEW_S="1",
    )


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.2)


def leader_pid(schedule: ScheduleStore) -> int | None:
    """The pid in the lease holder's name (host:pid:nonce), while the lease is held."""
    try:
        lease = schedule.lease("schedule")
    except ConfigurationError:  # the replicas have not created the tables yet
        return None
    return None if lease is None else int(lease.holder.split(":")[1])


@dataclass
class Replica:
    process: subprocess.Popen[bytes]
    scraped: list[Received]  # what its own exporter was asked


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@contextmanager
def two_replicas(
    database_url: str, slack: FakeSlack, tmp_path: Path, lease_ttl_s: float
) -> Iterator[tuple[Replica, Replica]]:
    """Two `serve` processes started together on one database; (leader, follower) once one leads.
    Each one's output is checked for tracebacks when they are stopped."""
    store = Store(database_url)
    schedule = store.schedule()
    metrics = fixture("classic-hostname.txt").encode()
    replicas: list[Replica] = []
    with ExitStack() as stack:
        try:
            for name in ("a", "b"):
                exporter, seen = stack.enter_context(serving(lambda _: Reply(body=metrics)))
                home = tmp_path / name
                home.mkdir()
                env = replica_env(database_url, slack, exporter, home, lease_ttl_s)
                process = subprocess.Popen(
                    [CONCIERGE, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
                )
                replicas.append(Replica(process, seen))
            pids = {replica.process.pid: replica for replica in replicas}
            wait_until(lambda: leader_pid(schedule) in pids, 60, "a replica leads")
            leader = pids[leader_pid(schedule) or 0]
            [follower] = [replica for replica in replicas if replica is not leader]
            wait_until(lambda: len(leader.scraped) >= 2, 30, "the leader samples its exporter")
            time.sleep(2.5)  # two of the follower's lease tries (every 1 s): it must stay a follower
            assert leader_pid(schedule) == leader.process.pid
            assert follower.scraped == [], "only the leader runs the schedule"
            yield leader, follower
        finally:
            outputs = [stopped(replica.process) for replica in replicas]
            store.close()
    for printed in outputs:
        assert "Traceback" not in printed or "KeyboardInterrupt" in printed, printed


def test_one_replica_leads_and_the_other_takes_over_when_it_is_killed_posting_the_digest_once(
    postgres_url: str, slack: FakeSlack, tmp_path: Path
) -> None:
    schedule = Store(postgres_url).schedule()
    with two_replicas(postgres_url, slack, tmp_path, LEASE_TTL_S) as (leader, follower):
        leader.process.send_signal(signal.SIGKILL)
        leader.process.wait(timeout=10)
        killed_at = time.monotonic()
        new_leader = follower.process.pid
        wait_until(lambda: leader_pid(schedule) == new_leader, 3 * LEASE_TTL_S, "the follower takes over")
        taken_over_after = time.monotonic() - killed_at
        assert taken_over_after <= LEASE_TTL_S + 2, taken_over_after
        wait_until(lambda: len(follower.scraped) >= 1, 30, "the new leader samples its exporter")

        # The next minute boundary falls after the takeover: the new leader posts that digest.
        wait_until(
            lambda: any(run.holder.split(":")[1] == str(new_leader) for run in schedule.runs(DIGEST)),
            75,
            "the new leader posts the digest",
        )
        time.sleep(2)  # a second post would come right after the first
        posts = [p for p in slack.calls_to("chat.postMessage") if p["channel"] == DIGEST_CHANNEL]
        runs = schedule.runs(DIGEST)
        assert len(posts) == len(runs), (posts, runs)  # one post per period, by whoever claimed it
        assert len({run.period_start for run in runs}) == len(runs)


def test_a_replica_stopped_with_sigterm_hands_the_schedule_over_at_once(
    postgres_url: str, slack: FakeSlack, tmp_path: Path
) -> None:
    """A rolling restart: the old pod gets SIGTERM, releases its lease on the way out, and the other
    replica leads at its next try (every second), long before the lease (60 s here) would expire."""
    schedule = Store(postgres_url).schedule()
    with two_replicas(postgres_url, slack, tmp_path, lease_ttl_s=60) as (leader, follower):
        leader.process.send_signal(signal.SIGTERM)
        assert leader.process.wait(timeout=20) == 0
        stopped_at = time.monotonic()
        new_leader = follower.process.pid
        wait_until(lambda: leader_pid(schedule) == new_leader, 15, "the follower takes over")
        assert time.monotonic() - stopped_at < 10
        wait_until(lambda: len(follower.scraped) >= 1, 30, "the new leader samples its exporter")
