"""store_posts: the only code that writes posts.

A post is unique by its X id in the schema (primary key), and the insert
skips ids already stored, so a page read twice stores nothing twice. Every
user object a page carries updates what we know of that account (seen_accounts),
which is how an account nobody follows turning protected reaches the readers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import date

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from feedapp.content_scopes import SITE, posts_scope
from feedapp.models import ApiRead, Media, Post, ScopeVersion, SeenAccount, Source, utcnow
from feedapp.xapi.types import XMedia, XPost, XUser


def store_posts(session: Session, source: Source, posts: list[XPost]) -> list[int]:
    """Insert posts of source that are not stored yet; return the new ids (caller commits)."""
    if not posts:
        return []
    now = utcnow()
    rows = {int(p.id): _post_row(source, p, now) for p in posts}  # a page never repeats an id, but be sure
    heads = _thread_heads(session, rows)
    for post_id, row in rows.items():
        row["thread_id"] = heads.get(post_id)
    # Rows as parameters of one cached statement (SQLAlchemy batches them into multi-row INSERTs):
    # rows inlined with .values() made every page compile its own SQL, the poller's main CPU cost.
    posts_table = Post.__table__
    stmt = _insert_ignore(session, posts_table, ["id"]).returning(posts_table.c.id)
    new_ids = set(session.execute(stmt, list(rows.values())).scalars())
    _join_threads(session, {post_id: heads[post_id] for post_id in new_ids if post_id in heads})
    _inherit_hiding(session, {rows[post_id]["canonical_id"] for post_id in new_ids}, new_ids)
    turned = _record_accounts(session, source, posts, now)
    # New posts change their source's scope only; an account turning protected or public may hide or
    # show reposts and quotes of it anywhere.
    bump_content_version(session, ([posts_scope(source.office_id, source.is_staff_only)] if new_ids else [])
                         + ([SITE] if turned else []))
    media_rows = [
        _media_row(int(p.id), position, m)
        for p in posts
        if int(p.id) in new_ids
        for position, m in enumerate(p.media)
    ]
    if media_rows:
        session.execute(insert(Media.__table__), media_rows)
    return sorted(new_ids, reverse=True)


def _inherit_hiding(session: Session, canonical_ids: set[int], new_ids: set[int]) -> None:
    """A new copy of a hidden post (a repost of it arriving later) is hidden too: hiding is of the post."""
    if not canonical_ids:
        return
    hidden = session.execute(
        select(Post.canonical_id, Post.hidden_at, Post.hidden_reason, Post.hidden_by)
        .where(Post.canonical_id.in_(canonical_ids), Post.hidden_at.is_not(None), Post.id.not_in(new_ids))).all()
    for canonical_id, hidden_at, reason, by in {row[0]: row for row in hidden}.values():
        session.execute(update(Post).where(Post.id.in_(new_ids), Post.canonical_id == canonical_id)
                        .values(hidden_at=hidden_at, hidden_reason=reason, hidden_by=by))


def is_self_reply(row: dict) -> bool:
    """An account's reply to itself (a thread part): not a repost, replying to its own author."""
    return (not row["repost_of_id"] and bool(row["reply_to_id"]) and str(row["reply_to_id"]).isdigit()
            and bool(row["author_id"]) and row["reply_to_user_id"] == row["author_id"])


def _thread_heads(session: Session, rows: dict[int, dict]) -> dict[int, int]:
    """The thread's first post of each self-reply among rows: its parent's thread, else the parent.

    A parent is looked for in the same page first, then among stored posts. When it is neither
    (older than what was fetched, or on a later page of a catch-up), the parent stands in as the
    first post; _join_threads moves such parts under the real first post once the parent arrives.
    """
    parents = {post_id: int(row["reply_to_id"]) for post_id, row in rows.items() if is_self_reply(row)}
    if not parents:
        return {}
    stored = dict(session.execute(select(Post.id, Post.thread_id).where(
        Post.id.in_(set(parents.values()) - rows.keys()))).all())
    heads: dict[int, int] = {}
    for post_id in sorted(parents):  # oldest first: a parent in this page is resolved before its reply
        parent = parents[post_id]
        known = heads.get(parent) if parent in rows else stored.get(parent)
        heads[post_id] = known or parent
    return heads


def _join_threads(session: Session, heads: dict[int, int]) -> None:
    """Parts stored before their parent arrived named the parent as first post: point them at the real one."""
    if heads:
        table = Post.__table__
        stmt = update(table).where(table.c.thread_id == bindparam("part")).values(thread_id=bindparam("head"))
        session.execute(stmt, [{"part": part, "head": head} for part, head in sorted(heads.items())])


def _record_accounts(session: Session, source: Source, posts: list[XPost], now) -> bool:
    """Keep what X just said of each account these posts touch; True when one turned protected or public.

    The authors (a repost's original author) and quoted authors X sent as user objects are kept;
    stubs (no user object in the includes, so no name) and the source itself (its row is the
    truth) are not. Within one page an account is one object; should two disagree, protected wins.
    """
    seen: dict[str, XUser] = {}
    for post in posts:
        for user in (post.author, post.quoted.author if post.quoted else None):
            if user is None or not user.id or not user.name or user.id == source.x_id:
                continue
            if user.id not in seen or user.protected:
                seen[user.id] = user
    if not seen:
        return False
    stmt = select(SeenAccount.id, SeenAccount.protected, SeenAccount.username)
    stmt = stmt.where(SeenAccount.id.in_(list(seen)))
    known = {account_id: (protected, username) for account_id, protected, username in session.execute(stmt)}
    rows = [{"id": user.id, "username": _text(user.username)[:50], "protected": user.protected, "updated_at": now}
            for _, user in sorted(seen.items())  # one lock order for concurrent poll threads (PostgreSQL)
            if known.get(user.id) != (user.protected, user.username)]
    if not rows:
        return False
    stmt = _insert(session, SeenAccount)
    session.execute(stmt.on_conflict_do_update(index_elements=["id"], set_={
        "username": stmt.excluded.username, "protected": stmt.excluded.protected,
        "updated_at": stmt.excluded.updated_at}), rows)
    # A new account counts when protected: posts stored before it was tracked may show it.
    return any(row["protected"] != known.get(row["id"], (False,))[0] for row in rows)


def bump_content_version(session: Session, scopes: Iterable[str] = (SITE,)) -> None:
    """Mark that what readers of these scopes see has changed: their ETags change, their cached renders expire.

    Scopes are named by feedapp.content_scopes; SITE (the default, when a write's reach
    is not known) changes every response. A scope without a row yet gets one.
    """
    now = utcnow()
    # Sorted: concurrent writers lock the rows in one order (PostgreSQL), so two never deadlock.
    rows = [{"scope": scope, "version": 1, "changed_at": now} for scope in sorted(set(scopes))]
    if not rows:
        return
    table = ScopeVersion.__table__
    stmt = _insert(session, table)
    session.execute(stmt.on_conflict_do_update(index_elements=["scope"], set_={
        "version": table.c.version + 1, "changed_at": stmt.excluded.changed_at}), rows)


def record_reads(session: Session, kind: str, object_ids: list[str], day: date | None = None) -> int:
    """Remember objects the API returned today; return how many are newly billable today."""
    if not object_ids:
        return 0
    day = day or utcnow().date()
    # Sorted: one lock order for concurrent poll threads reading overlapping objects (PostgreSQL).
    rows = [{"day": day, "kind": kind, "object_id": oid} for oid in sorted(set(object_ids))]
    reads = ApiRead.__table__
    stmt = _insert_ignore(session, reads, ["day", "kind", "object_id"]).returning(reads.c.object_id)
    return len(session.execute(stmt, rows).all())


def _insert_ignore(session: Session, table, keys: list[str]):
    """INSERT … ON CONFLICT DO NOTHING on SQLite and PostgreSQL alike."""
    return _insert(session, table).on_conflict_do_nothing(index_elements=keys)


def _insert(session: Session, table):
    """The dialect's INSERT, which has ON CONFLICT clauses (SQLite and PostgreSQL)."""
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def _text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; X text never needs it."""
    return value.replace("\x00", "") if value else value


def _post_row(source: Source, p: XPost, now) -> dict:
    author = p.author
    if not author.username and (not author.id or author.id == source.x_id):
        # The poller does not expand the timeline owner (a billed user read): it is the source.
        author = author.__class__(id=source.x_id, username=source.username, name=source.display_name,
                                  avatar_url=source.avatar_url, protected=source.protected)
    return {
        "id": int(p.id),
        "source_id": source.id,
        "created_at": p.created_at,
        "author_id": author.id,
        "author_username": _text(author.username),
        "author_name": _text(author.name),
        "author_avatar": author.avatar_url,
        "text": _text(p.text),
        "links": [asdict(link) for link in p.links],
        "lang": p.lang,
        "possibly_sensitive": p.possibly_sensitive,
        "conversation_id": p.conversation_id,
        "repost_of_id": p.repost_of_id,
        # X ids are decimal digits; anything else cannot name a stored post.
        "canonical_id": int(p.repost_of_id) if (p.repost_of_id or "").isdigit() else int(p.id),
        "original_created_at": p.original_created_at,
        "reply_to_id": p.reply_to_id,
        "reply_to_user_id": p.reply_to_user_id,
        "reply_to_username": p.reply_to_username,
        "quoted": _quoted_json(p.quoted),
        "quoted_author_id": (p.quoted.author.id or None) if p.quoted else None,
        "raw": p.raw,
        "fetched_at": now,
        "pending": source.review,  # a source under review: its posts wait for an editor (feedapp.moderation)
    }


def _quoted_json(quoted) -> dict | None:
    if quoted is None:
        return None
    data = asdict(quoted)
    data["created_at"] = quoted.created_at.isoformat() if quoted.created_at else None
    return data


def _media_row(post_id: int, position: int, m: XMedia) -> dict:
    return {
        "post_id": post_id,
        "position": position,
        "media_key": m.key,
        "type": m.type,
        "url": m.url,
        "preview_url": m.preview_url,
        "width": m.width,
        "height": m.height,
        "alt_text": _text(m.alt_text),
        "duration_ms": m.duration_ms,
        "variants": list(m.variants),
    }
