"""Opening the database and bringing its schema to the current revision.

SQLite is the default (one file in the user's data dir) and PostgreSQL is for shared
deployments; both must behave the same, which takes some care on SQLite:
- Python's sqlite3 module opens transactions only before writes and never before reads, so a
  read followed by a write is not one transaction. We turn that off and send BEGIN ourselves
  (SQLAlchemy's documented recipe), so transactions mean the same thing on both databases.
- Writers begin with BEGIN IMMEDIATE: they take SQLite's write lock up front (waiting up to the
  busy timeout while the tracker or another CLI writes) instead of failing half-way with
  "database is locked" when a read lock cannot be upgraded. WAL lets readers go on meanwhile.

Alembic is configured in code (`alembic_config`), with the scripts shipped in the package, so no
alembic.ini has to be found at run time. `upgrade_to_head` is called at every start-up: when the
database is already at head it costs one SELECT. Migrations on PostgreSQL hold an advisory lock,
so two processes starting at once do not both create the tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import StaticPool

from backends.errors import BackendUnavailable, ConfigurationError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_S = 15.0
BEGIN_MODE_OPTION = "concierge_sqlite_begin"  # execution option read by the BEGIN hook below
PG_MIGRATION_LOCK_KEY = 0x434F4E43  # "CONC": any constant shared by every concierge process
SUPPORTED = ("sqlite", "postgresql")


def supported_url(raw: str) -> URL:
    """The URL as SQLAlchemy needs it; plain `postgresql://` means psycopg 3, the driver we ship."""
    try:
        url = make_url(raw)
    except ArgumentError as e:
        raise ConfigurationError(
            f"the database URL {raw!r} cannot be read: use sqlite:///PATH or postgresql://USER@HOST/DB"
        ) from e
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in SUPPORTED:
        raise ConfigurationError(
            f"the database {shown(url)} is not supported: use sqlite:///PATH or postgresql://USER@HOST/DB"
        )
    return url


def shown(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def create_store_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    return create_engine(url, pool_pre_ping=True)


def writing(engine: Engine) -> Engine:
    """The same engine, but its transactions take SQLite's write lock at BEGIN."""
    return engine.execution_options(**{BEGIN_MODE_OPTION: "IMMEDIATE"})


def _sqlite_engine(url: URL) -> Engine:
    path = url.database
    in_memory = not path or path == ":memory:" or url.query.get("mode") == "memory"
    if not in_memory and path:
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        # One shared connection for an in-memory database, else every connection sees its own.
        poolclass=StaticPool if in_memory else None,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we send BEGIN ourselves, see the module docstring
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable enough with WAL, much faster
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(BEGIN_MODE_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, in code. With a connection, migrations run on it (and its transaction)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def upgrade_to_head(engine: Engine) -> None:
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    try:
        with engine.connect() as connection:
            if _current_heads(connection) == heads:
                return
        with writing(engine).begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY})
            if _current_heads(connection) == heads:
                return  # another process migrated while we waited for the lock
            command.upgrade(alembic_config(connection), "head")
    except OperationalError as e:
        raise ConfigurationError(
            f"cannot open the concierge's database {shown(engine.url)}: {e.orig}; "
            "check CONCIERGE_DATABASE_URL and that the database server is running"
        ) from e


def _current_heads(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


@contextmanager
def unavailable_as_error(url: URL, then: str) -> Iterator[None]:
    """A database that cannot be reached (or is locked past the busy timeout) as BackendUnavailable,
    whose message a person can act on; `then` says what happens next ("try again in a moment")."""
    try:
        yield
    except OperationalError as e:
        raise BackendUnavailable(
            f"the concierge's database {shown(url)} cannot be used right now ({e.orig}); {then}",
            retry_after=5.0,
        ) from e


@contextmanager
def connected(engine: Engine, then: str, *, write: bool = False) -> Iterator[Connection]:
    """A connection for the stores that speak SQL Core (schedule, thread updates): in a write
    transaction when `write` (SQLite's lock taken at BEGIN), with `unavailable_as_error`."""
    with unavailable_as_error(engine.url, then):
        if write:
            with writing(engine).begin() as connection:
                yield connection
        else:
            with engine.connect() as connection:
                yield connection


def conflict_insert(engine: Engine) -> Callable[..., Any]:
    """The dialect's INSERT that takes ON CONFLICT (SQLite ≥ 3.24 and PostgreSQL spell it alike,
    but SQLAlchemy has one construct per dialect): `conflict_insert(engine)(Table).values(…)`."""
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
