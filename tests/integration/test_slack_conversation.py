"""DMs, @mentions and the App Home tab, through signed Events API deliveries to `app.dispatch`.

The same stack as test_slack_door.py: the real Bolt app and `WebClient` against the fake Slack, the
real `Concierge` and store (SQLite and PostgreSQL); only the cluster is a fake backend.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from backends.errors import BackendUnavailable
from backends.types import GpuAsk, JobRef, JobState, JobStatus
from bot.slack.blocks import SUBMIT_ACTION
from bot.store import Store
from tests.fakes.backend import THREE_POOLS, FakeBackend
from tests.fakes.slack_app import ALICE, BOB, Door, buttons, make_door, shown_text
from tests.slack_fake import FakeSlack
from tests.slack_fake.inbound import app_home_opened_event, message_event


@pytest.fixture
def events(store: Store, fake: FakeSlack) -> Door:
    """Alice and Bob mapped, over a cluster with three partitions and jobs the test sets."""
    store.map_identity(ALICE)
    store.map_identity(BOB)
    return make_door(store, fake, FakeBackend(pools=THREE_POOLS))


def restarted(events: Door, database_url: str) -> tuple[Door, Store]:
    """Another app process over the same database and the same Slack: nothing kept in memory."""
    store = Store(database_url)
    return make_door(store, events.fake, FakeBackend(pools=THREE_POOLS)), store


def submit_value(post: dict[str, Any]) -> str:
    (submit,) = buttons(post, SUBMIT_ACTION)
    return str(submit["value"])


def test_a_dm_is_previewed_in_its_thread_and_a_follow_up_changes_the_gpus(events: Door) -> None:
    ts = events.say("2 a100 for 1 hour to run python x.py")
    (preview,) = events.posts(1)
    assert preview["channel"] == "D0000DM" and preview["thread_ts"] == ts
    assert "#SBATCH --gres=gpu:2" in shown_text(preview) and "python x.py" in shown_text(preview)
    first_id = submit_value(preview)

    events.say("make it 1 GPU", thread_ts=ts)
    _, changed = events.posts(2)
    assert changed["thread_ts"] == ts
    assert "#SBATCH --gres=gpu:1" in shown_text(changed) and "1 \\u00d7 A100" in shown_text(changed)
    second_id = submit_value(changed)
    revised = events.store.request(second_id)
    assert revised.intent is not None and revised.intent["gpus"] == 1
    assert revised.intent["time_limit_minutes"] == 60 and revised.intent["command"] == "python x.py"
    # The first preview cannot be submitted any more, and nothing was submitted.
    assert events.store.request(first_id).outcome == "superseded"
    assert events.backend.submitted == []


def test_a_dm_keeps_every_line_of_its_command(events: Door) -> None:
    events.say("1 a100 for 1 hour, run:\ncd /data\npython prep.py --fast\npython train.py")
    (preview,) = events.posts(1)
    recorded = events.store.request(submit_value(preview)).intent
    assert recorded is not None
    assert recorded["command"] == "cd /data\npython prep.py --fast\npython train.py"
    assert events.backend.submitted == []


def test_follow_ups_change_type_and_time_and_submit_it_shows_the_button_again(events: Door) -> None:
    ts = events.say("2 a100 for 1 hour to run python x.py")
    events.posts(1)
    events.say("use H100 instead", thread_ts=ts)
    events.posts(2)  # one after the other, as a person types them
    events.say("for 3 hours", thread_ts=ts)
    *_, longer = events.posts(3)
    request = events.store.request(submit_value(longer))
    assert request.intent is not None
    assert (request.intent["gpu_type"], request.intent["gpus"], request.intent["time_limit_minutes"]) == (
        "h100",
        2,
        180,
    )
    events.say("submit it", thread_ts=ts)
    *_, again = events.posts(4)
    assert submit_value(again) == request.id and "press *Submit*" in shown_text(again)
    assert events.backend.submitted == []  # "submit it" never submits without the button


def test_a_retried_delivery_is_answered_once(events: Door) -> None:
    message = message_event("2 a100 for 1 hour to run python x.py", user_id=ALICE.requester)
    events.deliver(message, event_id="Ev0RETRIED")
    events.deliver(message, event_id="Ev0RETRIED", retry=1)
    events.deliver(message, event_id="Ev0RETRIED", retry=2)
    events.posts(1)
    previews = [r for r in events.store.history(ALICE.requester) if r.intent is not None]
    assert len(previews) == 1


def test_the_bots_own_messages_and_edits_are_ignored(events: Door) -> None:
    events.say("2 a100 for 1 hour to run python x.py", bot_id="B0000BOT")
    events.say("2 a100 for 1 hour to run python x.py", subtype="message_changed")
    events.say("help")  # a person's message after them is still answered
    (answer,) = events.posts(1)
    assert "/gpu queue" in shown_text(answer)


def test_a_mention_in_a_channel_is_answered_in_its_thread(events: Door) -> None:
    mention = message_event(
        "<@U0000BOT> how many gpus are free", user_id=BOB.requester, channel="C0000CHAN", kind="app_mention"
    )
    events.deliver(mention)
    (answer,) = events.posts(1)
    assert answer["channel"] == "C0000CHAN" and answer["thread_ts"] == mention["ts"]
    assert "Free GPUs" in shown_text(answer) and buttons(answer, SUBMIT_ACTION) == []


def test_home_shows_active_jobs_last_requests_and_free_gpus_by_type(events: Door) -> None:
    events.backend.jobs = [
        JobStatus(
            ref=JobRef(backend="slurm", job_id="4242"),
            name="train",
            user="alice",
            state=JobState.RUNNING,
            raw_state="RUNNING",
            gpus=(GpuAsk(count=2, gpu_type="a100"),),
        ),
        JobStatus(
            ref=JobRef(backend="slurm", job_id="4343"),
            name="bobs",
            user="bob",
            state=JobState.RUNNING,
            raw_state="RUNNING",
        ),
    ]
    events.say("2 a100 for 1 hour to run python x.py")
    events.posts(1)
    events.say("how many gpus are free?")
    events.posts(2)
    events.deliver(app_home_opened_event(ALICE.requester))
    (published,) = events.fake.wait_for("views.publish")
    assert published["user_id"] == ALICE.requester and published["view"]["type"] == "home"
    shown = json.dumps(published["view"]["blocks"])
    assert "4242" in shown and "4343" not in shown  # only her jobs
    assert "python x.py" in shown and "slack event" not in shown  # her request, not bookkeeping
    last = next(b["text"]["text"] for b in published["view"]["blocks"] if "last requests" in str(b))
    assert "python x.py" in last and "answered" not in last  # nor the question she asked
    # Free GPUs by type, summed over partitions: a100 5 of 12, h100 7 of 8.
    free = next(
        b["text"]["text"]
        for b in published["view"]["blocks"]
        if "Free GPUs" in b.get("text", {}).get("text", "")
    )
    assert [line.split() for line in free.strip("`").splitlines()[2:]] == [
        ["a100", "5", "12"],
        ["h100", "7", "8"],
    ]


def test_home_says_when_the_cluster_is_unreachable(events: Door) -> None:
    down = BackendUnavailable("slurmctld did not answer within 10 s; try again in a minute")
    events.backend.errors.update(queue=down, capacity=down)
    events.deliver(app_home_opened_event(ALICE.requester))
    (published,) = events.fake.wait_for("views.publish")
    shown = json.dumps(published["view"]["blocks"])
    assert shown.count("slurmctld did not answer") == 2  # jobs and free GPUs; requests still shown
    assert "Your last requests" in shown and "No requests recorded yet." in shown


def test_a_new_app_over_the_same_database_continues_the_thread(events: Door, database_url: str) -> None:
    ts = events.say("2 a100 for 1 hour to run python x.py")
    (preview,) = events.posts(1)
    first_id = submit_value(preview)
    after_restart, store = restarted(events, database_url)
    try:
        after_restart.say("make it 1 GPU", thread_ts=ts)
        _, changed = after_restart.posts(2)
        assert changed["thread_ts"] == ts and "#SBATCH --gres=gpu:1" in shown_text(changed)
        revised = store.request(submit_value(changed))
        assert revised.intent is not None and revised.intent["command"] == "python x.py"
        assert store.request(first_id).outcome == "superseded"
    finally:
        store.close()


def test_a_request_without_a_command_gets_one_question_in_its_thread(events: Door) -> None:
    ts = events.say("I need 2 a100 for an hour")
    (question,) = events.posts(1)
    assert question["thread_ts"] == ts and buttons(question, SUBMIT_ACTION) == []
    assert "What should the job run?" in shown_text(question)
    events.say("python x.py", thread_ts=ts)
    _, preview = events.posts(2)
    assert "#SBATCH --gres=gpu:2" in shown_text(preview) and "python x.py" in shown_text(preview)
    request = events.store.request(submit_value(preview))
    assert request.intent is not None and request.intent["time_limit_minutes"] == 60
    assert events.backend.submitted == []


def test_each_thread_is_its_own_conversation_and_never_mind_drops_the_draft(events: Door) -> None:
    ts = events.say("2 a100 for 1 hour to run python x.py")
    (preview,) = events.posts(1)
    events.say("make it 1 GPU")  # a new thread: no draft there, so it asks what to run
    _, asked = events.posts(2)
    assert asked["thread_ts"] != ts and "What should the job run?" in shown_text(asked)
    events.say("never mind", thread_ts=ts)
    *_, dropped = events.posts(3)
    draft_id = submit_value(preview)
    assert dropped["thread_ts"] == ts and f"Dropped request {draft_id[:8]}" in shown_text(dropped)
    assert events.store.request(draft_id).outcome == "declined"
