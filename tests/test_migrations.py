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
    assert current_revision(db_url) == "0001"
