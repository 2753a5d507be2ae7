"""What `concierge doctor` found: one `Check` per thing it looked at, printed one per line.

A check is data (what was checked, whether it holds, what was seen, how to fix it), so the text
and the `--json` form are two renderings of the same list and a test can read either.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

OK_MARK = "✓"
FAILED_MARK = "✗"


@dataclass(frozen=True, slots=True)
class Check:
    dependency: str  # the configured thing: "database", "slurm (cli)", "kubernetes", "model", "slack", …
    what: str  # what was checked, e.g. "reachable", "migrations current"
    ok: bool
    detail: str = ""  # what was seen: a version, a leader, the error
    fix: str = ""  # what to do when it fails
    # The exit code the CLI gives this failure elsewhere (README: 6 unreachable, 7 configuration, …).
    exit_code: int = 0

    @property
    def line(self) -> str:
        mark = OK_MARK if self.ok else FAILED_MARK
        seen = f": {self.detail}" if self.detail else ""
        fix = f"\n    fix: {self.fix}" if not self.ok and self.fix else ""
        return f"{mark} {self.dependency}: {self.what}{seen}{fix}"


def passed(dependency: str, what: str, detail: str = "") -> Check:
    return Check(dependency, what, True, detail)


def failed(dependency: str, what: str, detail: str, fix: str, exit_code: int = 7) -> Check:
    return Check(dependency, what, False, detail, fix, exit_code)


def exit_code(checks: Sequence[Check]) -> int:
    """0 when all passed, else the code of the first failure, in the order a request meets them:
    what that failing command would exit with."""
    return next((check.exit_code or 7 for check in checks if not check.ok), 0)


def as_text(checks: Sequence[Check]) -> str:
    failures = sum(not check.ok for check in checks)
    summary = "all checks passed" if not failures else f"{failures} of {len(checks)} checks failed"
    return "\n".join([*(check.line for check in checks), summary])


def as_json(checks: Sequence[Check]) -> str:
    """A JSON list with one object per check (`dependency`, `what`, `ok`, `detail`, `fix`)."""
    return json.dumps([asdict(check) for check in checks], indent=2, ensure_ascii=False)
