"""`concierge serve` as deployed: its schedule samples a dcgm-exporter endpoint into the store,
posts a digest with its chart to a channel on a crontab schedule, and DMs the owner of a GPU
left idle for an hour — all to the fake Slack Web API, from the installed console script.

The digest is due at the next minute boundary ("* * * * *"), so the test takes up to a minute.
An hour of idle samples held by alice's job is in the store before the bot starts, as the
agent (or earlier scrapes) would have left them, and for the next few minutes as the agent would
go on writing them: the nudge looks at the last whole hour up to when it runs, however slowly the
bot starts on a loaded machine.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backends.gpu.samples import GpuHolder, GpuSample
from backends.types import Identity
from bot.store import Store
from bot.store.telemetry import TelemetryStore
from tests.gpu_fakes.dcgm_fixtures import fixture
from tests.gpu_fakes.http_server import Reply, serving
from tests.helpers.serve import concierge_serve, serve_env
from tests.slack_fake import FakeSlack

CONCIERGE = str(Path(sys.executable).with_name("concierge"))
ALICE_SLACK = "U0ALICE01"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def seed_an_idle_hour(database_url: str) -> None:
    store = Store(database_url)
    store.migrate()
    store.map_identity(Identity(requester=ALICE_SLACK, unix_user="alice"))
    now = datetime.now(UTC)
    holder = GpuHolder(backend="slurm", job_id="777", owner="alice")
    samples = [
        (
            GpuSample(
                at=now - timedelta(seconds=30 * i), host="gpu-9", gpu="0", source="dcgm", utilization_pct=0.0
            ),
            holder,
        )
        for i in range(-10, 130)  # up to five minutes ahead
    ]
    TelemetryStore(store.engine).record(samples)
    store.close()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def test_serve_posts_the_scheduled_digest_with_its_chart_and_nudges_the_idle_owner(
    slack: FakeSlack, tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path / 'concierge.db'}"
    seed_an_idle_hour(database_url)
    with serving(lambda _: Reply(body=fixture("classic-hostname.txt").encode())) as (exporter, scraped):
        env = serve_env(
            tmp_path,
            database_url,
            slack,
            GPU__DCGM__ENDPOINTS=json.dumps([f"{exporter}/metrics"]),
            SCHEDULE__DIGESTS=json.dumps([{"channel": "C0DIGEST", "cron": "* * * * *", "since": "2h"}]),
            SCHEDULE__SAMPLE_INTERVAL_S="1",
            SCHEDULE__NUDGE_INTERVAL_S="1",
        )
        with concierge_serve(env):
            [nudge] = slack.wait_for("chat.postMessage", timeout=60)
            [opened] = slack.calls_to("conversations.open")
            assert opened["users"] == ALICE_SLACK  # a DM to the owner
            dm = nudge["channel"]
            assert "777" in json.dumps(nudge["blocks"])
            posts = slack.wait_for("chat.postMessage", count=2, timeout=75)
            digest = next(p for p in posts if p["channel"] == "C0DIGEST")
            shown = json.dumps(digest["blocks"])
            assert "777" in shown  # alice's idle job, listed for the admins with what was done about it
            assert "Idle-GPU nudges" in shown and "owner told" in shown
            assert scraped, "the schedule scraped the exporter"
            [upload] = slack.wait_for("files.completeUploadExternal", timeout=30)
            assert upload["channel_id"] == "C0DIGEST"
            assert next(iter(slack.uploads.values())).startswith(PNG_SIGNATURE)
            nudges = [p for p in slack.calls_to("chat.postMessage") if p["channel"] == dm]
            assert len(nudges) == 1  # once per cooldown, though the nudge timer ran many times
