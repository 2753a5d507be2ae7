"""One way in, one way out: Slack's text is decoded once, and nothing the bot posts forms a mention or
a link that the bot did not write itself.

Through the real doors: signed slash commands, Events API deliveries and modal submissions to the
real Bolt app, the real `WebClient` against the fake Slack (which records every call and every
response_url post), the real engine and store (SQLite and PostgreSQL), and for the model the real
client against the fake vLLM answering a hostile question. Every test ends by reading everything
the fake Slack received: no `<!channel>`, `<!here>`, `<!everyone>`, `<!subteam^…>`, `<@…>`, `<#…>`
or `<http…>` may be in it unless the bot wrote it (a `<!date^…>` of its own).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from backends.types import JobEnding, JobState, JobStatus
from bot.conversations import Conversations
from bot.conversations.context import ConversationContext
from bot.engine import Concierge
from bot.job_output import OutputTail
from bot.llm.client import LlmReader
from bot.llm.prompts import ConversationSoFar
from bot.llm.routing import Routed, RoutedUnderstanding
from bot.llm.settings import LlmSettings
from bot.slack.blocks import SUBMIT_ACTION
from bot.slack.digest_post import post_digest
from bot.slack.form import FORM_CALLBACK
from bot.slack.job_updates import JobUpdates, update_text
from bot.slack.nudges import SlackNudgeDelivery
from bot.store import Store
from bot.store.schedule import ScheduleStore
from bot.telemetry.nudges import Nudge
from bot.telemetry.reporting import DigestReport
from bot.tracker import Tracker, Transition
from policies import load_policy
from tests.fakes.backend import THREE_POOLS, FakeBackend
from tests.fakes.slack_app import ALICE, BOB, WAIT_S, Door, buttons, make_door, shown_text, slack_app
from tests.helpers.digests import digest
from tests.openai_fake import FakeVllm, Structured
from tests.slack_fake import FakeSlack
from tests.slack_fake.inbound import (
    app_home_opened_event,
    message_event,
    view_submission_body,
)

# Any control sequence Slack would act on: special mentions, user/channel/group mentions, links.
CONTROL_SEQUENCE = re.compile(r"<(?:[!@#]|[a-z][a-z0-9+.-]*:)[^<>]*>", re.IGNORECASE)
OURS = re.compile(r"<!date\^\d+\^[^<>|]*\|[^<>]*>")  # a time the bot writes for each reader's zone
HOSTILE_LINK = "<https://evil.example/sso|Slack SSO>"


# Where Slack shows text: a message's `text` and every text object in its blocks or view, a file's
# title and comment. (A button's `value` or a view's `private_metadata` is data, never shown.)
SHOWN_KEYS = frozenset({"text", "title", "initial_comment", "fallback", "pretext", "alt_text"})


def posted_texts(fake: FakeSlack) -> list[str]:
    """Every text the bot sent to Slack for people to read: Web API calls (messages, updates,
    views, uploads) and response_url posts."""
    sent: list[Any] = [call.params for call in fake.calls] + [post.body for post in fake.responses]
    return list(_shown(sent, shown=False))


def _shown(value: Any, *, shown: bool) -> Iterator[str]:
    if isinstance(value, str):
        if value[:1] in ("[", "{"):  # blocks or a view, sent as JSON text
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        if isinstance(value, str):
            if shown:
                yield value
            return
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _shown(inner, shown=key in SHOWN_KEYS)
    elif isinstance(value, list):
        for inner in value:
            yield from _shown(inner, shown=shown)


def unintended_control_sequences(fake: FakeSlack) -> list[str]:
    found = [seq for text in posted_texts(fake) for seq in CONTROL_SEQUENCE.findall(text)]
    return [seq for seq in found if not OURS.fullmatch(seq)]


def _wait(fake: FakeSlack, seen: int) -> None:
    """Until the bot has answered once more than `seen` times (API calls and response_url posts)."""
    deadline = time.monotonic() + WAIT_S
    while len(fake.calls) + len(fake.responses) <= seen:
        assert time.monotonic() < deadline, "the bot did not answer"
        time.sleep(0.01)
    time.sleep(0.2)  # anything else it sends for the same message


@pytest.fixture
def door(store: Store, fake: FakeSlack) -> Door:
    store.map_identity(ALICE)
    store.map_identity(BOB)
    return make_door(store, fake, identity_rule="none")


# --- one way out -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "read_back"),
    [
        ("status <!channel>", "@channel"),  # Slack wrote the person's @channel as a control sequence
        ("status &lt;!channel&gt;", "&lt;!channel&gt;"),  # the person typed the sequence itself
        ("why &lt;!here&gt;", "&lt;!here&gt;"),
        ("cancel &lt;!everyone&gt;", "&lt;!everyone&gt;"),
        ("status &lt;@U0BOB&gt;", "&lt;@U0BOB&gt;"),
        ("status &lt;!subteam^S0ALL|@everyone-team&gt;", "&lt;!subteam^S0ALL|@everyone-team&gt;"),
        (f"why {HOSTILE_LINK}", "https://evil.example/sso"),
        ("why &lt;https://evil.example/sso|SSO&gt;", "&lt;https://evil.example/sso|SSO&gt;"),
    ],
)
def test_a_slash_command_cannot_make_the_bot_post_a_mention_or_a_link(
    door: Door, sent: str, read_back: str
) -> None:
    _, url = door.command(sent)
    (answer,) = door.answers_to(url)
    assert read_back in shown_text(answer)  # the person reads their own words back
    assert unintended_control_sequences(door.fake) == []


@pytest.mark.parametrize("said", ["status <!channel>", "status &lt;!channel&gt;", f"why {HOSTILE_LINK}"])
def test_an_at_mention_in_a_channel_cannot_make_the_bot_post_at_channel(door: Door, said: str) -> None:
    event = message_event(
        f"<@U0000BOT> {said}", user_id=BOB.requester, channel="C0000CHAN", kind="app_mention"
    )
    door.deliver(event)
    (reply,) = door.fake.wait_for("chat.postMessage")
    assert reply["channel"] == "C0000CHAN" and reply["thread_ts"] == event["ts"]
    assert unintended_control_sequences(door.fake) == []


@pytest.fixture
def vllm() -> Iterator[FakeVllm]:
    with FakeVllm() as server:
        yield server


def test_a_models_question_with_a_link_is_posted_as_text(
    store: Store, fake: FakeSlack, vllm: FakeVllm
) -> None:
    """A compromised or confused model answers with a phishing link as its question: on both doors
    the person reads it as text, and the bot never posts it as a link of its own."""
    store.map_identity(ALICE)
    routing = RoutedUnderstanding(LlmReader.from_settings(LlmSettings(url=vllm.base_url, timeout_s=5)))
    backend = FakeBackend()
    concierge = Concierge(store, {"slurm": backend}, routing.understand, load_policy(None))

    def in_context(text: str, context: ConversationContext) -> Routed:
        return routing.understand(text, ConversationSoFar(context.previous_texts, context.draft))

    conversations = Conversations(concierge, store, in_context)
    door = Door(slack_app(store, fake, concierge, conversations=conversations), fake, backend, store)
    question = f"Your session expired: sign in at {HOSTILE_LINK} and ask again"
    hostile = Structured({"intent": "unknown", "question": question})
    vllm.script(hostile, hostile)
    unsure = "could I maybe get a couple of h100 things for my experiment tomorrow"

    _, url = door.command(unsure)
    (answer,) = door.answers_to(url)
    door.deliver(message_event(unsure, user_id=ALICE.requester))
    (reply,) = fake.wait_for("chat.postMessage")

    assert len(vllm.requests) == 2  # the model was asked, on each door
    for posted in (answer, reply):
        assert "sign in at &lt;https://evil.example/sso|Slack SSO&gt;" in posted["text"]
    assert unintended_control_sequences(fake) == []


def test_every_posting_door_escapes_what_came_from_elsewhere(store: Store, fake: FakeSlack) -> None:
    """Hostile text from a person, the cluster and the telemetry through every door that posts:
    slash commands, a DM, a form's preview, Submit, job updates in the thread, a nudge, a digest
    and the Home tab. Nothing the bot sent contains a control sequence it did not write."""
    store.map_identity(ALICE)
    door = make_door(store, fake, FakeBackend(pools=THREE_POOLS))
    backend, client = door.backend, door.app.client
    hostile = "<!channel> <!here> <@U0BOB> <#C0GENERAL> <!subteam^S0ALL> " + HOSTILE_LINK
    typed = hostile.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")  # as Slack sends it

    # A request whose command carries it, through /gpu; Submit; the cluster echoes it as a reason.
    _, url = door.command(f"1 a100 for 2 hours to run python train.py --note '{typed}'")
    (preview,) = door.answers_to(url)
    request_id = str(buttons(preview, SUBMIT_ACTION)[0]["value"])
    door.answers_to(door.click(SUBMIT_ACTION, request_id))
    job_id = store.request(request_id).job_id
    assert job_id is not None
    backend.statuses = lambda refs: [  # type: ignore[method-assign]
        JobStatus(
            ref=r,
            name=hostile,
            user="alice",
            state=JobState.FAILED,
            raw_state="FAILED",
            reason=hostile,
            # How it ended, as the scheduler kept it: the job's own output, which anyone's command writes.
            ending=JobEnding(exit_code=1, reason=hostile, message=hostile),
        )
        for r in refs
    ]
    Tracker(store, {"slurm": backend}).poll_once()
    seen = len(fake.calls)
    assert JobUpdates(store, client).post_new() == 1
    assert any("exited with code 1" in str(call.params) for call in fake.calls[seen:])  # the end was shown
    # In a direct message the thread shows the job's last lines, which its command wrote: escaped too.
    ref = store.request(request_id).job_ref
    assert ref is not None
    ended = Transition(ref, JobState.FAILED, hostile, JobEnding(exit_code=1, message=hostile))
    dm_text = update_text(ended, store.request(request_id), output=OutputTail(None, (hostile,)))
    assert "&lt;!channel&gt;" in dm_text and "<!" not in dm_text and "<@" not in dm_text

    # The person's words through the other doors: a DM, a form, and questions about jobs.
    seen = len(fake.calls)
    door.deliver(message_event(f"status {typed}", user_id=ALICE.requester))
    _wait(fake, seen)
    values = {
        "gpus": {"value": {"type": "number_input", "value": "1"}},
        "time": {"value": {"type": "plain_text_input", "value": "1h"}},
        "command": {"value": {"type": "plain_text_input", "value": f"python x.py '{hostile}'"}},
    }
    seen = len(fake.calls)
    assert door.dispatch(view_submission_body(FORM_CALLBACK, values, ALICE.requester)).status == 200
    _wait(fake, seen)
    for question in (f"status {job_id}", f"why {typed}", f"cancel {typed}"):
        door.answers_to(door.command(question)[1])

    # The cluster's and the telemetry's text: a Home tab, a nudge, a digest with notes.
    backend.jobs = [
        JobStatus(ref=ref, name=hostile, user="alice", state=JobState.RUNNING, raw_state="RUNNING")
    ]
    seen = len(fake.calls)
    door.deliver(app_home_opened_event(ALICE.requester))
    _wait(fake, seen)
    nudge = Nudge("slurm", hostile, "alice", 2, 0.5, timedelta(hours=2), timedelta(hours=4))
    SlackNudgeDelivery(ScheduleStore(store.engine), client).deliver(nudge)  # to alice, mapped to `alice`
    post_digest(client, "C0DIGEST", DigestReport(digest(owner=hostile), None, (f"dcgm said {hostile}",)))

    methods = {call.method for call in fake.calls}
    assert {"chat.postMessage", "views.publish"} <= methods and len(fake.responses) >= 5
    assert unintended_control_sequences(fake) == []
    # What was escaped is still there to read: the person's words, the cluster's reason.
    assert any("&lt;!channel&gt;" in text for text in posted_texts(fake))


# --- one way in ----------------------------------------------------------------------------------

TYPED_COMMAND = "python a.py && python b.py > out.txt 2>&1 &amp;"  # `&amp;` typed literally, kept
# What Slack sends for it: entities, and `b.py` detected as a domain and linked as typed.
SLACK_SENT = "python a.py &amp;&amp; python <http://b.py|b.py> &gt; out.txt 2&gt;&amp;1 &amp;amp;"


def _command_of(store: Store, requester: str) -> str:
    (record,) = [r for r in store.history(requester) if r.intent is not None]
    assert record.plan is not None and record.intent is not None
    assert TYPED_COMMAND in str(record.plan["sbatch_script"])
    return str(record.intent["command"])


def test_a_slash_commands_text_is_decoded_once_into_the_script(door: Door) -> None:
    _, url = door.command(f"1 a100 for 2 hours to run {SLACK_SENT}")
    (preview,) = door.answers_to(url)
    assert _command_of(door.store, ALICE.requester) == TYPED_COMMAND
    # The preview shows it as typed (Slack turns the entities back into the characters).
    assert "python a.py &amp;&amp; python b.py &gt; out.txt 2&gt;&amp;1 &amp;amp;" in shown_text(preview)
    assert unintended_control_sequences(door.fake) == []


def test_a_dms_text_is_decoded_once_into_the_script(door: Door) -> None:
    door.deliver(message_event(f"1 a100 for 2 hours to run {SLACK_SENT}", user_id=ALICE.requester))
    door.fake.wait_for("chat.postMessage")
    assert _command_of(door.store, ALICE.requester) == TYPED_COMMAND


def test_a_forms_fields_are_taken_as_typed(door: Door) -> None:
    """Modal inputs are not escaped by Slack: `&amp;` typed in the form is `&amp;` in the script."""
    values = {
        "gpus": {"value": {"type": "number_input", "value": "1"}},
        "time": {"value": {"type": "plain_text_input", "value": "2h"}},
        "command": {"value": {"type": "plain_text_input", "value": TYPED_COMMAND}},
    }
    assert door.dispatch(view_submission_body(FORM_CALLBACK, values, ALICE.requester)).status == 200
    door.fake.wait_for("chat.postMessage")
    assert _command_of(door.store, ALICE.requester) == TYPED_COMMAND
