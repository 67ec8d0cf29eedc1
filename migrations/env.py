"""Alembic environment: the URL comes from feedapp's config, never from a file."""

from alembic import context

from feedapp.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from feedapp.db import make_engine

        engine = make_engine(config.get_main_option("sqlalchemy.url"))
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connection)


def _run(connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds a table to alter it (copy, DROP, rename). With foreign keys on, SQLite's
        # DROP TABLE deletes the rows first, and ON DELETE CASCADE would empty every child table
        # (dropping sources would delete every post). The pragma works only outside a transaction.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    # Batch mode lets later migrations ALTER tables on SQLite too.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:  # raising here rolls the whole upgrade back
                raise RuntimeError(f"migration left rows pointing at nothing: {broken[:5]}")
    if sqlite:
        if connection.in_transaction():
            connection.commit()
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `flask --app feedapp db upgrade`")
run_migrations_online()
