"""A person's path through Slack onto the real local Slurm: /gpu → preview → Submit → job → thread.

Everything is real but Slack's servers: the Bolt app from `build_app`, the engine, a SQLite store,
the Slurm backend against scripts/local-slurm.sh's cluster, the tracker. Slack is the fake Web API
on 127.0.0.1; signed requests go through `app.dispatch`.
"""

from __future__ import annotations

import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.slurm.backend import SlurmBackend
from backends.slurm.settings import SlurmSettings
from bot.engine import Concierge
from bot.slack.blocks import SUBMIT_ACTION
from bot.slack.job_updates import JobUpdates
from bot.store import Store
from bot.tracker import Tracker
from bot.understanding.grammar import understand
from policies import load_policy
from tests.fakes.backend import FakeBackend
from tests.fakes.slack_app import ALICE, BOB, Door, buttons, one_round, shown_text, slack_app
from tests.helpers.cli import wait_for
from tests.slack_fake import FakeSlack

pytestmark = pytest.mark.slurm


def squeue(job_id: str, field: str) -> str:
    done = subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", field], capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


@pytest.fixture
def slack_on_slurm(
    slurm: None, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Door, Tracker, JobUpdates]]:
    store = Store(f"sqlite:///{tmp_path / 'concierge.db'}")
    store.migrate()
    store.map_identity(ALICE)
    store.map_identity(BOB)
    backend = SlurmBackend(SlurmSettings(output_pattern=getattr(request, "param", "/dev/null")))
    concierge = Concierge(store, {"slurm": backend}, understand, load_policy(None))
    with FakeSlack() as fake:
        door = Door(slack_app(store, fake, concierge), fake, FakeBackend(), store)
        yield door, Tracker(store, {"slurm": backend}), JobUpdates(store, door.app.client)


def test_slash_command_to_a_real_job_with_updates_in_its_thread(
    slack_on_slurm: tuple[Door, Tracker, JobUpdates],
) -> None:
    door, tracker, updates = slack_on_slurm
    request_id = door.preview_request_id("1 l40s for 10 minutes to run sleep 120")
    door.click(SUBMIT_ACTION, request_id, ephemeral=False)
    door.click(SUBMIT_ACTION, request_id, ephemeral=False)  # a double click: still one job
    wait_for(lambda: door.store.request(request_id).job_id is not None, timeout=20.0)
    job_id = str(door.store.request(request_id).job_id)
    assert squeue(job_id, "%u") == "alice"  # runs as the person, not as the bot
    assert len([r for r in door.store.history(None, 50) if r.job_id == job_id]) == 1
    # The second click may find the job recorded and write the same notice again: same words, same job.
    update, *again = door.fake.wait_for("chat.update")
    assert all(f"Submitted job {job_id}" in u["text"] + str(u["blocks"]) for u in (update, *again))

    wait_for(lambda: squeue(job_id, "%T") == "RUNNING", timeout=20.0)
    assert one_round(tracker, updates) == 1
    (running,) = door.fake.wait_for("chat.postMessage")
    assert running["thread_ts"] == update["ts"] and "running" in running["text"].lower()
    assert one_round(tracker, updates) == 0  # nothing changed: nothing posted

    _, refused = door.command(f"cancel {job_id}", user=BOB)
    (answer,) = door.answers_to(refused)
    assert "belongs to alice" in shown_text(answer)
    assert squeue(job_id, "%T") == "RUNNING"

    _, cancelled = door.command(f"cancel {job_id}")
    door.answers_to(cancelled)
    # Slurm may pass through COMPLETING first; each state it shows is posted once, in the thread.
    wait_for(lambda: one_round(tracker, updates) >= 0 and cancelled_posted(door), timeout=20.0)
    thread = door.fake.calls_to("chat.postMessage")
    assert all(message["thread_ts"] == update["ts"] for message in thread)
    assert len({message["text"] for message in thread}) == len(thread)


def cancelled_posted(door: Door) -> bool:
    return any("cancelled" in m["text"].lower() for m in door.fake.calls_to("chat.postMessage"))


def test_preview_shows_the_real_sbatch_script(slack_on_slurm: tuple[Door, Tracker, JobUpdates]) -> None:
    door, _, _ = slack_on_slurm
    response, url = door.command("2 a100 for 1 hour to run python train.py")
    assert response.status == 200
    (preview,) = door.answers_to(url)
    shown = shown_text(preview)
    assert "#SBATCH --gres=gpu:a100:2" in shown and "#SBATCH --time=01:00:00" in shown
    assert buttons(preview, SUBMIT_ACTION)


@pytest.mark.parametrize("slack_on_slurm", ["concierge-%x-%j.out"], indirect=True)
@pytest.mark.parametrize(("channel", "shows_output"), [("D0ALICEDM", True), ("C0SHARED", False)])
def test_a_failed_job_is_explained_in_its_thread(
    slack_on_slurm: tuple[Door, Tracker, JobUpdates], channel: str, shows_output: bool
) -> None:
    """How it ended, in the thread; its last lines only in a direct message (a channel's members
    all read its threads)."""
    door, tracker, updates = slack_on_slurm
    request_id = door.preview_request_id("1 l40s for 10 minutes to run python train.py")
    door.click(SUBMIT_ACTION, request_id, ephemeral=False, channel=channel)
    wait_for(lambda: door.store.request(request_id).job_id is not None, timeout=20.0)
    job_id = str(door.store.request(request_id).job_id)
    output = Path(pwd.getpwnam("alice").pw_dir) / f"concierge-train.py-{job_id}.out"
    try:
        wait_for(lambda: one_round(tracker, updates) >= 0 and failure_posted(door), timeout=30.0)
    finally:
        output.unlink(missing_ok=True)
    (failed,) = [m for m in door.fake.calls_to("chat.postMessage") if m["text"].startswith(":x:")]
    assert failed["channel"] == channel
    assert "It exited with code 127: the shell could not find" in failed["text"]
    assert f"Output file: {output}" in failed["text"]
    assert ("python: command not found" in failed["text"]) is shows_output
    assert (f"`/gpu status {job_id}` shows them to you" in failed["text"]) is not shows_output


def failure_posted(door: Door) -> bool:
    return any(m["text"].startswith(":x:") for m in door.fake.calls_to("chat.postMessage"))
