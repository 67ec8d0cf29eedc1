"""rate windows: X rate limits per credential and endpoint, shared by every process

Revision ID: 0005_rate_windows
Revises: 0004_auth
"""

from alembic import op
import sqlalchemy as sa


revision = "0005_rate_windows"
down_revision = "0004_auth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_windows",
        sa.Column("credential", sa.String(length=40), nullable=False),
        sa.Column("endpoint", sa.String(length=100), nullable=False),
        sa.Column("reset_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=True),
        sa.Column("limit", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("credential", "endpoint"),
    )


def downgrade() -> None:
    op.drop_table("rate_windows")
