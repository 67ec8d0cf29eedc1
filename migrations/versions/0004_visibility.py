"""visibility decided when reading: the quoted author's id on posts, and the X accounts seen

Revision ID: 0004_visibility
Revises: 0003
Create Date: 2026-11-28

Backfills both from the JSON already stored: posts.quoted_author_id from quoted.author.id, and
x_accounts from every quoted author and every repost's original author (its user object in the
post's raw includes), the newest fetch winning, as store_posts would have kept them.
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0004_visibility"
down_revision = "0003"
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
        "x_accounts",
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


def _backfill(conn) -> None:
    owners = dict(conn.execute(sa.select(sources.c.id, sources.c.x_id)).all())
    accounts: dict[str, dict] = {}
    quoted_by: list[dict] = []
    stmt = (sa.select(posts.c.id, posts.c.source_id, posts.c.author_id, posts.c.author_username,
                      posts.c.author_name, posts.c.repost_of_id, posts.c.quoted, posts.c.raw)
            .where(sa.or_(posts.c.quoted.is_not(None), posts.c.repost_of_id.is_not(None)))
            .order_by(posts.c.fetched_at, posts.c.id))  # oldest fetch first: the newest one wins below
    for row in conn.execute(stmt.execution_options(stream_results=True, yield_per=CHUNK)):
        users = {u.get("id"): u for u in ((row.raw or {}).get("includes") or {}).get("users") or []
                 if isinstance(u, dict)}
        seen = []
        quoted = row.quoted if isinstance(row.quoted, dict) else None
        if quoted and isinstance(quoted.get("author"), dict) and quoted["author"].get("id"):
            author = quoted["author"]
            quoted_by.append({"pid": row.id, "qa_id": str(author["id"])})
            seen.append((str(author["id"]), author.get("username") or "", author.get("name"),
                         author.get("protected") is True))
        if row.repost_of_id and row.author_id:
            found = users.get(row.author_id) or {}
            seen.append((row.author_id, row.author_username or "", row.author_name,
                         found.get("protected") is True))
        for account_id, username, name, protected in seen:
            if name and account_id != owners.get(row.source_id):  # store_posts skips stubs and the source itself
                accounts[account_id] = {"id": account_id, "username": username[:50], "protected": protected}
    for start in range(0, len(quoted_by), CHUNK):
        conn.execute(posts.update().where(posts.c.id == sa.bindparam("pid"))
                     .values(quoted_author_id=sa.bindparam("qa_id")), quoted_by[start:start + CHUNK])
    now = datetime.now(timezone.utc)
    if conn.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # models.UTCDateTime stores naive UTC on SQLite
    rows = [{**account, "updated_at": now} for account in accounts.values()]
    table = sa.table("x_accounts", sa.column("id"), sa.column("username"), sa.column("protected"),
                     sa.column("updated_at"))
    for start in range(0, len(rows), CHUNK):
        conn.execute(table.insert(), rows[start:start + CHUNK])


def downgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_posts_quoted_author_id"))
        batch_op.drop_column("quoted_author_id")
    op.drop_table("x_accounts")
