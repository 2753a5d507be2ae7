"""The database: reachable, at the code's migration head, writable (bot/store/health.py)."""

from __future__ import annotations

from backends.errors import ConciergeError
from bot.doctor.report import Check, failed, passed
from bot.store import Store

NAME = "database"
MIGRATE = (
    "start `concierge serve` once, or run any command that opens the store (e.g. `concierge history`): "
    "each applies the migrations; an older concierge elsewhere may be pinning the schema"
)


def database_checks(store: Store, shown_url: str) -> list[Check]:
    """Each check needs the one before it: nothing is migrated or left written."""
    try:
        found = store.revisions()
    except ConciergeError as e:
        return [
            failed(
                NAME,
                "reachable",
                f"{shown_url}: {e.message}",
                "fix CONCIERGE_DATABASE_URL or start the database",
                e.exit_code,
            )
        ]
    checks = [passed(NAME, "reachable", shown_url)]
    current = ", ".join(sorted(found.current)) or "none (never migrated)"
    head = ", ".join(sorted(found.head))
    if found.current_enough:
        checks.append(passed(NAME, "migrations current", f"at {head}"))
    else:
        checks.append(
            failed(NAME, "migrations current", f"the database is at {current}, this code at {head}", MIGRATE)
        )
    if not found.current_enough:
        return checks  # a write would only meet the missing tables
    refused = store.write_refused()
    if refused is None:
        checks.append(passed(NAME, "writable", "a row written and rolled back"))
    else:
        checks.append(failed(NAME, "writable", refused, "give the concierge's database user write access"))
    return checks
