"""visibility decided when reading: the quoted author's id on posts, and the X accounts seen

Revision ID: 0006_visibility
Revises: 0005_rate_windows
Create Date: 2026-11-28

Backfills both from the JSON already stored: posts.quoted_author_id from quoted.author.id (in SQL),
and seen_accounts from every quoted author and every repost's original author (its user object in
the post's raw includes), the newest fetch winning, as store_posts would have kept them. Only
quotes and reposts are read back, not every post.
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0006_visibility"
down_revision = "0005_rate_windows"
branch_labels = None
depends_on = None

CHUNK = 1000

posts = sa.table(
    "posts",
    sa.column("id", sa.BigInteger),
    sa.column("source_id", sa.Integer),
    sa.column("author_id", sa.String),
    sa.column("author_username", sa.String),
    sa.column("author_name", sa.String),
    sa.column("repost_of_id", sa.String),
    sa.column("quoted", sa.JSON),
    sa.column("quoted_author_id", sa.String),
    sa.column("raw", sa.JSON),
    sa.column("fetched_at", sa.DateTime),
)
sources = sa.table("sources", sa.column("id", sa.Integer), sa.column("x_id", sa.String))


def upgrade() -> None:
    op.create_table(
        "seen_accounts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("protected", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quoted_author_id", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_posts_quoted_author_id"), ["quoted_author_id"], unique=False)
    _backfill(op.get_bind())


# The quoted author's id, straight from the JSON (a post without a quote holds JSON null there).
QUOTED_AUTHOR_ID = {
    "sqlite": "UPDATE posts SET quoted_author_id = NULLIF(json_extract(quoted, '$.author.id'), '') "
              "WHERE json_type(quoted) = 'object'",
    "postgresql": "UPDATE posts SET quoted_author_id = NULLIF(quoted -> 'author' ->> 'id', '') "
                  "WHERE json_typeof(quoted) = 'object'",
}


def _backfill(conn) -> None:
    conn.execute(sa.text(QUOTED_AUTHOR_ID[conn.dialect.name]))
    owners = dict(conn.execute(sa.select(sources.c.id, sources.c.x_id)).all())
    accounts: dict[str, dict] = {}
    stmt = (sa.select(posts.c.source_id, posts.c.author_id, posts.c.author_username, posts.c.author_name,
                      posts.c.repost_of_id, posts.c.quoted, posts.c.raw)
            .where(sa.or_(posts.c.quoted_author_id.is_not(None), posts.c.repost_of_id.is_not(None)))
            .order_by(posts.c.fetched_at, posts.c.id))  # oldest fetch first: the newest one wins below
    for row in conn.execute(stmt.execution_options(stream_results=True, yield_per=CHUNK)):
        seen = []
        quoted = row.quoted if isinstance(row.quoted, dict) else {}
        author = quoted.get("author") if isinstance(quoted.get("author"), dict) else {}
        if author.get("id"):
            seen.append((str(author["id"]), author.get("username") or "", author.get("name"),
                         author.get("protected") is True))
        if row.repost_of_id and row.author_id:
            includes = (row.raw or {}).get("includes") or {}
            users = {u.get("id"): u for u in includes.get("users") or [] if isinstance(u, dict)}
            seen.append((row.author_id, row.author_username or "", row.author_name,
                         (users.get(row.author_id) or {}).get("protected") is True))
        for account_id, username, name, protected in seen:
            if name and account_id != owners.get(row.source_id):  # store_posts skips stubs and the source itself
                accounts[account_id] = {"id": account_id, "username": username[:50], "protected": protected}
    now = datetime.now(timezone.utc)
    if conn.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # models.UTCDateTime stores naive UTC on SQLite
    rows = [{**account, "updated_at": now} for account in accounts.values()]
    table = sa.table("seen_accounts", sa.column("id"), sa.column("username"), sa.column("protected"),
                     sa.column("updated_at"))
    for start in range(0, len(rows), CHUNK):
        conn.execute(table.insert(), rows[start:start + CHUNK])


def downgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_posts_quoted_author_id"))
        batch_op.drop_column("quoted_author_id")
    op.drop_table("seen_accounts")
