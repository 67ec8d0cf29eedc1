"""a content version per scope instead of one for everything

Revision ID: 0008_scope_versions
Revises: 0007_threads
Create Date: 2026-12-02

scope_versions (scope, version, changed_at) replaces content_version: "site" and, per audience
and office, "public:company", "public:office:<id>", "staff:company", "staff:office:<id>"
(feedapp.content_scopes). Every row starts at the old version and its changed_at, so
Last-Modified never goes backwards and an If-Modified-Since sent before the upgrade still
gets its 304. Downgrading leaves one counter above every scope's, so no ETag minted before
the upgrade comes back for other content.
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0008_scope_versions"
down_revision = "0007_threads"
branch_labels = None
depends_on = None

offices = sa.table("offices", sa.column("id", sa.Integer))
old = sa.table("content_version", sa.column("id", sa.Integer), sa.column("version", sa.BigInteger),
               sa.column("changed_at", sa.DateTime(timezone=True)))
new = sa.table("scope_versions", sa.column("scope", sa.String), sa.column("version", sa.BigInteger),
               sa.column("changed_at", sa.DateTime(timezone=True)))


def upgrade() -> None:
    op.create_table(
        "scope_versions",
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope"),
    )
    conn = op.get_bind()
    row = conn.execute(sa.select(old.c.version, old.c.changed_at).where(old.c.id == 1)).first()
    version, changed_at = row if row else (1, _now(conn))
    # The names of feedapp.content_scopes, written out: a migration must not change when the app does.
    scopes = ["site"] + [f"{audience}:{where}" for audience in ("public", "staff")
                         for where in ["company", *(f"office:{i}" for i in conn.execute(sa.select(offices.c.id)).scalars())]]
    conn.execute(new.insert(), [{"scope": s, "version": version, "changed_at": changed_at} for s in scopes])
    op.drop_table("content_version")


def downgrade() -> None:
    table = op.create_table(
        "content_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    conn = op.get_bind()
    version, changed_at = conn.execute(sa.select(sa.func.max(new.c.version), sa.func.max(new.c.changed_at))).one()
    op.bulk_insert(table, [{"id": 1, "version": (version or 0) + 1, "changed_at": changed_at or _now(conn)}])
    op.drop_table("scope_versions")


def _now(conn) -> datetime:
    now = datetime.now(timezone.utc)
    return now.replace(tzinfo=None) if conn.dialect.name == "sqlite" else now
