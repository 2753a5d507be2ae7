"""`concierge history` lists what asked for a job or changed one; `--all` adds the questions.
The installed CLI in a subprocess over a store of both kinds (the filter is a JSON path in SQL)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from backends.types import Intent, IntentKind
from bot.store import Store
from tests.helpers.cli import Cli, cli_env

ASKED = [
    ("2 a100 for 1 hour to run python3 train.py", IntentKind.SUBMIT, "submitted"),
    ("what's in the queue", IntentKind.QUEUE, "answered"),
    ("why is 77 pending", IntentKind.WHY_PENDING, "answered"),
    ("how many gpus are free", IntentKind.CAPACITY, "answered"),
    ("cancel 77", IntentKind.CANCEL, "answered"),
    ("8 a100 for 9 days to run python3 big.py", IntentKind.SUBMIT, "policy_check"),
    ("blorp the gizmo", IntentKind.UNKNOWN, "invalid"),
]
LISTED_BY_DEFAULT = {ASKED[0][0], "cancel 77", "blorp the gizmo"}


def history(database_url: str, home: Path, *args: str) -> list[str]:
    done = Cli(cli_env(home, database_url))("history", *args)
    assert done.code == 0, done.err
    return [line.split(None, 4)[4] for line in done.out.splitlines()[1:]]


def test_history_lists_job_requests_and_all_of_it_with_all(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    me = pwd.getpwuid(os.geteuid()).pw_name
    for text, kind, outcome in ASKED:
        request_id = store.new_request(me, "cli", text)
        store.record_intent(request_id, Intent(kind=kind))
        store.record_outcome(request_id, outcome)
    assert {row.split(None, 1)[1] for row in history(database_url, tmp_path)} == LISTED_BY_DEFAULT
    everything = history(database_url, tmp_path, "--all")
    assert {row.split(None, 1)[1] for row in everything} == {text for text, _, _ in ASKED}
    # The limit counts what is listed: the newest three of all would hold only two of these.
    assert {
        row.split(None, 1)[1] for row in history(database_url, tmp_path, "--limit", "3")
    } == LISTED_BY_DEFAULT
