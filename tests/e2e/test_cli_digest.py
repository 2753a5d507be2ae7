"""`concierge digest` as an admin runs it: a snapshot of dcgm-exporter endpoints, a digest from
samples the store collected (`--now`), a chart file, and the digest posted to (fake) Slack.

The exporter is a local HTTP server serving a real-format fixture; the CLI is the installed
console script in a subprocess, with its store in a temporary directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from matplotlib.image import imread

from tests.gpu_fakes.dcgm_fixtures import fixture
from tests.gpu_fakes.http_server import Reply, dead_url, serving
from tests.helpers.cli import cli_env
from tests.slack_fake import FakeSlack

CONCIERGE = str(Path(sys.executable).with_name("concierge"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CONCIERGE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path)


@pytest.fixture
def exporter() -> Iterator[str]:
    with serving(lambda _: Reply(body=fixture("classic-hostname.txt").encode())) as (url, _):
        yield f"{url}/metrics"


def test_a_snapshot_of_exporters_names_each_gpu_and_the_dead_endpoint(
    env: dict[str, str], exporter: str, tmp_path: Path
) -> None:
    chart = tmp_path / "snapshot.png"
    dead = dead_url()
    done = run(env, "digest", "--dcgm", exporter, "--dcgm", dead, "--chart", str(chart))
    assert done.returncode == 0, done.stderr
    assert "A100" in done.stdout, done.stdout
    assert dead in done.stderr  # named, and the other endpoint still counted
    assert chart.read_bytes().startswith(PNG_SIGNATURE)
    assert imread(chart).shape[:2] == (700, 1200)
    assert not (tmp_path / "concierge.db").exists()  # a snapshot reads and writes no store


@pytest.mark.parametrize(
    # The owner is the person the pod's labels name (dcgm-exporter --kubernetes-enable-pod-labels),
    # else its namespace.
    ("exported", "owner"),
    [("kubernetes.txt", "research"), ("kubernetes-pod-labels.txt", "bob")],
)
def test_a_snapshot_names_each_idle_or_low_gpu_with_its_pod_and_owner(
    env: dict[str, str], exported: str, owner: str
) -> None:
    # One reading holds no GPU-hours: the snapshot judges by the utilisation now, and says so.
    with serving(lambda _: Reply(body=fixture(exported).encode())) as (url, _):
        done = run(env, "digest", "--dcgm", f"{url}/metrics")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    heading = next(i for i, line in enumerate(lines) if line.startswith("Idle allocations"))
    assert "judged by the utilisation read now" in lines[heading]
    assert lines[heading + 2].split()[:5] == [
        "low",
        "research/jupyter-bob-0",
        "k8s",
        owner,
        "gpu-node-3:1",
    ]
    assert lines[heading + 3] == ""  # the 94 % pod is not listed


def test_an_empty_digest_still_summarises_the_queue(env: dict[str, str]) -> None:
    done = run(env, "digest", "--since", "1h")
    assert done.returncode == 0, done.stderr
    first, queue = done.stdout.splitlines()[:2]
    assert first.endswith("no GPU samples were recorded in this period.")
    assert queue.startswith("Queue: ")


def test_a_snapshot_with_nothing_readable_fails_clearly(env: dict[str, str]) -> None:
    done = run(env, "digest", "--dcgm", dead_url())
    assert done.returncode == 6
    assert "no GPU was read" in done.stderr


def test_now_collects_into_the_store_and_the_digest_reads_it_back(env: dict[str, str], exporter: str) -> None:
    env = {**env, "CONCIERGE_GPU__DCGM__ENDPOINTS": json.dumps([exporter])}
    first = run(env, "digest", "--since", "1h", "--now")
    assert first.returncode == 0, first.stderr
    assert "no GPU samples were recorded in this period" not in first.stdout
    assert "ub20-a100-k8s:0" in first.stdout
    # Without --now the store still holds the pass collected above.
    again = run(
        {k: v for k, v in env.items() if k != "CONCIERGE_GPU__DCGM__ENDPOINTS"}, "digest", "--since", "1h"
    )
    assert again.returncode == 0, again.stderr

    # The same figures; the period (first line) and the live queue (other tests' jobs) may move on.
    def figures(out: str) -> list[str]:
        return [line for line in out.splitlines()[1:] if not line.startswith("Queue: ")]

    assert figures(again.stdout) == figures(first.stdout)


def test_post_sends_blocks_and_uploads_the_chart_to_slack(env: dict[str, str], exporter: str) -> None:
    with FakeSlack() as slack:
        env = {
            **env,
            "CONCIERGE_SLACK__BOT_TOKEN": "xoxb-test",
            "CONCIERGE_SLACK__APP_TOKEN": "xapp-test",
            "CONCIERGE_SLACK__API_URL": slack.api_url,
        }
        done = run(env, "digest", "--dcgm", exporter, "--post", "C0DIGEST")
        assert done.returncode == 0, done.stderr
        [message] = slack.calls_to("chat.postMessage")
        assert message["channel"] == "C0DIGEST"
        assert message["blocks"]  # Block Kit, built with slack_sdk's models
        [upload] = slack.calls_to("files.completeUploadExternal")
        assert upload["channel_id"] == "C0DIGEST"
        [png] = slack.uploads.values()
        assert png.startswith(PNG_SIGNATURE)
