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

Nothing waits for ever (bot/store/failures.py says what each failure becomes):
- SQLite waits SQLITE_BUSY_TIMEOUT_S (5 s) for another writer's lock, then fails with
  "database is locked". Our write transactions last milliseconds, so 5 s means something is
  wrong (a stuck process, a person's `sqlite3` shell inside BEGIN), not a queue.
- PostgreSQL connections get connect_timeout=PG_CONNECT_TIMEOUT_S (5 s), and through libpq's
  `options` lock_timeout=PG_LOCK_TIMEOUT_MS (5 s) and statement_timeout=PG_STATEMENT_TIMEOUT_MS
  (30 s): a lock held by another session (an admin's LOCK TABLE, a long migration) or a runaway
  query ends as an error instead of a hung Slack handler or CLI. `options` and `connect_timeout`
  given in CONCIERGE_DATABASE_URL win (libpq applies the last `-c` for a setting).
- Migrations on PostgreSQL get longer limits (MIGRATION_TIMEOUTS, SET LOCAL): 60 s to wait
  for a lock (another process's migration, a busy table) and 10 min per statement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from backends.errors import ConfigurationError
from bot.store.failures import start_error, store_error

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_S = 5.0
PG_CONNECT_TIMEOUT_S = 5
PG_LOCK_TIMEOUT_MS = 5_000
PG_STATEMENT_TIMEOUT_MS = 30_000
MIGRATION_TIMEOUTS = {"lock_timeout": 60_000, "statement_timeout": 600_000}  # ms, PostgreSQL
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
    return _postgres_engine(url)


def writing(engine: Engine) -> Engine:
    """The same engine, but its transactions take SQLite's write lock at BEGIN."""
    return engine.execution_options(**{BEGIN_MODE_OPTION: "IMMEDIATE"})


def _postgres_engine(url: URL) -> Engine:
    """Timeouts as the module docstring says; the URL's own `options` go last, so they win."""
    given = url.query.get("options", ())
    options = [f"-c lock_timeout={PG_LOCK_TIMEOUT_MS}", f"-c statement_timeout={PG_STATEMENT_TIMEOUT_MS}"]
    options += [given] if isinstance(given, str) else list(given)
    connect_args: dict[str, Any] = {"options": " ".join(options)}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_engine(url: URL) -> Engine:
    path = url.database or ""
    if url.query.get("uri") == "true":  # sqlite:///file:PATH?mode=ro&uri=true: a URI, not a path
        path = path.removeprefix("file:")
    mode = url.query.get("mode")
    in_memory = not path or path == ":memory:" or mode == "memory"
    if not in_memory and mode != "ro":
        _make_parent(Path(path).expanduser())
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


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigurationError(
            f"the directory for the concierge's SQLite database {path} cannot be created ({e}); "
            "check CONCIERGE_DATABASE_URL"
        ) from e


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
                for setting, ms in MIGRATION_TIMEOUTS.items():
                    connection.exec_driver_sql(f"SET LOCAL {setting} = {ms}")
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY})
            if _current_heads(connection) == heads:
                return  # another process migrated while we waited for the lock
            command.upgrade(alembic_config(connection), "head")
    except SQLAlchemyError as e:
        error = start_error(e, engine.url)
        if error is None:
            raise
        raise error from e


def _current_heads(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


@contextmanager
def unavailable_as_error(url: URL, then: str) -> Iterator[None]:
    """Database failures as errors whose message a person can act on (bot/store/failures.py):
    BackendUnavailable when waiting helps, ConfigurationError when an admin must act. `then` says
    what happens next after a transient one ("try again in a moment"). IntegrityError and our own
    bugs propagate unchanged."""
    try:
        yield
    except SQLAlchemyError as e:
        error = store_error(e, url, then)
        if error is None:
            raise
        raise error from e


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


def inserted_first(connection: Connection, table: Any, keys: Sequence[Any], **values: Any) -> bool:
    """True for exactly one caller per key, however many try at once, on any replica: one
    INSERT … ON CONFLICT (keys) DO NOTHING, whose RETURNING row only the winner gets."""
    statement = (
        conflict_insert(connection.engine)(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(keys))
        .returning(keys[0])
    )
    return connection.execute(statement).scalar() is not None
