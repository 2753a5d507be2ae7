"""Fixtures shared by every test: a real database, SQLite or PostgreSQL, fresh for each test.

Every test that takes `database_url` (or `store`) runs twice, once per database. PostgreSQL is
the one at CONCIERGE_TEST_POSTGRES_URL (default: the local server with trust auth); each test
gets its own database, created and dropped around it (about 0.1 s), so tests never see each
other's rows. The migrations run once per session, into a template: a test that takes `store`
(directly or through another fixture) starts from a copy of it (SQLite: the file copied;
PostgreSQL: CREATE DATABASE … TEMPLATE), while a test that takes only `database_url`, as the
migration tests do, starts from nothing. Without a reachable server those tests skip, saying why;
with CONCIERGE_REQUIRE_POSTGRES=1 (CI) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL, make_url

from bot.store import Store

# The real local Slurm (`slurm` fixture), for integration and end-to-end tests alike.
pytest_plugins = ["tests.slurm_cluster", "tests.fakes.slack_app"]

POSTGRES_URL_VARIABLE = "CONCIERGE_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _libpq(url: URL) -> str:
    """psycopg's own connection string for a SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_server() -> URL | str:
    """The maintenance URL when the server answers, else why it does not (as text)."""
    url = make_url(os.environ.get(POSTGRES_URL_VARIABLE, DEFAULT_POSTGRES_URL))
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3, autocommit=True) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as e:
        where = url.render_as_string(hide_password=True)
        return f"PostgreSQL at {where} ({POSTGRES_URL_VARIABLE}) is unreachable: {e}"
    return url


def _migrated(url: str) -> None:
    store = Store(url)
    try:
        store.migrate()
    finally:
        store.close()


def _wants_store(request: pytest.FixtureRequest) -> bool:
    """Whether the test's database will be migrated anyway (it takes `store`), so may be a copy."""
    return "store" in request.fixturenames


@pytest.fixture(scope="session")
def postgres_template(postgres_server: URL) -> Iterator[str]:
    """A database migrated once for the session (its own name: other sessions share the server)."""
    name = f"concierge_template_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(postgres_server), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        _migrated(postgres_server.set(database=name).render_as_string(hide_password=False))
        yield name
    finally:
        with psycopg.connect(_libpq(postgres_server), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once for the session (closed, so the whole of it is in the file)."""
    path = tmp_path_factory.mktemp("template") / "concierge.db"
    _migrated(f"sqlite:///{path}")
    return path


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, postgres_server: URL | str) -> Iterator[str]:
    """A new PostgreSQL database for this test (empty, or migrated for `store`), dropped afterwards."""
    if isinstance(postgres_server, str):
        if os.environ.get("CONCIERGE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{postgres_server}, and CONCIERGE_REQUIRE_POSTGRES=1 requires it")
        pytest.skip(postgres_server)
    name = f"concierge_test_{uuid.uuid4().hex[:16]}"
    template = f' TEMPLATE "{request.getfixturevalue("postgres_template")}"' if _wants_store(request) else ""
    with psycopg.connect(_libpq(postgres_server), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"{template}')
    try:
        yield postgres_server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(postgres_server), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    # A subdirectory that does not exist yet: the store must create it, as it does in the data dir.
    path = tmp_path / "data" / "concierge.db"
    if _wants_store(request):
        path.parent.mkdir()
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A store on the test's database, a copy of the session's migrated template."""
    migrated = Store(database_url)
    try:
        yield migrated
    finally:
        migrated.close()
