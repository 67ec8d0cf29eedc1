"""the comms console: roles, source settings and requests, moderation, pins, branding files

Revision ID: 0009_console
Revises: 0008_scope_versions
Create Date: 2026-12-03

- users.role ("admin" | "editor" | "staff") replaces users.is_admin; an editor with an office
  (users.office_id) edits that office only.
- sources: review (new posts wait for an editor), no_replies, no_reposts, paused.
- posts: pending (waiting for review), hidden_at / hidden_reason / hidden_by, highlighted.
- pins: a post at the top of the company feed (office_id NULL) or of one office's feed, in order,
  until an optional end.
- source_requests: what the console asks the poller to do (look up and add an account, check a
  source now), with its outcome: web nodes hold no X credentials.
- site_files: the uploaded logo and the icons made from it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_console"
down_revision = "0008_scope_versions"
branch_labels = None
depends_on = None

users = sa.table("users", sa.column("role", sa.String), sa.column("is_admin", sa.Boolean))


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("role", sa.String(length=10), nullable=False, server_default="staff"))
    conn = op.get_bind()
    conn.execute(users.update().where(users.c.is_admin == sa.true()).values(role="admin"))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("is_admin")
    with op.batch_alter_table("sources", schema=None) as batch_op:
        for name in ("review", "no_replies", "no_reposts", "paused"):
            batch_op.add_column(sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("hidden_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("hidden_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("hidden_by", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("highlighted", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "pins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.BigInteger(), nullable=False),
        sa.Column("office_id", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pinned_by", sa.String(length=50), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["office_id"], ["offices.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("pins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pins_post_id"), ["post_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pins_office_id"), ["office_id"], unique=False)
    op.create_table(
        "source_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("office_id", sa.Integer(), nullable=True),
        sa.Column("staff_only", sa.Boolean(), nullable=False),
        sa.Column("review", sa.Boolean(), nullable=False),
        sa.Column("no_replies", sa.Boolean(), nullable=False),
        sa.Column("no_reposts", sa.Boolean(), nullable=False),
        sa.Column("requested_by", sa.String(length=50), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["office_id"], ["offices.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("source_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_source_requests_state"), ["state"], unique=False)
    op.create_table(
        "site_files",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("site_files")
    with op.batch_alter_table("source_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_source_requests_state"))
    op.drop_table("source_requests")
    with op.batch_alter_table("pins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pins_office_id"))
        batch_op.drop_index(batch_op.f("ix_pins_post_id"))
    op.drop_table("pins")
    with op.batch_alter_table("posts", schema=None) as batch_op:
        for name in ("highlighted", "hidden_by", "hidden_reason", "hidden_at", "pending"):
            batch_op.drop_column(name)
    with op.batch_alter_table("sources", schema=None) as batch_op:
        for name in ("paused", "no_reposts", "no_replies", "review"):
            batch_op.drop_column(name)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false()))
    conn = op.get_bind()
    conn.execute(users.update().where(users.c.role == "admin").values(is_admin=True))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("role")
