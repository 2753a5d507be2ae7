"""The schedule's housekeeping as `concierge serve` wires it: idle conversations and aged GPU
roll-ups are deleted, the requests those conversations made stay in the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slack_sdk import WebClient
from sqlalchemy import update

from backends.types import JobStatus
from bot.conversations import ConversationKey, ConversationState
from bot.settings import ConversationSettings, Settings
from bot.slack.scheduled import scheduled_work
from bot.store import Store
from bot.store.conversation_tables import ConversationRow
from bot.store.telemetry import HOURS, MINUTES
from tests.helpers.telemetry import ALICE as ALICE_GPU
from tests.helpers.telemetry import rows_in, sample, telemetry

ALICE = "U0ALICE"
STALE = ConversationKey(door="slack", place="D1/1700000000.000100", requester=ALICE)
RECENT = ConversationKey(door="cli", place="session-7", requester=ALICE)


def _no_queue() -> tuple[list[JobStatus], list[str]]:
    raise AssertionError("housekeeping reads no queue")


def test_housekeeping_forgets_idle_conversations_and_aged_gpu_rows(store: Store, database_url: str) -> None:
    now = datetime.now(UTC)
    telemetry(store, now).record([(sample(now - timedelta(days=91), 50.0), ALICE_GPU)])
    telemetry(store, now).record([(sample(now - timedelta(hours=1), 50.0), ALICE_GPU)])
    assert (rows_in(store, MINUTES), rows_in(store, HOURS)) == (2, 2)
    for key in (STALE, RECENT):
        assert store.save_conversation(ConversationState(key=key, texts=("2 a100 for 1 hour",)))
    with store.engine.begin() as connection:
        connection.execute(
            update(ConversationRow)
            .where(ConversationRow.door == STALE.door, ConversationRow.place == STALE.place)
            .values(updated_at=datetime.now(UTC) - timedelta(days=31))
        )
    settings = Settings(database_url=database_url, conversation=ConversationSettings(keep_days=30))
    # Housekeeping posts nothing: a client that could reach no Slack proves it.
    client = WebClient(token="xoxb-unused", base_url="http://127.0.0.1:9/")
    work = scheduled_work(settings, store, client, _no_queue)
    assert work.housekeeping is not None

    work.housekeeping()

    assert store.conversation(STALE) == ConversationState(key=STALE)  # forgotten: a fresh one
    assert store.conversation(RECENT).texts == ("2 a100 for 1 hour",)
    # The default retention: minutes 48 h, hours 90 days.
    assert (rows_in(store, MINUTES), rows_in(store, HOURS)) == (1, 1)
    work.housekeeping()  # nothing more to forget; running again changes nothing
    assert store.conversation(RECENT).texts == ("2 a100 for 1 hour",)
