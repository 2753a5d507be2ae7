"""`concierge serve` as deployed, in Socket Mode against the fake Slack, with Slurm's client
missing (a path that does not exist: every cluster call fails, and the shared cluster is not
touched). After three slash commands, its /metrics (parsed with prometheus_client's parser)
counts three acks, three answers, the requests by intent and outcome and the backend's errors by
driver; it leads the schedule alone; /readyz is 200 once Slack is connected.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from uuid import uuid4

from prometheus_client.parser import text_string_to_metric_families

from bot.store import Store
from tests.fakes.slack_app import ALICE
from tests.helpers.serve import concierge_serve, free_port, serve_env
from tests.slack_fake import FakeSlack, slash_command_fields, socket_mode_envelope

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def wait_until_ready(base: str, bot: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert bot.poll() is None, "serve exited before it was ready"
        if get(f"{base}/readyz")[0] == 200:
            return
        time.sleep(0.2)
    raise AssertionError(f"/readyz never answered 200: {get(f'{base}/readyz')}")


def samples_of(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_after_a_slack_session(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'concierge.db'}"
    store = Store(database_url)
    store.migrate()
    store.map_identity(ALICE)
    store.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with FakeSlack() as slack:
        env = serve_env(
            tmp_path,
            database_url,
            slack,
            socket_mode=True,
            SLURM__BIN_DIR=str(tmp_path / "no-slurm-here"),
            METRICS__HOST="127.0.0.1",
            METRICS__PORT=str(port),
        )
        with concierge_serve(env) as bot:
            wait_until_ready(base, bot)
            assert get(f"{base}/healthz") == (200, "ok\n")
            for text in ("queue", "free", "1 a100 for 1 hour to run python3 train.py"):
                url = slack.response_url(uuid4().hex)
                fields = slash_command_fields(text, user_id=ALICE.requester, response_url=url)
                slack.socket.wait_for_ack(
                    slack.socket.send_envelope(socket_mode_envelope("slash_commands", dict(fields)))
                )
            answers = slack.wait_for_responses(3, timeout=30)
            status, text = get(f"{base}/metrics")
    assert status == 200, text
    assert len(answers) == 3
    samples = samples_of(text)
    requests = {
        (dict(labels)["intent"], dict(labels)["outcome"]): value
        for (name, labels), value in samples.items()
        if name == "concierge_requests_total"
    }
    # The submit's preview waits for a click: answered (timed), with no outcome yet.
    assert requests == {("queue", "failed"): 1, ("capacity", "failed"): 1}
    assert samples[("concierge_slack_ack_seconds_count", frozenset())] == 3
    assert samples[("concierge_answer_seconds_count", frozenset({("door", "slack")}))] == 3
    errors = {
        dict(labels)["operation"]: value
        for (name, labels), value in samples.items()
        if name == "concierge_backend_errors_total" and dict(labels)["driver"] == "slurm_cli"
    }
    assert errors["queue"] == 2 and errors["capacity"] == 1  # the queue: asked, and the submitter's jobs
    assert samples[("concierge_schedule_leader", frozenset())] == 1
    assert samples[("concierge_tracked_jobs", frozenset())] == 0
