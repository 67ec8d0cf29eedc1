"""sign-ins (renamed from login_sessions, with the browser's remember-me choice) and throttle counts

Revision ID: 0004_auth
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa


revision = "0004_auth"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A staff member's sign-in record is not a "session" beside the database session: rename it.
    with op.batch_alter_table("login_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_login_sessions_user_id")
    op.rename_table("login_sessions", "sign_ins")
    _rename_constraints("login_sessions", "sign_ins")
    with op.batch_alter_table("sign_ins", schema=None) as batch_op:
        batch_op.add_column(sa.Column("remember", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index("ix_sign_ins_user_id", ["user_id"], unique=False)

    op.create_table(
        "throttle_counts",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("throttle_counts", schema=None) as batch_op:
        batch_op.create_index("ix_throttle_counts_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("throttle_counts", schema=None) as batch_op:
        batch_op.drop_index("ix_throttle_counts_expires_at")
    op.drop_table("throttle_counts")

    with op.batch_alter_table("sign_ins", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_ins_user_id")
        batch_op.drop_column("remember")
    op.rename_table("sign_ins", "login_sessions")
    _rename_constraints("sign_ins", "login_sessions")
    with op.batch_alter_table("login_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_login_sessions_user_id", ["user_id"], unique=False)


def _rename_constraints(old: str, new: str) -> None:
    # PostgreSQL names constraints after the table and keeps the old names on a rename; SQLite has no such names.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {new} RENAME CONSTRAINT {old}_pkey TO {new}_pkey")
        op.execute(f"ALTER TABLE {new} RENAME CONSTRAINT {old}_user_id_fkey TO {new}_user_id_fkey")
