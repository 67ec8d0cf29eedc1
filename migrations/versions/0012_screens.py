"""screens: break-room screens (signage players) with their hashed token, scope and last fetch

Revision ID: 0012_screens
Revises: 0011_reach
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_screens"
down_revision = "0011_reach"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "screens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("office_id", sa.Integer(), nullable=True),
        sa.Column("staff_only", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=50), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["office_id"], ["offices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("screens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_screens_office_id"), ["office_id"], unique=False)


def downgrade() -> None:
    op.drop_table("screens")
