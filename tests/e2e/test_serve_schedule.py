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
import os
import signal
import subprocess
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
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONCIERGE_")}
        env |= {
            "HOME": str(tmp_path),
            "CONCIERGE_DATABASE_URL": database_url,
            "CONCIERGE_SLACK__BOT_TOKEN": "xoxb-test",
            "CONCIERGE_SLACK__MODE": "http",
            "CONCIERGE_SLACK__SIGNING_SECRET": "s3cret",
            "CONCIERGE_SLACK__PORT": "0",
            "CONCIERGE_SLACK__HOST": "127.0.0.1",
            "CONCIERGE_SLACK__API_URL": slack.api_url,
            "CONCIERGE_GPU__DCGM__ENDPOINTS": json.dumps([f"{exporter}/metrics"]),
            "CONCIERGE_SCHEDULE__DIGESTS": json.dumps(
                [{"channel": "C0DIGEST", "cron": "* * * * *", "since": "2h"}]
            ),
            "CONCIERGE_SCHEDULE__SAMPLE_INTERVAL_S": "1",
            "CONCIERGE_SCHEDULE__NUDGE_INTERVAL_S": "1",
        }
        bot = subprocess.Popen(
            [CONCIERGE, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
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
        finally:
            bot.send_signal(signal.SIGINT)
            try:
                output, _ = bot.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                bot.kill()
                output, _ = bot.communicate()
    assert b"Traceback" not in output or b"KeyboardInterrupt" in output, output.decode(errors="replace")
