"""The store: SQLite by default, PostgreSQL by URL; callers see `Store` and frozen records only."""

from bot.store.records import AuditEvent, RequestRecord, StateChange
from bot.store.store import Store

__all__ = ["AuditEvent", "RequestRecord", "StateChange", "Store"]
