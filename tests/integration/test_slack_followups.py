"""After the preview: job updates in the thread, and the approval path, on both databases.

Same stack as test_slack_door: `build_app` with a real `WebClient` on the fake Slack, signed
requests through `app.dispatch`, the real engine and store; the cluster is a fake backend whose
job states the test moves, and the real `Tracker` records the transitions.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient

from backends.types import Identity, JobRef, JobState
from bot.slack.approvals import APPROVE_ACTION, DENY_ACTION, DENY_VIEW, REASON_BLOCK, REASON_INPUT
from bot.slack.blocks import REQUEST_APPROVAL_ACTION, SUBMIT_ACTION
from bot.slack.job_updates import MAX_ATTEMPTS, JobUpdates
from bot.store import Store
from bot.tracker import Tracker
from tests.fakes.slack_app import ALICE, BOB, WAIT_S, Door, buttons, make_door, one_round, shown_text
from tests.helpers.threads import at_once
from tests.slack_fake import FakeSlack, block_action_body
from tests.slack_fake.inbound import view_submission_body

CAROL = Identity(requester="U0CAROL", unix_user="carol", is_admin=True)  # an admin: approves
DANA = "U0DANA"  # an approver by Slack id, not mapped at all
APPROVERS = "C0APPROVERS"
BIG_REQUEST = "6 a100 for 2 hours to run python train.py"  # above the 4 GPUs per job: needs approval


@pytest.fixture
def door(store: Store, fake: FakeSlack) -> Door:
    for identity in (ALICE, BOB, CAROL):
        store.map_identity(identity)
    return make_door(store, fake, approvers_channel=APPROVERS, approvers=[DANA])


def test_a_thread_is_remembered_once_and_anchored_once(store: Store) -> None:
    request_id = store.new_request(ALICE.requester, "slack", "anything")
    assert store.thread_for(request_id) is None
    assert store.remember_thread(request_id, "C1", None) is True
    assert store.remember_thread(request_id, "C2", None) is False  # the first click's place stays
    assert store.thread_for(request_id) == ("C1", None)
    assert store.remember_thread(request_id, "C1", "1.0001") is True  # anchored once
    assert store.remember_thread(request_id, "C1", "1.0002") is False
    assert store.thread_for(request_id) == ("C1", "1.0001")
    shared = store.new_request(ALICE.requester, "slack", "shared preview")
    assert store.remember_thread(shared, "C3", "2.0001") is True
    assert store.thread_for(shared) == ("C3", "2.0001")


def _thread_posts(slack: FakeSlack) -> list[dict[str, Any]]:
    return [c for c in slack.calls_to("chat.postMessage") if "thread_ts" in c]


@pytest.mark.parametrize("ephemeral", [True, False], ids=["ephemeral", "shared"])
def test_each_transition_is_posted_once_in_the_jobs_thread(door: Door, ephemeral: bool) -> None:
    request_id = door.preview_request_id()
    door.click(SUBMIT_ACTION, request_id, ephemeral=ephemeral)
    job_id = _wait_for_job(door, request_id)
    tracker = Tracker(door.store, {"slurm": door.backend})
    updates = _updates(door)

    door.backend.states[job_id] = (JobState.PENDING, "Resources")
    assert one_round(tracker, updates) == 1
    assert one_round(tracker, updates) == 0  # nothing changed, nothing posted
    door.backend.states[job_id] = (JobState.RUNNING, None)
    assert one_round(tracker, updates) == 1
    door.backend.states[job_id] = (JobState.COMPLETED, None)
    assert one_round(tracker, updates) == 1
    assert one_round(tracker, updates) == 0

    posts = _thread_posts(door.fake)
    assert len(posts) == 3
    pending, running, completed = (p["text"] for p in posts)
    assert f"Job {job_id} is waiting for resources" in pending and "partition default" in pending
    assert f"Job {job_id} is running" in running
    assert f"Job {job_id} completed after" in completed and "of running" in completed
    thread = door.store.thread_for(request_id)
    assert thread is not None and thread[1] is not None
    assert {(p["channel"], p["thread_ts"]) for p in posts} == {thread}
    anchors = [c for c in door.fake.calls_to("chat.postMessage") if "thread_ts" not in c]
    if ephemeral:  # a "Job N submitted" message holds the thread
        (anchor,) = anchors
        assert f"Job {job_id} submitted" in anchor["text"] and anchor["channel"] == thread[0]
    else:  # the shared preview, updated to "Submitted job N", holds it
        assert anchors == [] and thread == ("C0000CHAN", "1700000000.000100")


def test_a_job_not_submitted_from_slack_gets_no_thread_message(door: Door) -> None:
    request_id = door.store.new_request(ALICE.requester, "cli", "from the terminal")
    door.store.record_submission(request_id, JobRef(backend="slurm", job_id="777"))
    door.backend.states["777"] = (JobState.RUNNING, None)
    updates = JobUpdates(door.store, WebClient(token="xoxb-test", base_url=door.fake.api_url))
    transitions = Tracker(door.store, {"slurm": door.backend}).poll_once().transitions
    assert len(transitions) == 1 and updates.post_new() == 0
    assert door.fake.calls_to("chat.postMessage") == []


def _wait_for_job(door: Door, request_id: str) -> str:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        job_id = door.store.request(request_id).job_id
        if job_id is not None:
            return job_id
        time.sleep(0.01)
    raise AssertionError(f"request {request_id} never became a job")


# --- approvals ---------------------------------------------------------------------------------


def _ask_for_approval(door: Door) -> tuple[str, dict[str, Any]]:
    """Alice previews a big request, clicks Request approval; returns the approvers' message."""
    response, url = door.command(BIG_REQUEST)
    assert response.status == 200
    (preview,) = door.answers_to(url)
    assert buttons(preview, SUBMIT_ACTION) == []
    (ask,) = buttons(preview, REQUEST_APPROVAL_ACTION)
    request_id = str(ask["value"])
    (sent,) = door.answers_to(door.click(REQUEST_APPROVAL_ACTION, request_id))
    assert sent["replace_original"] is True and "sent to the approvers" in shown_text(sent)
    (message,) = door.fake.wait_for("chat.postMessage")
    assert message["channel"] == APPROVERS and "<@U0ALICE>" in shown_text(message)
    assert door.store.request(request_id).outcome == "awaiting_approval"
    return request_id, message


def _decide(door: Door, action: str, request_id: str, user: str) -> str:
    body = block_action_body(
        action,
        request_id,
        user,
        response_url=door.response_url(),
        channel=APPROVERS,
        message_ts="1700000000.000900",
        is_ephemeral=False,
    )
    assert door.dispatch(body).status == 200
    return str(json.loads(parse_qs(body)["payload"][0])["response_url"])


def _dms_to(door: Door, user: str, count: int = 1) -> list[dict[str, Any]]:
    dm = f"D{user[1:]}"
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = [c for c in door.fake.calls_to("chat.postMessage") if c["channel"] == dm]
        if len(found) >= count:
            return found
        time.sleep(0.01)
    raise AssertionError(f"no DM to {user}: {door.fake.calls_to('chat.postMessage')}")


@pytest.mark.parametrize("approver", [CAROL.requester, DANA], ids=["admin", "listed"])
def test_an_approved_request_is_submitted_as_the_requester(door: Door, approver: str) -> None:
    request_id, message = _ask_for_approval(door)
    assert buttons(message, APPROVE_ACTION) and buttons(message, DENY_ACTION)
    assert "#SBATCH --gres=gpu:" in shown_text(message)  # approvers see what would run
    _decide(door, APPROVE_ACTION, request_id, approver)
    (told,) = _dms_to(door, ALICE.requester)
    job_id = door.store.request(request_id).job_id
    assert job_id is not None and f"submitted as job *{job_id}*" in told["text"]
    (job,) = door.backend.submitted
    assert job.identity.unix_user == "alice" and job.request_id == request_id
    (update,) = door.fake.wait_for("chat.update")
    assert update["channel"] == APPROVERS and f"<@{approver}>" in update["text"]
    assert buttons(update, APPROVE_ACTION) == []
    (approval,) = [e for e in door.store.audit_events(request_id) if e.action == "approve"]
    assert approval.actor == approver


def test_a_non_approver_is_refused_and_nothing_runs(door: Door) -> None:
    request_id, _ = _ask_for_approval(door)
    (refused,) = door.answers_to(_decide(door, APPROVE_ACTION, request_id, BOB.requester))
    assert refused["response_type"] == "ephemeral" and "only approvers" in shown_text(refused)
    (refused,) = door.answers_to(_decide(door, APPROVE_ACTION, request_id, ALICE.requester))
    assert "only approvers" in shown_text(refused)
    assert door.backend.submitted == [] and door.store.request(request_id).outcome == "awaiting_approval"


def _deny_with_reason(door: Door, request_id: str, approver: str, reason: str) -> None:
    """Deny opens a modal asking why; the approver submits it with `reason`."""
    _decide(door, DENY_ACTION, request_id, approver)
    (opened,) = door.fake.wait_for("views.open")
    view = json.loads(opened["view"]) if isinstance(opened["view"], str) else opened["view"]
    assert view["callback_id"] == DENY_VIEW
    assert door.store.request(request_id).outcome == "awaiting_approval"  # nothing decided by the click
    values = {REASON_BLOCK: {REASON_INPUT: {"type": "plain_text_input", "value": reason}}}
    body = view_submission_body(DENY_VIEW, values, approver, private_metadata=view["private_metadata"])
    response = door.dispatch(body)
    assert response.status == 200 and response.body == ""  # the modal closes


def test_a_denied_request_is_not_submitted_and_the_requester_is_told_why(door: Door) -> None:
    request_id, _ = _ask_for_approval(door)
    _deny_with_reason(door, request_id, CAROL.requester, "the A100 queue is full this week:  try 2 L40S")
    (told,) = _dms_to(door, ALICE.requester)
    assert "denied request" in told["text"] and "<@U0CAROL>" in told["text"]
    assert "the A100 queue is full this week: try 2 L40S" in told["text"]
    record = door.store.request(request_id)
    assert record.outcome == "denied_by_approver" and record.job_id is None
    assert record.error == "the A100 queue is full this week: try 2 L40S"
    (update,) = door.fake.wait_for("chat.update")
    assert update["channel"] == APPROVERS and "try 2 L40S" in update["text"]
    assert buttons(update, APPROVE_ACTION) == [] and buttons(update, DENY_ACTION) == []
    (denial,) = [e for e in door.store.audit_events(request_id) if e.action == "deny"]
    assert denial.actor == CAROL.requester and (denial.detail or {})["reason"].startswith("the A100 queue")
    # An Approve after the Deny changes nothing.
    (late,) = door.answers_to(_decide(door, APPROVE_ACTION, request_id, DANA))
    assert "decided already" in shown_text(late) and door.backend.submitted == []


def test_a_deny_without_a_reason_says_so_and_a_non_approver_gets_no_modal(door: Door) -> None:
    request_id, _ = _ask_for_approval(door)
    (refused,) = door.answers_to(_decide(door, DENY_ACTION, request_id, BOB.requester))
    assert "only approvers" in shown_text(refused) and door.fake.calls_to("views.open") == []
    _deny_with_reason(door, request_id, DANA, "   ")
    (told,) = _dms_to(door, ALICE.requester)
    assert "an approver declined it" in told["text"]


def test_a_double_approve_makes_one_job(door: Door) -> None:
    request_id, _ = _ask_for_approval(door)
    door.backend.gate = threading.Event()  # whichever click submits waits at the cluster
    urls = [_decide(door, APPROVE_ACTION, request_id, CAROL.requester) for _ in range(2)]
    busy = door.first_answer(urls)
    assert "decided already" in shown_text(busy.body)
    door.backend.gate.set()
    _dms_to(door, ALICE.requester)
    assert len(door.backend.submitted) == 1 and door.store.request(request_id).job_id is not None


def test_a_request_within_the_limits_has_no_approval_button(door: Door) -> None:
    _, url = door.command("1 a100 for 1 hour to run python train.py")
    (preview,) = door.answers_to(url)
    assert buttons(preview, REQUEST_APPROVAL_ACTION) == [] and buttons(preview, SUBMIT_ACTION)


def test_an_update_that_could_not_be_posted_is_posted_at_the_next_round_in_order(door: Door) -> None:
    job_id, tracker = _submitted_job(door)
    updates = _updates(door)

    door.fake.fail("chat.postMessage", times=1, error="internal_error")  # Slack has a bad moment
    door.backend.states[job_id] = (JobState.RUNNING, None)
    assert one_round(tracker, updates) == 0
    door.backend.states[job_id] = (JobState.COMPLETED, None)
    assert one_round(tracker, updates) == 2  # the missed one first, then the new one
    failed, running, completed = (p["text"] for p in _thread_posts(door.fake))  # the fake saw all three
    assert failed == running and f"Job {job_id} is running" in running
    assert f"Job {job_id} completed" in completed
    assert one_round(tracker, updates) == 0  # nothing twice


def _submitted_job(door: Door) -> tuple[str, Tracker]:
    request_id = door.preview_request_id()
    door.click(SUBMIT_ACTION, request_id, ephemeral=False)
    return _wait_for_job(door, request_id), Tracker(door.store, {"slurm": door.backend})


def _updates(door: Door) -> JobUpdates:
    return JobUpdates(door.store, WebClient(token="xoxb-test", base_url=door.fake.api_url))


def test_an_update_slack_refused_before_a_restart_is_posted_after_it(door: Door) -> None:
    job_id, tracker = _submitted_job(door)
    door.fake.fail("chat.postMessage", times=2, error="internal_error")
    door.backend.states[job_id] = (JobState.RUNNING, None)
    assert one_round(tracker, _updates(door)) == 0
    assert one_round(tracker, _updates(door)) == 0  # a restart between the rounds: still failing

    restarted = _updates(door)  # a new process: nothing of the failures is in its memory
    assert restarted.post_new() == 1
    assert restarted.post_new() == 0
    posts = [p["text"] for p in _thread_posts(door.fake)]
    assert len(posts) == 3 and all(f"Job {job_id} is running" in text for text in posts)


def test_an_update_is_given_up_after_its_tries_and_later_ones_still_go_out(door: Door) -> None:
    job_id, tracker = _submitted_job(door)
    door.fake.fail("chat.postMessage", times=MAX_ATTEMPTS, error="internal_error")
    door.backend.states[job_id] = (JobState.RUNNING, None)
    updates = _updates(door)
    assert [one_round(tracker, updates) for _ in range(MAX_ATTEMPTS)] == [0] * MAX_ATTEMPTS
    assert updates.post_new() == 0  # given up: not tried a sixth time
    door.backend.states[job_id] = (JobState.COMPLETED, None)
    assert one_round(tracker, updates) == 1
    *tries, completed = (p["text"] for p in _thread_posts(door.fake))
    assert len(tries) == MAX_ATTEMPTS and all(f"Job {job_id} is running" in text for text in tries)
    assert f"Job {job_id} completed" in completed


def test_two_replicas_posting_at_once_post_each_update_once(door: Door) -> None:
    job_id, tracker = _submitted_job(door)
    replicas = [_updates(door) for _ in range(4)]
    for state in (JobState.PENDING, JobState.RUNNING, JobState.COMPLETED):
        door.backend.states[job_id] = (state, "Resources" if state is JobState.PENDING else None)
        tracker.poll_once()
        start = threading.Barrier(len(replicas))
        counts: list[int] = []

        def post(replica: JobUpdates, start: threading.Barrier = start, counts: list[int] = counts) -> None:
            start.wait()
            counts.append(replica.post_new())

        at_once(post, [(replica,) for replica in replicas])
        assert sum(counts) == 1
    texts = [p["text"] for p in _thread_posts(door.fake)]
    assert len(texts) == 3
    assert "waiting" in texts[0] and "running" in texts[1] and "completed" in texts[2]


def test_two_states_in_one_round_of_an_ephemeral_preview_share_one_anchor(door: Door) -> None:
    request_id = door.preview_request_id()
    door.click(SUBMIT_ACTION, request_id, ephemeral=True)
    job_id = _wait_for_job(door, request_id)
    tracker = Tracker(door.store, {"slurm": door.backend})
    door.backend.states[job_id] = (JobState.RUNNING, None)
    tracker.poll_once()
    door.backend.states[job_id] = (JobState.COMPLETED, None)
    tracker.poll_once()  # two states recorded before Slack hears of either

    assert _updates(door).post_new() == 2
    anchors = [c for c in door.fake.calls_to("chat.postMessage") if "thread_ts" not in c]
    assert len(anchors) == 1 and f"Job {job_id} submitted" in anchors[0]["text"]
    assert door.fake.calls_to("chat.delete") == []
    thread = door.store.thread_for(request_id)
    posts = _thread_posts(door.fake)
    assert thread is not None and [(p["channel"], p["thread_ts"]) for p in posts] == [thread, thread]
