"""The store: SQLite by default, PostgreSQL by URL; callers see `Store` and frozen records only.

`Store` (and SQLAlchemy with it) is imported when first asked for: the records and the lifecycle's
words are read by modules that `concierge --help` and `parse` import, and those need no database.
"""

from typing import TYPE_CHECKING, Any

from bot.store.records import AuditEvent, RequestRecord, StateChange

if TYPE_CHECKING:
    from bot.store.store import Store

__all__ = ["AuditEvent", "RequestRecord", "StateChange", "Store"]


def __getattr__(name: str) -> Any:
    if name == "Store":
        from bot.store.store import Store

        return Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
