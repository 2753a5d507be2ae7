"""`log_format: json`: one JSON object per line, naming the request the line is about."""

from __future__ import annotations

import io
import json
import logging
import threading

from backends.types import IntentKind
from bot.answers import Question
from bot.engine import Concierge
from bot.logs import JsonLines
from bot.store import Store
from bot.understanding.grammar import understand
from policies import load_policy
from tests.fakes.backend import FakeBackend
from tests.fakes.slack_app import ALICE


def test_a_line_logged_while_a_request_is_handled_names_it(store: Store) -> None:
    store.map_identity(ALICE)
    engine = Concierge(store, {"slurm": FakeBackend()}, understand, load_policy(None))
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(JsonLines())
    log = logging.getLogger("concierge.test-json")
    log.addHandler(handler)
    log.setLevel(logging.INFO)

    def a_door() -> None:  # a door's thread, as Slack's workers are
        log.info("before any request")
        engine.answer(ALICE, Question(IntentKind.QUEUE), "slack")
        log.warning("the queue was shown to %s", ALICE.requester)

    try:
        door = threading.Thread(target=a_door)
        door.start()
        door.join(10)
    finally:
        log.removeHandler(handler)
    before, after = (json.loads(line) for line in written.getvalue().splitlines())
    [recorded] = store.history(ALICE.requester, 1)
    assert "request_id" not in before
    assert after["request_id"] == recorded.id
    assert (after["level"], after["logger"], after["message"]) == (
        "WARNING",
        "concierge.test-json",
        f"the queue was shown to {ALICE.requester}",
    )
