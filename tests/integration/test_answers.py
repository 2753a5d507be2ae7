"""One answer per question verb, whichever door asks (bot/answers.py): the engine answers and records
the question, the doors only render it.

`why` is phrased by the language model the same way everywhere: the model is the fake vLLM
(tests/openai_fake) behind the real client, and its words must reach the person in Slack and in
`concierge chat` alike (chat used to print the plain template, never the model's words).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from backends.errors import RequestInvalid
from backends.types import GpuPool, IntentKind, JobRef, PendingCode, PendingReason
from bot.answers import Question
from bot.engine import Concierge
from bot.llm.client import chat_model_from
from bot.llm.phrasing import phrase_why
from bot.llm.settings import LlmSettings
from bot.store import Store
from bot.understanding.grammar import understand
from policies import load_policy
from tests.fakes.backend import FakeBackend
from tests.fakes.slack_app import ALICE, Door, shown_text, slack_app
from tests.helpers.chat import chat_with
from tests.openai_fake import FakeVllm, RawText
from tests.slack_fake import FakeSlack

TEMPLATE = "Job 1234 waits for free A100 GPUs on partition gpu."
PHRASED = "All A100 GPUs on partition gpu are busy, so job 1234 waits its turn."


class Waiting(FakeBackend):
    """A cluster where job 1234 waits for GPUs."""

    def explain(self, ref: JobRef) -> list[PendingReason]:
        return [PendingReason(code=PendingCode.INSUFFICIENT_GPU, raw="Resources", sentence=TEMPLATE)]


@pytest.fixture
def model() -> Iterator[FakeVllm]:
    with FakeVllm(response_format="none", default=RawText(PHRASED)) as server:
        yield server


@pytest.fixture
def concierge(store: Store, model: FakeVllm) -> Concierge:
    talker = chat_model_from(LlmSettings(url=model.base_url, timeout_s=5))

    def phrased(job: str, reasons: Sequence[PendingReason], pools: Sequence[GpuPool]) -> str:
        return phrase_why(job, reasons, pools, talker).text

    store.map_identity(ALICE)
    return Concierge(store, {"slurm": Waiting()}, understand, load_policy(None), phrase_why=phrased)


def test_why_is_phrased_by_the_model_at_every_door(
    store: Store, concierge: Concierge, model: FakeVllm
) -> None:
    talked = chat_with(concierge, store, ALICE, "why is job 1234 pending?\n")
    assert PHRASED in talked.output and TEMPLATE not in talked.output

    with FakeSlack() as fake:
        slack = Door(slack_app(store, fake, concierge), fake, Waiting(), store)
        _, url = slack.command("why 1234")
        (answer,) = slack.answers_to(url)
    assert PHRASED in shown_text(answer) and TEMPLATE not in shown_text(answer)
    assert len(model.completions) == 2 and model.problems == []
    asked = [(r.door, r.text, r.outcome) for r in store.history(ALICE.requester)]
    assert sorted(asked) == [("cli", "why 1234", "answered"), ("slack", "why 1234", "answered")]


def test_a_question_that_fails_is_recorded_with_why(store: Store, concierge: Concierge) -> None:
    with pytest.raises(RequestInvalid, match="which job"):
        concierge.answer(ALICE, Question(IntentKind.STATUS), "cli")
    (record,) = store.history(ALICE.requester)
    assert (record.text, record.outcome) == ("status", "invalid") and "which job" in str(record.error)
