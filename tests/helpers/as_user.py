"""Commands run as another Unix user (runuser), as that person would run them.

This interpreter may live under a directory closed to other users (/root/.pyenv on these machines):
then the command runs in a private mount namespace (unshare) where /root shows that one entry and
nothing else of root's home, through an empty 0711 directory, so the person can run the installed
`concierge` without the test changing the real /root. A test may also mount a directory of its own
on /etc/gpu-concierge there (root's site file, bot/site_file.py); the machine's /etc stays as it is.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bot.site_file import SITE_FILE

# $0 = the site directory (or ""), $1 = the stand-in for /root (or ""), $2 = the entry it shows;
# then the command.
_NAMESPACE = """
if [ -n "$0" ]; then mount --bind "$0" /etc/gpu-concierge || exit 90; fi
if [ -n "$1" ]; then
  mount --bind "/root/$2" "$1/$2" && mount --rbind "$1" /root || exit 91
fi
shift 2
exec "$@"
"""


@contextmanager
def as_user(user: str, argv: Sequence[str], site: Path | None = None) -> Iterator[list[str]]:
    """The command line that runs `argv` as `user` (with `site` on /etc/gpu-concierge when given),
    valid while the context is open."""
    real = Path(os.path.realpath(sys.executable))
    closed = real.is_relative_to("/root")
    as_them = ["runuser", "-u", user, "--", *argv]
    if not closed and site is None:
        yield as_them
        return
    if site is not None:
        SITE_FILE.parent.mkdir(mode=0o755, exist_ok=True)  # the mount point
    with tempfile.TemporaryDirectory(prefix="root-stand-in-") as stand_in:
        entry = real.relative_to("/root").parts[0] if closed else ""
        if closed:
            os.chmod(stand_in, 0o711)
            (Path(stand_in) / entry).mkdir()
        opened = stand_in if closed else ""
        yield ["unshare", "--mount", "sh", "-c", _NAMESPACE, str(site or ""), opened, entry, *as_them]
