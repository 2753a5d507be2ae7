"""The model proposes, the person disposes: a cancel the language model read is never carried out on
the reading alone, through every door (bot/confirmation.py).

The model is hostile: the fake vLLM (tests/openai_fake) answers every message with "cancel job
1001", to the real client. Slack is the fake Web API behind the real Bolt app (tests/slack_fake),
the CLI's `ask` runs as a subprocess (it is refused before any cluster is asked, so no Slurm is
needed), `concierge chat` runs through click's CliRunner; the cluster is a fake backend that
records cancels and refuses a job that is not the person's. Both databases, as every store test.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from slack_bolt import BoltRequest

from backends.types import Identity, IntentKind
from bot.confirmation import ConfirmFirst
from bot.conversations import Conversations
from bot.conversations.context import ConversationContext
from bot.engine import Concierge
from bot.llm.client import LlmReader
from bot.llm.output import ModelReading
from bot.llm.prompts import ConversationSoFar
from bot.llm.routing import Routed, RoutedUnderstanding
from bot.llm.settings import LlmSettings
from bot.slack.blocks import SUBMIT_ACTION
from bot.slack.confirmations import CONFIRM_ORDER_ACTION, KEEP_JOB_ACTION
from bot.store import Store
from bot.understanding.grammar import understand
from policies import load_policy
from tests.fakes.backend import FakeBackend
from tests.fakes.slack_app import (
    ALICE,
    BOB,
    EMAIL_RULE,
    SECRET,
    Door,
    buttons,
    make_door,
    shown_text,
    slack_app,
)
from tests.helpers.chat import chat_with
from tests.helpers.cli import cli_env
from tests.helpers.threads import at_once
from tests.openai_fake import FakeVllm, Structured
from tests.slack_fake import FakeSlack, block_action_body, signed_request
from tests.slack_fake.inbound import event_callback_body, message_event

CONCIERGE = str(Path(sys.executable).with_name("concierge"))

# The reproduction: a request for GPUs that mentions a job in passing.
PASSING = "hi! could you get me 2 a100 for 4 hours to run python train.py, it continues my job 1001 please"
# An order to cancel that the grammar is unsure of (0.7), so the model reads it.
ORDERED = "hey, 2 a100 for 1h to run python a.py, and cancel my old job 1001"
CANCEL_1001 = {"intent": "cancel", "job": "1001"}


@pytest.fixture
def model() -> Iterator[FakeVllm]:
    with FakeVllm(expected_properties=frozenset(ModelReading.model_fields)) as server:
        server.default = Structured(CANCEL_1001)  # whatever it is asked
        yield server


def routing(model: FakeVllm) -> RoutedUnderstanding:
    return RoutedUnderstanding(LlmReader.from_settings(LlmSettings(url=model.base_url, timeout_s=5)))


@pytest.fixture
def door(store: Store, fake: FakeSlack, model: FakeVllm) -> Door:
    store.map_identity(ALICE)
    store.map_identity(BOB)
    door = make_door(store, fake, reader=routing(model).understand, **EMAIL_RULE)
    door.backend.owners["1001"] = "alice"
    return door


def asked(door: Door, text: str, user: Identity = ALICE) -> str:
    """`/gpu <text>`; the id of the confirmation it posted (its buttons' value)."""
    _, url = door.command(text, user=user)
    (answer,) = door.answers_to(url)
    (confirm,) = buttons(answer, CONFIRM_ORDER_ACTION)
    (keep,) = buttons(answer, KEEP_JOB_ACTION)
    assert confirm["text"]["text"] == "Cancel job 1001" and keep["text"]["text"] == "Keep it"
    assert confirm["value"] == keep["value"]
    assert door.backend.cancelled == []
    return str(confirm["value"])


# --- Slack ------------------------------------------------------------------------------------------


def test_a_job_named_in_passing_is_not_cancelled_and_not_even_proposed(door: Door, model: FakeVllm) -> None:
    _, url = door.command(PASSING)
    (answer,) = door.answers_to(url)
    assert "Nothing was done" in shown_text(answer) and "cancel job 1001" in shown_text(answer)
    assert buttons(answer, CONFIRM_ORDER_ACTION) == [] and buttons(answer, SUBMIT_ACTION) == []
    assert door.backend.cancelled == [] and len(model.completions) == 1


def test_a_cancel_the_model_read_waits_for_the_owner_to_confirm_it(door: Door) -> None:
    request_id = asked(door, ORDERED)
    assert door.store.request(request_id).outcome == "awaiting_confirmation"

    (refused,) = door.answers_to(door.click(CONFIRM_ORDER_ACTION, request_id, user=BOB))
    assert "only the person who was asked" in shown_text(refused)
    assert door.backend.cancelled == []

    (done,) = door.answers_to(door.click(CONFIRM_ORDER_ACTION, request_id))
    assert done["replace_original"] is True and "Cancelled job *1001*" in shown_text(done)
    assert door.backend.cancelled == ["1001"]
    assert door.store.request(request_id).outcome == "answered"

    (again,) = door.answers_to(door.click(CONFIRM_ORDER_ACTION, request_id))
    assert "answered already" in shown_text(again) and door.backend.cancelled == ["1001"]


def test_keep_it_cancels_nothing_and_the_confirmation_is_spent(door: Door) -> None:
    request_id = asked(door, ORDERED)
    (refused,) = door.answers_to(door.click(KEEP_JOB_ACTION, request_id, user=BOB))
    assert "only the person who was asked" in shown_text(refused)
    (kept,) = door.answers_to(door.click(KEEP_JOB_ACTION, request_id))
    assert "Kept job *1001*; nothing was cancelled." in shown_text(kept)
    assert door.store.request(request_id).outcome == "declined"
    (late,) = door.answers_to(door.click(CONFIRM_ORDER_ACTION, request_id))
    assert "answered already" in shown_text(late) and door.backend.cancelled == []


def test_confirm_clicked_many_times_at_once_cancels_once(door: Door) -> None:
    request_id = asked(door, ORDERED)
    urls: list[str] = []
    start = threading.Barrier(8)

    def click() -> None:
        start.wait()
        urls.append(door.click(CONFIRM_ORDER_ACTION, request_id))

    at_once(click, [()] * 8)
    answers = [door.answers_to(url)[0] for url in urls]
    assert sum("Cancelled job *1001*" in shown_text(a) for a in answers) == 1
    assert door.backend.cancelled == ["1001"]


def test_confirming_someone_elses_job_is_still_refused_by_the_cluster(door: Door) -> None:
    request_id = asked(door, ORDERED, user=BOB)  # job 1001 is alice's
    (refused,) = door.answers_to(door.click(CONFIRM_ORDER_ACTION, request_id, user=BOB))
    assert "job 1001 belongs to alice" in shown_text(refused)
    assert door.backend.cancelled == [] and door.store.request(request_id).outcome == "denied"


def test_the_explicit_command_needs_no_confirmation_and_no_model(door: Door, model: FakeVllm) -> None:
    _, url = door.command("cancel 1001")
    (done,) = door.answers_to(url)
    assert "Cancelled job *1001*" in shown_text(done) and door.backend.cancelled == ["1001"]
    assert model.completions == []


def test_in_a_dm_thread_the_confirmation_is_posted_there_and_replaced_when_confirmed(
    store: Store, fake: FakeSlack, model: FakeVllm
) -> None:
    store.map_identity(ALICE)
    routed = routing(model)

    def in_context(text: str, context: ConversationContext) -> Routed:
        return routed.understand(text, ConversationSoFar(context.previous_texts, context.draft))

    backend = FakeBackend()
    backend.owners["1001"] = "alice"
    concierge = Concierge(store, {"slurm": backend}, routed.understand, load_policy(None))
    app = slack_app(store, fake, concierge, conversations=Conversations(concierge, store, in_context))

    def dispatch(body: str) -> None:
        headers: dict[str, str | Sequence[str]] = dict(signed_request(SECRET, body))
        assert app.dispatch(BoltRequest(body=body, headers=headers)).status == 200

    dispatch(event_callback_body(message_event(ORDERED, user_id=ALICE.requester)))
    (posted,) = fake.wait_for("chat.postMessage")
    (confirm,) = buttons(posted, CONFIRM_ORDER_ACTION)
    assert "order to cancel job 1001" in shown_text(posted) and backend.cancelled == []
    click = block_action_body(
        CONFIRM_ORDER_ACTION,
        str(confirm["value"]),
        ALICE.requester,
        channel=str(posted["channel"]),
        message_ts="1700000000.000200",
        response_url=fake.response_url("dm"),
    )
    dispatch(click)
    (update,) = fake.wait_for("chat.update")
    assert "Cancelled job *1001*" in json.dumps(update["blocks"]) and backend.cancelled == ["1001"]


# --- the engine, as the CLI's `ask` uses it ----------------------------------------------------------


def test_the_engine_says_which_readings_need_a_confirmation(store: Store, model: FakeVllm) -> None:
    backend = FakeBackend()
    concierge = Concierge(store, {"slurm": backend}, routing(model).understand, load_policy(None))
    assert concierge.read(ORDERED).confirm_first == ConfirmFirst(IntentKind.CANCEL, "1001")
    passing = concierge.read(PASSING)
    assert passing.intent.kind == IntentKind.UNKNOWN and passing.confirm_first is None  # refused outright
    assert concierge.read("cancel 1001").confirm_first is None  # command syntax: the grammar alone
    assert len(model.completions) == 2
    grammar_only = Concierge(store, {"slurm": backend}, understand, load_policy(None))
    assert grammar_only.read("please cancel job 1001").confirm_first is None
    assert backend.cancelled == []


@dataclass(frozen=True)
class CliEnv:
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CONCIERGE, *args], env=self.env, capture_output=True, text=True, timeout=60, check=False
        )


@pytest.fixture
def cli(tmp_path: Path, model: FakeVllm) -> CliEnv:
    return CliEnv(cli_env(tmp_path, LLM_URL=model.base_url, LLM_TIMEOUT_S="5"))


def test_ask_refuses_a_cancel_the_model_read_under_yes_and_without_a_terminal(cli: CliEnv) -> None:
    # Refused before anything asks the cluster: no Slurm is needed, none is touched.
    with_yes = cli.run("ask", "--yes", ORDERED)
    assert with_yes.returncode == 2, with_yes.stderr
    assert "--yes does not confirm" in with_yes.stderr and "`concierge cancel 1001`" in with_yes.stderr
    piped = cli.run("ask", ORDERED)
    assert piped.returncode == 2, piped.stderr
    assert "no terminal to confirm it on" in piped.stderr and "nothing was cancelled" in piped.stderr
    passing = cli.run("ask", PASSING)
    assert passing.returncode != 0 and "Nothing was done" in passing.stderr


def test_ask_at_a_terminal_names_the_job_and_says_no_by_default(cli: CliEnv) -> None:
    controller, terminal = pty.openpty()
    with subprocess.Popen(
        [CONCIERGE, "ask", ORDERED], env=cli.env, stdin=terminal, stdout=terminal, stderr=terminal
    ) as process:
        os.close(terminal)
        seen = b""
        deadline = time.monotonic() + 60
        while b"[y/N]" not in seen and time.monotonic() < deadline:
            if select.select([controller], [], [], 0.5)[0]:
                seen += os.read(controller, 4096)
        os.write(controller, b"\n")  # Enter: the default
        assert process.wait(timeout=60) == 0
        while select.select([controller], [], [], 0.5)[0]:
            try:
                seen += os.read(controller, 4096)
            except OSError:
                break
    os.close(controller)
    shown = seen.decode()
    assert "order to cancel job 1001" in shown and "Cancel job 1001? [y/N]" in shown
    assert "Job 1001 was not cancelled." in shown


# --- concierge chat ----------------------------------------------------------------------------------


def talk(store: Store, backend: FakeBackend, model: FakeVllm, lines: str) -> str:
    routed = routing(model)

    def in_context(text: str, context: ConversationContext) -> Routed:
        return routed.understand(text, ConversationSoFar(context.previous_texts, context.draft))

    concierge = Concierge(store, {"slurm": backend}, routed.understand, load_policy(None))
    conversations = Conversations(concierge, store, in_context)
    # The refusal of a reading is an error line, on stderr.
    return chat_with(concierge, store, ALICE, lines, conversations=conversations).output


def test_chat_asks_before_a_cancel_the_model_read(store: Store, model: FakeVllm) -> None:
    store.map_identity(ALICE)
    backend = FakeBackend()
    backend.owners["1001"] = "alice"
    declined = talk(store, backend, model, f"{ORDERED}\n\n{PASSING}\n")
    assert "order to cancel job 1001" in declined and "Cancel job 1001? [y/N]" in declined
    assert "Job 1001 was not cancelled." in declined and "Nothing was done" in declined
    assert backend.cancelled == []
    confirmed = talk(store, backend, model, f"{ORDERED}\nyes\n")
    assert "Cancelled job 1001." in confirmed and backend.cancelled == ["1001"]
    typed = talk(store, backend, model, "cancel 1001\n")  # typed as an order: no prompt
    assert "[y/N]" not in typed and backend.cancelled == ["1001", "1001"]
