"""Alembic's environment: migrations run on the connection `bot.store.database` hands over.

Run by `Store.migrate()` (alembic_config(connection)); the connection is already inside a
transaction, so every revision of one upgrade commits together, or not at all. Without a
connection (a developer running alembic by hand) the URL comes from `sqlalchemy.url`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from bot.store.database import create_store_engine, supported_url
from bot.store.tables import Base


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        transactional_ddl=True,
        # APScheduler's job store keeps its own table in this database; it is not ours to migrate.
        include_name=lambda name, type_, parent: not (type_ == "table" and name == "apscheduler_jobs"),
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url (alembic -x or the config) to the database to migrate")
    engine = create_store_engine(supported_url(url))
    with engine.begin() as own_connection:
        run_migrations(own_connection)


main()
