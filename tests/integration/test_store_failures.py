"""The store when its database fails, for real: each fault is made on SQLite or PostgreSQL and
the store must answer with a ConciergeError a person can act on, never hang, and never let an
unexpected exception (the CLI's incident id, exit 70) through.

Transient faults (unreachable, ended connections, locks held past the timeouts) are
BackendUnavailable, exit 6; faults an admin must fix (read-only, no privileges, a schema that
does not match, not a database) are ConfigurationError, exit 7. Locks are waited for with the
store's own timeouts (5 s), so those tests take a few seconds each.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from backends.errors import BackendUnavailable, ConciergeError, ConfigurationError
from bot.store import Store
from bot.store.database import connected
from tests.helpers.cli import Cli, cli_env

SCHEMA_CHANGES = [
    "ALTER TABLE requests RENAME TO requests_old",
    "ALTER TABLE requests RENAME COLUMN text TO words",
]
LOCK_BOUND_S = 15.0  # the store gives up after 5 s; this only proves that it returns at all


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def _execute(url: str, *statements: str) -> None:
    """DDL from outside the store, as an admin (or a mistake) would run it."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


@contextmanager
def holding_the_requests_lock(database_url: str) -> Iterator[None]:
    """Another session inside a transaction that holds the lock every write to `requests` needs."""
    if database_url.startswith("sqlite"):
        holder = sqlite3.connect(_sqlite_path(database_url), isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            yield
            holder.execute("ROLLBACK")
        finally:
            holder.close()
    else:
        with psycopg.connect(_libpq(database_url)) as admin:  # psycopg opens a transaction itself
            admin.execute("LOCK TABLE requests IN ACCESS EXCLUSIVE MODE")
            yield
            admin.rollback()


def _raised(call: Callable[[], object]) -> ConciergeError:
    with pytest.raises(ConciergeError) as caught:
        call()
    return caught.value


def _assert_unavailable(error: ConciergeError, *words: str) -> None:
    assert isinstance(error, BackendUnavailable), error
    assert error.exit_code == 6
    assert error.retry_after is not None
    assert "\n" not in error.message
    for word in words:
        assert word in error.message


def _assert_misconfigured(error: ConciergeError, *words: str) -> None:
    assert isinstance(error, ConfigurationError), error
    assert error.exit_code == 7
    assert "\n" not in error.message
    for word in words:
        assert word in error.message


# --- both databases ---------------------------------------------------------------------------


@pytest.mark.parametrize("change", SCHEMA_CHANGES)
def test_a_table_or_column_changed_by_hand_is_a_schema_mismatch(
    store: Store, database_url: str, change: str
) -> None:
    store.new_request("alice", "cli", "before the change")
    _execute(database_url, change)
    after = _raised(lambda: store.new_request("alice", "cli", "after the change"))
    _assert_misconfigured(after, "schema does not match", "migrations", "CONCIERGE_DATABASE_URL")
    _assert_misconfigured(_raised(lambda: store.history(None)), "schema does not match")
    # Starting again does not repair it: alembic_version is at head, so migrate() changes nothing.
    with closing(Store(database_url)) as again:
        again.migrate()
        with pytest.raises(ConfigurationError, match="schema does not match"):
            again.history(None)


def test_a_lock_held_by_another_session_ends_as_busy_not_a_hang(store: Store, database_url: str) -> None:
    kept = store.new_request("alice", "cli", "before the lock")
    with holding_the_requests_lock(database_url):
        started = time.monotonic()
        with pytest.raises(ConciergeError) as caught:
            store.new_request("alice", "cli", "while locked")
        assert time.monotonic() - started < LOCK_BOUND_S
    _assert_unavailable(caught.value, "busy", "lock", "try again")
    later = store.new_request("alice", "cli", "after the lock")
    assert {record.id for record in store.history("alice")} == {kept, later}


def test_every_connection_has_its_timeouts(store: Store, database_url: str) -> None:
    with store.engine.connect() as connection:
        if database_url.startswith("sqlite"):
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        else:
            assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == "5s"
            assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "30s"


def test_integrity_errors_and_bugs_propagate_unchanged(store: Store) -> None:
    """Callers answer IntegrityError themselves; a SQL mistake of ours is a bug for the incident
    log, not an admin's problem, so neither becomes a ConciergeError."""
    store.new_request("alice", "cli", "one")
    copy = (
        "INSERT INTO requests (id, requester, door, text, outcome, created_at, updated_at) "
        "SELECT id, requester, door, text, outcome, created_at, updated_at FROM requests"
    )
    with pytest.raises(IntegrityError), connected(store.engine, "then", write=True) as connection:
        connection.execute(text(copy))
    with pytest.raises(SQLAlchemyError) as caught, connected(store.engine, "then") as connection:
        connection.execute(text("SELEC 1"))
    assert not isinstance(caught.value, ConciergeError)


# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[Store]:
    """The `store` fixture's store on PostgreSQL only, for faults SQLite cannot have."""
    migrated = Store(postgres_url)
    migrated.migrate()
    try:
        yield migrated
    finally:
        migrated.close()


@pytest.fixture
def restricted_role(postgres_url: str) -> Iterator[str]:
    """A login role with no privileges on the concierge's tables; its URL."""
    role = f"concierge_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(postgres_url), autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        yield make_url(postgres_url).set(username=role).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(postgres_url), autocommit=True) as admin:
            admin.execute(f'DROP OWNED BY "{role}"')  # its grants in this database
            admin.execute(f'DROP ROLE "{role}"')


@pytest.mark.postgres
def test_a_role_without_privileges_is_told_which_grants_are_missing(
    pg_store: Store, postgres_url: str, restricted_role: str
) -> None:
    role = make_url(restricted_role).username
    with closing(Store(restricted_role)) as refused:
        error = _raised(refused.migrate)  # it cannot even read alembic_version
        _assert_misconfigured(error, "refuses the concierge's user", "GRANT", "CONCIERGE_DATABASE_URL")
        _execute(
            postgres_url,
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"',
            f'REVOKE INSERT ON requests FROM "{role}"',
        )
        refused.migrate()
        assert refused.history(None) == []
        error = _raised(lambda: refused.new_request("alice", "cli", "not allowed to insert"))
        _assert_misconfigured(error, "permission denied", "GRANT")


@pytest.mark.postgres
def test_a_read_only_postgres_database_is_unwritable(pg_store: Store, postgres_url: str) -> None:
    kept = pg_store.new_request("alice", "cli", "before read-only")
    database = make_url(postgres_url).database
    _execute(postgres_url, f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
    with closing(Store(postgres_url)) as read_only:  # the setting applies to new sessions
        read_only.migrate()  # at head it only reads
        assert [record.id for record in read_only.history("alice")] == [kept]
        error = _raised(lambda: read_only.new_request("alice", "cli", "while read-only"))
        _assert_misconfigured(error, "read-only", "default_transaction_read_only")


@pytest.mark.postgres
def test_a_connection_killed_by_the_server_reconnects_or_is_unavailable(
    pg_store: Store, postgres_url: str
) -> None:
    pg_store.new_request("alice", "cli", "before the kill")
    database = make_url(postgres_url).database
    with psycopg.connect(_libpq(postgres_url), autocommit=True) as admin:
        others = "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
        for (pid,) in admin.execute(others, (database,)).fetchall():
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with contextlib.suppress(BackendUnavailable):  # pool_pre_ping should replace the dead connection
        pg_store.new_request("alice", "cli", "after the kill")
    pg_store.new_request("alice", "cli", "once more")


@pytest.mark.postgres
def test_a_connection_killed_mid_statement_is_unavailable(pg_store: Store, postgres_url: str) -> None:
    # A long lock_timeout in the URL (it wins over the store's) keeps the write waiting until killed.
    patient_url = make_url(postgres_url).update_query_dict({"options": "-c lock_timeout=60000"})
    patient = Store(patient_url.render_as_string(hide_password=False))
    database = patient_url.database
    outcome: list[BaseException | str] = []

    def write() -> None:
        try:
            outcome.append(patient.new_request("alice", "cli", "killed while waiting"))
        except BaseException as e:
            outcome.append(e)

    try:
        with holding_the_requests_lock(postgres_url), psycopg.connect(_libpq(postgres_url)) as admin:
            admin.autocommit = True
            writer = threading.Thread(target=write)
            writer.start()
            waiting = "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'"
            deadline = time.monotonic() + LOCK_BOUND_S
            while not (pids := admin.execute(waiting, (database,)).fetchall()):
                assert time.monotonic() < deadline, "the store's write never waited for the lock"
                time.sleep(0.05)
            admin.execute("SELECT pg_terminate_backend(%s)", pids[0])
            writer.join(LOCK_BOUND_S)
        assert not writer.is_alive()
        (error,) = outcome
        assert isinstance(error, ConciergeError), repr(error)
        _assert_unavailable(error, "ended the connection", "try again")
        patient.new_request("alice", "cli", "after the kill")
    finally:
        patient.close()


@pytest.mark.postgres
def test_an_unreachable_or_missing_postgres_database(postgres_url: str) -> None:
    with closing(Store("postgresql://concierge:s3cret@127.0.0.1:1/concierge")) as gone:
        error = _raised(lambda: gone.history(None))
        _assert_unavailable(error, "cannot be reached", "CONCIERGE_DATABASE_URL", "try again")
        assert "s3cret" not in error.message
    missing = make_url(postgres_url).set(database="no_such_concierge_db").render_as_string(False)
    with closing(Store(missing)) as store:
        _assert_misconfigured(_raised(store.migrate), "cannot be opened", "CONCIERGE_DATABASE_URL")


# --- SQLite -------------------------------------------------------------------------------------


def test_a_read_only_sqlite_database_is_unwritable(sqlite_url: str) -> None:
    # The tests run as root, which ignores file modes, so SQLite's own read-only mode makes the fault.
    writable = Store(sqlite_url)
    writable.migrate()
    kept = writable.new_request("alice", "cli", "before read-only")
    writable.close()
    with closing(Store(f"sqlite:///file:{_sqlite_path(sqlite_url)}?mode=ro&uri=true")) as read_only:
        read_only.migrate()  # at head it only reads
        assert [record.id for record in read_only.history("alice")] == [kept]
        error = _raised(lambda: read_only.new_request("alice", "cli", "while read-only"))
        _assert_misconfigured(error, "read-only", "mode=ro")


def test_a_sqlite_path_that_is_no_database_is_a_configuration_error(tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("these are not the tables you are looking for\n" * 100)
    for url, words in [
        (f"sqlite:///{junk}", "is not a usable database"),
        (f"sqlite:///{tmp_path}", "cannot be opened"),  # a directory
    ]:
        with closing(Store(url)) as store:
            _assert_misconfigured(_raised(store.migrate), words, "CONCIERGE_DATABASE_URL")


def test_the_cli_prints_one_line_and_exits_7_for_a_schema_that_does_not_match(
    sqlite_url: str, tmp_path: Path
) -> None:
    """The CLI migrates at every start, but only when alembic_version is behind head: a column
    renamed by hand in a database at head is not repaired, so the fault reaches `history`."""
    store = Store(sqlite_url)
    store.migrate()
    store.new_request("root", "cli", "before the change")
    store.close()
    _execute(sqlite_url, "ALTER TABLE requests RENAME COLUMN text TO words")
    done = Cli(cli_env(tmp_path, sqlite_url))("history")  # an incident log, if any, stays in tmp_path
    assert done.code == 7, done.err
    lines = done.err.strip().splitlines()
    assert len(lines) == 1, done.err
    assert lines[0].startswith("error: the concierge's database")
    assert "schema does not match" in lines[0]
    assert "Traceback" not in done.err and "incident" not in done.err
