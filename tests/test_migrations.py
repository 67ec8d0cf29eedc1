"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from feedapp.db import normalize_url
from feedapp.migrate import current_revision
from feedapp.models import Base


def test_migrated_schema_matches_the_models(db_url):
    engine = create_engine(normalize_url(db_url))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []
    assert current_revision(db_url) == "0004_visibility"


def test_sqlite_readers_are_not_blocked_by_a_running_write(tmp_path):
    """WAL mode: the web app reads while the poller holds a write transaction."""
    from sqlalchemy import text

    from feedapp.db import make_engine
    from feedapp.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'wal.db'}"
    upgrade(url)
    writer, reader = make_engine(url), make_engine(url)
    with writer.connect() as w:
        assert w.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        w.execute(text("BEGIN IMMEDIATE"))
        w.execute(text("INSERT INTO offices (slug, name, created_at) VALUES ('a', 'A', '2026-01-01')"))
        with reader.connect() as r:
            assert r.execute(text("SELECT count(*) FROM offices")).scalar() == 0  # no wait, no lock error
        w.execute(text("COMMIT"))
    writer.dispose()
    reader.dispose()
