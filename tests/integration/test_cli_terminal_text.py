"""The CLI prints stored text without the escape sequences in it: `concierge` as a subprocess.

Anyone can put text in the store (a Slack message, a model's question recorded as an error, a job
name from the cluster); an admin's terminal then prints it in `history --everyone`. Printed raw, an
escape sequence there clears the screen, moves the cursor to rewrite an earlier row, retitles the
window or hides a link's target behind its text (OSC 8). Both databases; no cluster is needed.
"""

from __future__ import annotations

import os
import pwd
import re
from pathlib import Path

from backends.types import Identity
from bot.store import Store
from tests.helpers.cli import Cli, Result, cli_env

# What a terminal would obey: C0 controls but tab and newline, DEL, C1, bidirectional overrides.
CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
HOSTILE_TEXT = (
    "2 a100 \x1b]8;;https://evil.example\x07see the docs\x1b]8;;\x07 \x1b[2J\x1b[H\x1b]0;root@gpu\x07"
    "\rrm -rf ~ \x9b31mred\x1bc \u202etxt.exe"
)
HOSTILE_ERROR = "\x1b[1A\x1b[2Kjob 7 completed\x08\x07 \x1bP+q\x1b\\done"


def _history_everyone(store: Store, database_url: str, tmp_path: Path) -> Result:
    # The person running it is an admin through the store, whatever the site decides about root.
    login = pwd.getpwuid(os.geteuid()).pw_name
    store.map_identity(Identity(requester=login, unix_user=login, is_admin=True))
    return Cli(cli_env(tmp_path, database_url))("history", "--everyone")


def test_history_everyone_prints_stored_text_without_escape_sequences(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    request_id = store.new_request("U0MALLORY", "slack", HOSTILE_TEXT)
    store.record_outcome(request_id, "invalid", HOSTILE_ERROR)
    done = _history_everyone(store, database_url, tmp_path)
    assert done.code == 0, done.err
    assert CONTROLS.findall(done.out) == []
    # The words are still there to read, and the table still lines up.
    assert "see the docs" in done.out and "rm -rf" in done.out and "done" in done.out
    header, row = done.out.splitlines()[:2]
    assert row.index("U0MALLORY") == header.index("WHO")
