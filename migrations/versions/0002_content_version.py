"""content version counter for HTTP caching

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "content_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    now = datetime.now(timezone.utc)
    op.bulk_insert(table, [{"id": 1, "version": 1, "changed_at": now.replace(tzinfo=None) if op.get_bind().dialect.name == "sqlite" else now}])


def downgrade() -> None:
    op.drop_table("content_version")
