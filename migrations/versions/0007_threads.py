"""threads, one copy per post, office languages and the installation's identity

Revision ID: 0007_threads
Revises: 0006_visibility
Create Date: 2026-12-02

- posts.thread_id: for an account's reply to itself, the id of its thread's first post (NULL otherwise).
- posts.canonical_id: the post a row shows (a repost's original, else the row itself), so one
  post reached twice in one scope is shown once.
- offices.language: the language of an office's feeds and labels (NULL: the site's default).
- seen_accounts.checked_at: when the poller last looked the account up itself (accounts nobody
  follows are re-read once per profile refresh, so one that turned protected is hidden even if
  no page ever carries it again).
- site_settings: installation-wide values; installation_id (a random UUID, minted here once) names
  this installation in feed ids, so they never depend on the host a request arrived with.

Backfills both post columns from what is stored, with the rule store_posts follows.
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0007_threads"
down_revision = "0006_visibility"
branch_labels = None
depends_on = None

CHUNK = 1000

posts = sa.table(
    "posts",
    sa.column("id", sa.BigInteger),
    sa.column("author_id", sa.String),
    sa.column("repost_of_id", sa.String),
    sa.column("reply_to_id", sa.String),
    sa.column("reply_to_user_id", sa.String),
    sa.column("thread_id", sa.BigInteger),
)
settings = sa.table("site_settings", sa.column("key", sa.String), sa.column("value", sa.Text))


def upgrade() -> None:
    op.create_table(
        "site_settings",
        sa.Column("key", sa.String(length=50), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("offices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=16), nullable=True))
    with op.batch_alter_table("seen_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("thread_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("canonical_id", sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f("ix_posts_thread_id"), ["thread_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_posts_canonical_id"), ["canonical_id"], unique=False)
    conn = op.get_bind()
    conn.execute(settings.insert().values(key="installation_id", value=str(uuid.uuid4())))
    # X ids are decimal digits, so the cast is exact on both engines.
    conn.execute(sa.text("UPDATE posts SET canonical_id = COALESCE(CAST(repost_of_id AS BIGINT), id)"))
    _backfill_threads(conn)


def _backfill_threads(conn) -> None:
    # Replies to oneself, oldest first: a part's parent is older, so its thread is known before it.
    stmt = (sa.select(posts.c.id, posts.c.reply_to_id)
            .where(posts.c.repost_of_id.is_(None), posts.c.reply_to_id.is_not(None),
                   posts.c.reply_to_user_id == posts.c.author_id)
            .order_by(posts.c.id))
    head_of: dict[int, int] = {}
    for post_id, parent in conn.execute(stmt).all():
        if parent.isdigit():
            head_of[post_id] = head_of.get(int(parent), int(parent))
    rows = [{"pid": post_id, "head": head} for post_id, head in head_of.items()]
    update = posts.update().where(posts.c.id == sa.bindparam("pid")).values(thread_id=sa.bindparam("head"))
    for start in range(0, len(rows), CHUNK):
        conn.execute(update, rows[start:start + CHUNK])


def downgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_posts_canonical_id"))
        batch_op.drop_index(batch_op.f("ix_posts_thread_id"))
        batch_op.drop_column("canonical_id")
        batch_op.drop_column("thread_id")
    with op.batch_alter_table("seen_accounts", schema=None) as batch_op:
        batch_op.drop_column("checked_at")
    with op.batch_alter_table("offices", schema=None) as batch_op:
        batch_op.drop_column("language")
    op.drop_table("site_settings")
