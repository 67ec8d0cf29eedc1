"""stream_status: how X's filtered stream fares, for `sources list` and the console

Revision ID: 0013_stream
Revises: 0012_screens
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_stream"
down_revision = "0012_screens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_status",
        sa.Column("name", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("streamed_sources", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("stream_status")
