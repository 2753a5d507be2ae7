"""The Alembic migrations on real SQLite and PostgreSQL: idempotent, cheap at head, true to the models."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, func, inspect, select

from backends.errors import BackendUnavailable, ConfigurationError
from backends.types import JobRef, JobState
from bot.store import Store
from bot.store.database import alembic_config
from bot.store.tables import Base, SlackThreadRow, StateRow
from bot.store.thread_updates import ThreadUpdates
from tests.helpers.threads import at_once

TABLES = {
    "identities",
    "requests",
    "job_states",
    "audit_events",
    "slack_threads",
    "conversations",
    "gpu_minutes",
    "gpu_hours",
    "schedule_leases",
    "schedule_runs",
    "gpu_nudges",
    "claims",
    "alembic_version",
}


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _revision(store: Store) -> str | None:
    with store.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_migrating_twice_keeps_the_schema_and_the_rows(database_url: str) -> None:
    store = Store(database_url)
    try:
        assert _revision(store) is None
        store.migrate()
        request_id = store.new_request("alice", "cli", "kept across migrations")
        store.migrate()
        assert _revision(store) == _head()
        assert set(inspect(store.engine).get_table_names()) == TABLES
        assert store.request(request_id).text == "kept across migrations"
    finally:
        store.close()


def test_migrating_at_head_only_reads_the_version(store: Store) -> None:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        store.migrate()
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    # The start-up path of every command: a look at the version table (does it exist, what is in
    # it); no lock, no DDL, nothing written.
    queries = [s for s in statements if not s.startswith("BEGIN")]
    assert len(queries) <= 2, queries
    assert "FROM alembic_version" in queries[-1]
    assert all(q.lstrip().upper().startswith(("SELECT", "PRAGMA")) for q in queries), queries
    assert not any("pg_advisory" in q or "IMMEDIATE" in q for q in statements)


def test_the_migrations_match_the_models(store: Store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_to_nothing_and_back(store: Store) -> None:
    with store.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert set(inspect(store.engine).get_table_names()) <= {"alembic_version"}
    store.migrate()
    assert set(inspect(store.engine).get_table_names()) == TABLES


def test_two_processes_starting_at_once_both_migrate(database_url: str) -> None:
    stores = [Store(database_url) for _ in range(3)]
    start = threading.Barrier(len(stores))
    failures: list[BaseException] = []

    def migrate(store: Store) -> None:
        try:
            start.wait(timeout=30)
            store.migrate()
        except BaseException as e:
            failures.append(e)

    try:
        at_once(migrate, [(s,) for s in stores])
        assert not failures, failures
        assert {_revision(s) for s in stores} == {_head()}
    finally:
        for store in stores:
            store.close()


def test_sqlite_gets_its_directory_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "concierge.db"
    store = Store(f"sqlite:///{path}")
    try:
        store.migrate()
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_an_in_memory_sqlite_database_works(tmp_path: Path) -> None:
    store = Store("sqlite://")
    store.migrate()
    request_id = store.new_request("alice", "cli", "in memory")
    assert store.request(request_id).text == "in memory"
    store.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://db/concierge", "is not supported"),
        ("not a url", "cannot be read"),
    ],
)
def test_unusable_urls_are_configuration_errors(url: str, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        Store(url)


def test_an_unreachable_postgres_is_unavailable_without_the_password() -> None:
    store = Store("postgresql://concierge:s3cret@127.0.0.1:1/concierge?connect_timeout=3")
    with pytest.raises(BackendUnavailable, match="cannot be reached") as caught:
        store.migrate()
    assert caught.value.exit_code == 6
    assert "s3cret" not in caught.value.message
    assert "CONCIERGE_DATABASE_URL" in caught.value.message


def test_threads_that_exist_before_0006_count_their_states_as_posted(store: Store) -> None:
    job = JobRef(backend="slurm", job_id="41")
    request_id = store.new_request("U0ALICE", "slack", "1 a100 for 1 hour to run python x.py")
    store.record_submission(request_id, job)
    assert store.remember_thread(request_id, "C1", "1.0001")
    start = datetime.now(UTC)
    for offset, state in enumerate((JobState.PENDING, JobState.RUNNING)):
        assert store.record_state(job, state, None, start + timedelta(seconds=offset))
    quiet = store.new_request("U0ALICE", "slack", "a thread with no states yet")
    assert store.remember_thread(quiet, "C1", None)
    with store.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0005")
    store.migrate()

    with store.engine.connect() as connection:
        threads = select(SlackThreadRow.request_id, SlackThreadRow.posted_state_id)
        rows = dict(connection.execute(threads).all())
        latest = connection.execute(select(func.max(StateRow.id))).scalar_one()
    assert rows == {request_id: latest, quiet: None}
    assert ThreadUpdates(store.engine).unposted(start - timedelta(days=1)) == []
