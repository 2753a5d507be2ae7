"""`concierge serve` as deployed, in a test: the installed console script with a test's settings
(Slack's Web API at the fake, in HTTP mode on 127.0.0.1 unless Socket Mode is asked for), stopped
with SIGINT as Ctrl-C would, its output checked for tracebacks."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers.cli import CONCIERGE, cli_env
from tests.slack_fake import FakeSlack

HTTP_MODE = {
    "SLACK__MODE": "http",
    "SLACK__SIGNING_SECRET": "s3cret",
    "SLACK__PORT": "0",
    "SLACK__HOST": "127.0.0.1",
}
SOCKET_MODE = {"SLACK__APP_TOKEN": "xapp-test"}


def serve_env(
    home: Path, database_url: str, slack: FakeSlack, *, socket_mode: bool = False, **settings: str
) -> dict[str, str]:
    """The environment of a bot answering the fake Slack; `settings` as for `cli_env` (`LLM_URL=…`)."""
    mode = SOCKET_MODE if socket_mode else HTTP_MODE
    return cli_env(
        home, database_url, SLACK__BOT_TOKEN="xoxb-test", SLACK__API_URL=slack.api_url, **mode, **settings
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def stopped(bot: subprocess.Popen[bytes]) -> str:
    """Ctrl-C to the bot (unless it ended already) and all it printed."""
    if bot.poll() is None:
        bot.send_signal(signal.SIGINT)
    try:
        output, _ = bot.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        bot.kill()
        output, _ = bot.communicate()
    return output.decode(errors="replace")


@contextmanager
def concierge_serve(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`concierge serve` running with `env`; when the test's block ends well, nothing it printed may be
    a traceback other than Ctrl-C's."""
    bot = subprocess.Popen([CONCIERGE, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        yield bot
    except BaseException:
        stopped(bot)
        raise
    printed = stopped(bot)
    assert "Traceback" not in printed or "KeyboardInterrupt" in printed, printed
