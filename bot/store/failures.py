"""What a failed database call means, as an error a person can act on.

Every store module goes through `store_error` (via `database.unavailable_as_error`), so one
failure reads the same whichever door hit it. The split follows who can fix it:
- BackendUnavailable (exit 6): the database cannot be reached, the server ended the session, or
  a lock was held past the store's timeouts. Waiting and trying again is the way out.
- ConfigurationError (exit 7): the database is read-only, refuses the concierge's user, is not
  a database at all, or its tables are not the ones this version expects. Retrying cannot help;
  an admin has to change the database or CONCIERGE_DATABASE_URL.

PostgreSQL says what went wrong in its SQLSTATE (psycopg's `sqlstate`, read by duck typing so
SQLite-only installs need no psycopg); connection failures that never reached a server have
none. Python 3.11's sqlite3 errors carry the SQLite result code, whose low byte is the primary
code (SQLITE_BUSY, SQLITE_READONLY, …); "no such table" is plain SQLITE_ERROR, so for that one
the message text is all there is.

Left alone (returned as None, so they propagate unchanged): IntegrityError, which callers turn
into their own answers (a repeated idempotency key, an unknown request), and anything else that
is a bug in our SQL or our use of SQLAlchemy (syntax errors, bad values, detached instances):
those belong in the incident log, not in a message that sends an admin to the database.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from sqlalchemy.engine import URL
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from backends.errors import BackendUnavailable, ConciergeError, ConfigurationError

RETRY_AFTER_S = 5.0


@dataclass(frozen=True)
class Fault:
    """One kind of failure: whether waiting helps, what happened and what to do about it."""

    transient: bool
    what: str  # follows "the concierge's database URL "
    todo: str = ""  # transient faults end with the caller's `then` as well


UNREACHABLE = Fault(
    True,
    "cannot be reached",
    "check that the database server is running and that CONCIERGE_DATABASE_URL names it",
)
ENDED = Fault(
    True, "ended the connection (the server restarted, is starting or stopping, or an admin ended it)"
)
BUSY = Fault(True, "is busy: another session held a lock this step needed for longer than the store waits")
UNAVAILABLE = Fault(True, "cannot be used right now")
UNWRITABLE = Fault(
    False,
    "is read-only, so nothing can be recorded",
    "an admin must make it writable (PostgreSQL: a primary, not a standby, with "
    "default_transaction_read_only off; SQLite: a writable file and directory, no mode=ro in the URL) "
    "or point CONCIERGE_DATABASE_URL at a writable database",
)
NOT_PERMITTED = Fault(
    False,
    "refuses the concierge's user",
    "an admin must GRANT the user in CONCIERGE_DATABASE_URL CONNECT on the database, USAGE on the schema "
    "and SELECT, INSERT, UPDATE, DELETE on the concierge's tables, or the URL must name their owner",
)
LOGIN_REFUSED = Fault(
    False,
    "refused the login",
    "check the user and password in CONCIERGE_DATABASE_URL and the server's pg_hba.conf",
)
CANNOT_OPEN = Fault(
    False,
    "cannot be opened",
    "check that CONCIERGE_DATABASE_URL names an existing database (for SQLite, a file in a directory "
    "the concierge may write)",
)
NOT_A_DATABASE = Fault(
    False,
    "is not a usable database",
    "check that CONCIERGE_DATABASE_URL names the concierge's database, or restore it from a backup",
)
FULL = Fault(False, "has no space left", "an admin must free disk space where the database lives")
SCHEMA_MISMATCH = Fault(
    False,
    "does not have the tables and columns this version expects: its schema does not match",
    "the concierge applies its migrations at every start, so a table or column was changed by hand or "
    "CONCIERGE_DATABASE_URL names another database; check the URL, and restore the schema (or the whole "
    "database from a backup) before starting the concierge again",
)

# PostgreSQL SQLSTATEs (Appendix A of its manual), exact codes first, then two-character classes.
PG_CODES = {
    "57P01": ENDED,  # admin_shutdown, also what pg_terminate_backend sends
    "57P02": ENDED,  # crash_shutdown
    "57P03": ENDED,  # cannot_connect_now: starting up or in recovery
    "55P03": BUSY,  # lock_not_available: lock_timeout passed
    "57014": BUSY,  # query_canceled: statement_timeout passed
    "40001": BUSY,  # serialization_failure
    "40P01": BUSY,  # deadlock_detected
    "53300": BUSY,  # too_many_connections
    "25006": UNWRITABLE,  # read_only_sql_transaction
    "42501": NOT_PERMITTED,  # insufficient_privilege
    "3D000": CANNOT_OPEN,  # invalid_catalog_name: no such database
    "57P04": CANNOT_OPEN,  # database_dropped
    "53100": FULL,  # disk_full
    "42P01": SCHEMA_MISMATCH,  # undefined_table
    "42703": SCHEMA_MISMATCH,  # undefined_column
    "3F000": SCHEMA_MISMATCH,  # invalid_schema_name
}
PG_CLASSES = {
    "08": UNREACHABLE,  # connection_exception
    "28": LOGIN_REFUSED,  # invalid_authorization_specification
    "53": UNAVAILABLE,  # insufficient_resources (out of memory, …)
    "57": ENDED,  # operator_intervention
}
# A connection the server refused has no SQLSTATE in psycopg (libpq reports only text), so
# these are told apart by libpq's words; anything else that never connected is unreachable.
PG_CONNECT_WORDS = (
    ("does not exist", CANNOT_OPEN),  # database "x" (or role "x") does not exist
    ("password authentication failed", LOGIN_REFUSED),
    ("no pg_hba.conf entry", LOGIN_REFUSED),
    ("authentication failed", LOGIN_REFUSED),
    ("permission denied for database", NOT_PERMITTED),  # no CONNECT privilege
    ("the database system is", ENDED),  # … starting up, shutting down, in recovery mode
    ("too many clients", BUSY),
    ("connection slots are reserved", BUSY),
)
SQLITE_CODES = {
    sqlite3.SQLITE_BUSY: BUSY,
    sqlite3.SQLITE_LOCKED: BUSY,
    sqlite3.SQLITE_READONLY: UNWRITABLE,
    sqlite3.SQLITE_CANTOPEN: CANNOT_OPEN,
    sqlite3.SQLITE_PERM: CANNOT_OPEN,
    sqlite3.SQLITE_AUTH: CANNOT_OPEN,
    sqlite3.SQLITE_NOTADB: NOT_A_DATABASE,
    sqlite3.SQLITE_CORRUPT: NOT_A_DATABASE,
    sqlite3.SQLITE_FULL: FULL,
    sqlite3.SQLITE_IOERR: UNAVAILABLE,
}
SQLITE_SCHEMA_WORDS = ("no such table", "no such column", "has no column named")


def store_error(error: SQLAlchemyError, url: URL, then: str) -> ConciergeError | None:
    """The error to raise `from error` instead, or None when `error` should propagate unchanged.
    `then` says what happens next after a transient fault ("try again in a moment")."""
    fault = classify(error)
    if fault is None:
        return None
    where = url.render_as_string(hide_password=True)
    steps = [fault.todo] if fault.todo else []
    message = f"the concierge's database {where} {fault.what}{_detail(error)}"
    if fault.transient:
        return BackendUnavailable("; ".join([message, *steps, then]), retry_after=RETRY_AFTER_S)
    return ConfigurationError("; ".join([message, *steps]))


def start_error(error: SQLAlchemyError, url: URL) -> ConciergeError | None:
    """`store_error` for the first use of the database at start-up. A server that cannot be
    reached is BackendUnavailable (exit 6) here too: the message names CONCIERGE_DATABASE_URL,
    since at start-up a wrong URL is as likely as an outage."""
    return store_error(error, url, "start the concierge again once it answers")


def classify(error: SQLAlchemyError) -> Fault | None:
    if isinstance(error, IntegrityError):
        return None  # callers answer these themselves
    if isinstance(error, PoolTimeout):
        return BUSY  # every pooled connection stayed checked out past the pool's timeout
    if isinstance(error, DisconnectionError):
        return ENDED
    if not isinstance(error, DBAPIError):
        return None  # our misuse of SQLAlchemy: a bug
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", "")  # psycopg's; None when no server answered at all
    if isinstance(sqlstate, str) and sqlstate:
        return PG_CODES.get(sqlstate) or PG_CLASSES.get(sqlstate[:2]) or _operational(error, UNAVAILABLE)
    if isinstance(orig, sqlite3.Error):
        return _sqlite_fault(orig, error)
    if error.connection_invalidated:
        return ENDED  # the connection broke mid-call
    return _operational(error, _refused_connection(str(orig)) if sqlstate is None else UNAVAILABLE)


def _refused_connection(words: str) -> Fault:
    return next((fault for said, fault in PG_CONNECT_WORDS if said in words), UNREACHABLE)


def _sqlite_fault(orig: sqlite3.Error, error: DBAPIError) -> Fault | None:
    if any(words in str(orig) for words in SQLITE_SCHEMA_WORDS):
        return SCHEMA_MISMATCH
    code = getattr(orig, "sqlite_errorcode", None)
    if not isinstance(code, int):
        return _operational(error, UNAVAILABLE)
    if code & 0xFF == sqlite3.SQLITE_ERROR:
        return None  # any other SQL error (syntax, no such function) is a bug in our SQL
    return SQLITE_CODES.get(code & 0xFF) or _operational(error, UNAVAILABLE)


def _operational(error: DBAPIError, fault: Fault) -> Fault | None:
    """`fault` for an operational failure we have no code for; programming and data errors are bugs."""
    return fault if isinstance(error, OperationalError | InterfaceError) else None


def _detail(error: SQLAlchemyError) -> str:
    """The driver's own words on one line, in parentheses (psycopg's run over several lines)."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    words = " ".join(str(cause).split())
    return f" ({words})" if words else ""
