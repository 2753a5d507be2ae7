"""Need to know: a job's command and request text reach only its owner and admins, through every door.

Alice asks for a job whose command carries a token. Bob (mapped), Eve (not mapped at all) and
Alice's own login at the CLI then ask about it through Slack's `/gpu status`, a DM, and the engine
calls the CLI makes (`status`, `history --everyone`); the job's update thread, posted in a channel,
is read too. Real Bolt app, fake Slack over its HTTP API, real store (SQLite and PostgreSQL).
"""

from __future__ import annotations

import pytest
from slack_sdk import WebClient

from backends.types import Identity, JobState
from bot.engine import Concierge
from bot.need_to_know import HIDDEN
from bot.slack.blocks import SUBMIT_ACTION
from bot.slack.job_updates import JobUpdates
from bot.store import Store
from bot.tracker import Tracker
from bot.understanding.grammar import understand
from policies import load_policy
from tests.fakes.backend import FakeBackend
from tests.fakes.slack_app import ALICE, BOB, Door, make_door, shown_text
from tests.slack_fake import FakeSlack
from tests.slack_fake.inbound import app_home_opened_event, event_callback_body, message_event

TOKEN = "hf_SeCrEt0123456789"
ASKED = f"1 a100 for 2 hours to run python serve.py --hf-token {TOKEN}"
CAROL = Identity(requester="U0CAROL", unix_user="carol", is_admin=True)
EVE = Identity(requester="U0EVE")  # on Slack, mapped to nobody


@pytest.fixture
def door(store: Store, fake: FakeSlack) -> Door:
    for identity in (ALICE, BOB, CAROL):
        store.map_identity(identity)
    return make_door(store, fake)


def _alices_job(door: Door) -> str:
    request_id = door.preview_request_id(ASKED)
    door.answers_to(door.click(SUBMIT_ACTION, request_id))
    job_id = door.store.request(request_id).job_id
    assert job_id is not None
    return job_id


def _status_on_slack(door: Door, job_id: str, who: Identity) -> str:
    _, url = door.command(f"status {job_id}", user=who)
    (answer,) = door.answers_to(url)
    return shown_text(answer)


def test_slash_status_shows_the_command_to_its_owner_and_admins_only(door: Door) -> None:
    job_id = _alices_job(door)
    door.backend.states[job_id] = (JobState.PENDING, "Priority")
    Tracker(door.store, {"slurm": door.backend}).poll_once()

    for outsider in (BOB, EVE):
        shown = _status_on_slack(door, job_id, outsider)
        assert TOKEN not in shown and "serve.py" not in shown
        assert HIDDEN in shown and "PENDING" in shown and "Priority" in shown  # state and reason stay
    for insider in (ALICE, CAROL):
        assert TOKEN in _status_on_slack(door, job_id, insider)


def test_a_dm_asking_about_someone_elses_job_gets_state_not_command(door: Door) -> None:
    job_id = _alices_job(door)
    event = message_event(f"status {job_id}", user_id=BOB.requester)
    assert door.dispatch(event_callback_body(event)).status == 200
    (reply,) = door.fake.wait_for("chat.postMessage")
    assert HIDDEN in shown_text(reply) and TOKEN not in shown_text(reply)


def test_the_channel_message_that_anchors_updates_says_what_the_job_holds_not_what_it_runs(
    door: Door,
) -> None:
    job_id = _alices_job(door)  # an ephemeral preview: the first update anchors a channel message
    door.backend.states[job_id] = (JobState.RUNNING, None)
    Tracker(door.store, {"slurm": door.backend}).poll_once()
    assert JobUpdates(door.store, WebClient(token="xoxb-test", base_url=door.fake.api_url)).post_new() == 1
    (anchor,) = [c for c in door.fake.calls_to("chat.postMessage") if "thread_ts" not in c]
    assert f"Job {job_id} submitted" in anchor["text"] and "A100" in anchor["text"]
    assert TOKEN not in anchor["text"] and "serve.py" not in anchor["text"]


def test_the_engine_hides_it_from_every_other_door(store: Store) -> None:
    """What the CLI's `status` and `history` read: the owner's login sees the job she asked for on
    Slack (it runs as her), another login and a non-admin's `--everyone` do not."""
    backend = FakeBackend()
    concierge = Concierge(store, {"slurm": backend}, understand, load_policy(None))
    prepared = concierge.prepare(ALICE, ASKED, "slack")
    job_id = concierge.submit(prepared).job_id
    backend.states[job_id] = (JobState.RUNNING, None)
    alice_at_the_cli = Identity(requester="alice", unix_user="alice")
    bob_at_the_cli = Identity(requester="bob", unix_user="bob")
    root = Identity(requester="root", unix_user="root", is_admin=True)

    def record_text(viewer: Identity) -> str:
        record = concierge.status(viewer, job_id).record
        assert record is not None and record.outcome == "submitted"
        return record.text

    assert record_text(alice_at_the_cli) == ASKED == record_text(root)
    assert record_text(bob_at_the_cli) == HIDDEN
    (seen_by_bob,) = [r for r in concierge.history(bob_at_the_cli, everyone=True) if r.job_id == job_id]
    assert seen_by_bob.text == HIDDEN and seen_by_bob.plan is None and seen_by_bob.intent is None
    (seen_by_root,) = [r for r in concierge.history(root, everyone=True) if r.job_id == job_id]
    assert seen_by_root.text == ASKED


def test_owners_see_their_own_requests_on_the_home_tab_in_full(door: Door) -> None:
    _alices_job(door)
    assert door.dispatch(event_callback_body(app_home_opened_event(ALICE.requester))).status == 200
    (published,) = door.fake.wait_for("views.publish")
    assert "serve.py" in str(published["view"])  # her own words, on her own Home tab
