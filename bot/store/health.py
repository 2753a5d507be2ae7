"""The database as `concierge doctor` sees it: reachable, at the code's migration head, writable.

Read-only apart from one write that is rolled back: doctor must never migrate or change the
store (a doctor run against a production database changes nothing). Failures come back as the
store's own error messages (bot/store/failures.py), so doctor says what every door would say.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import uuid4

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, insert
from sqlalchemy.exc import SQLAlchemyError

from backends.errors import ConciergeError
from bot.store.database import alembic_config, writing
from bot.store.failures import store_error
from bot.store.store import utc_now
from bot.store.tables import ClaimRow

_THEN = "try again in a moment"


@dataclass(frozen=True, slots=True)
class Revisions:
    current: frozenset[str]  # the database's alembic revision(s); empty: never migrated
    head: frozenset[str]  # what this version of the code expects

    @property
    def current_enough(self) -> bool:
        return self.current == self.head


def code_heads() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def revisions(engine: Engine) -> Revisions:
    """The database's revision beside the code's; raises the store's error when it cannot be read."""
    try:
        with engine.connect() as connection:
            current = frozenset(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as e:
        raise _translated(e, engine) from e
    return Revisions(current, code_heads())


def write_refused(engine: Engine) -> str | None:
    """None when a row can be written (it is rolled back), else why not."""
    try:
        with writing(engine).connect() as connection, connection.begin() as transaction:
            connection.execute(
                insert(ClaimRow).values(key=f"doctor:{uuid4().hex}", actor="doctor", claimed_at=utc_now())
            )
            transaction.rollback()
    except SQLAlchemyError as e:
        return _translated(e, engine).message
    return None


def _translated(error: SQLAlchemyError, engine: Engine) -> ConciergeError:
    translated = store_error(error, engine.url, _THEN)
    return translated if translated is not None else ConciergeError(f"{type(error).__name__}: {error}")
