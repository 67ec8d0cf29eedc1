"""What a page's posts need around them: one copy of a post reached twice, its reposters, its thread, its parent.

Reads only, like feedapp.queries (which calls these): each function is one or two
statements over the page's few posts, through the thread_id and canonical_id indexes,
so the cost grows with the page size, never with the table.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.orm import Session, aliased

from feedapp.models import Post, Source
from feedapp.visibility import posts_statement, visible

# In every scope: the company-wide sources and, on a page that names one, one office's.
EVERY_SOURCE = "every source"  # the scope of a post's own page: whichever source it came from


def in_scope(source, office_id, company: bool = True) -> ColumnElement[bool]:
    """SQL: the source feeds this scope (company-wide, plus office_id's; EVERY_SOURCE: any).

    company False: office_id's sources only (an office-only feed).
    """
    if office_id == EVERY_SOURCE:
        return true()
    if not company:
        return source.office_id == office_id
    scope = source.office_id.is_(None)
    return or_(scope, source.office_id == office_id) if office_id is not None else scope


def first_appearances(session: Session, ids: list[int], office_id, public: bool, company: bool = True) -> list[int]:
    """Of these post ids, the ones no newer row of the same post in the scope supersedes (order kept).

    A post reached twice in one scope (an office's repost of a company post, two sources reposting
    one post) is shown once, where it last appeared: the newest row with its canonical_id that this
    reader may see. Whether a row is kept depends on that row alone, so keyset pages stay exact.
    company False (an office-only feed): a post the company-wide sources carry too (the office's
    repost of a company post, or a company repost of the office's) is left to the company feed,
    so the two feeds an OPML import subscribes to never hold the same post.
    """
    if not ids:
        return []
    newer, source = aliased(Post), aliased(Source)
    superseding = select(newer.id).join(source, source.id == newer.source_id).where(
        newer.canonical_id == Post.canonical_id, newer.id > Post.id, in_scope(source, office_id, company))
    condition = visible(public, newer)
    if condition is not None:
        superseding = superseding.where(condition)
    stmt = select(Post.id).where(Post.id.in_(ids), ~superseding.exists())
    if not company:
        other, company_source = aliased(Post), aliased(Source)
        in_company = select(other.id).join(company_source, company_source.id == other.source_id).where(
            other.canonical_id == Post.canonical_id, company_source.office_id.is_(None))
        condition = visible(public, other)
        if condition is not None:
            in_company = in_company.where(condition)
        stmt = stmt.where(~in_company.exists())
    kept = set(session.scalars(stmt))
    return [post_id for post_id in ids if post_id in kept]


def add_context(session: Session, posts: list[Post], office_id, public: bool, company: bool = True) -> None:
    """Set reposted_by, the thread attributes and reply_parent on posts (see models.Post)."""
    if not posts:
        return
    _add_reposters(session, posts, office_id, public, company)
    others = _add_threads(session, posts, public)
    _add_parents(session, posts, others, public)
    _mark_removed_quotes(session, [*posts, *others.values()])


def _mark_removed_quotes(session: Session, posts: list[Post]) -> None:
    """A quote of a post editors hid shows as unavailable, to staff too: hiding takes its text off every surface."""
    quoted = {int(p.quoted["id"]) for p in posts if p.quoted and str(p.quoted.get("id") or "").isdigit()}
    if not quoted:
        return
    stmt = select(Post.canonical_id).where(Post.canonical_id.in_(quoted), Post.hidden_at.is_not(None))
    removed = set(session.scalars(stmt))
    for post in posts:
        if post.quoted and str(post.quoted.get("id") or "").isdigit() and int(post.quoted["id"]) in removed:
            post.quote_removed = True


def _add_reposters(session: Session, posts: list[Post], office_id, public: bool, company: bool = True) -> None:
    """Each repost kept on the page names every in-scope source that reposted the post, newest first."""
    reposts = {post.canonical_id for post in posts if post.repost_of_id}
    if not reposts:
        return
    stmt = (select(Post.canonical_id, Source.username).join(Source, Source.id == Post.source_id)
            .where(Post.canonical_id.in_(reposts), Post.repost_of_id.is_not(None), in_scope(Source, office_id, company))
            .order_by(Post.id.desc()))
    condition = visible(public)
    if condition is not None:
        stmt = stmt.where(condition)
    names: dict[int, list[str]] = defaultdict(list)
    for canonical_id, username in session.execute(stmt):
        if username not in names[canonical_id]:
            names[canonical_id].append(username)
    for post in posts:
        if post.repost_of_id:
            post.reposted_by = tuple(names.get(post.canonical_id) or [post.source.username])


def _add_threads(session: Session, posts: list[Post], public: bool) -> dict[int, Post]:
    """Number the threads the page touches; return the posts read besides the page's, by id.

    A thread is its first post (thread_id NULL) and the parts naming it. The first post counts
    even when it is not stored (a part's parent older than the backfill), since it exists on X.
    """
    on_page = {post.id: post for post in posts}
    threads = {post.thread_id or post.id for post in posts}
    stmt = select(Post.id, Post.thread_id).where(Post.thread_id.in_(threads)).order_by(Post.id)
    condition = visible(public)
    if condition is not None:
        stmt = stmt.where(condition)
    parts: dict[int, list[int]] = defaultdict(list)
    for part_id, thread_id in session.execute(stmt):
        parts[thread_id].append(part_id)
    if not parts:
        return {}
    wanted = {part_id for ids in parts.values() for part_id in ids} | set(parts)
    others = _read(session, wanted - on_page.keys(), public)
    found = {**others, **on_page}
    for thread_id, part_ids in parts.items():
        total = 1 + len(part_ids)
        head = found.get(thread_id)
        members = [found[part_id] for part_id in part_ids if part_id in found]
        if head is not None:
            head.thread_position, head.thread_total = 1, total
            head.thread_parts = tuple(members)
        for position, part_id in enumerate(part_ids, start=2):
            part = found.get(part_id)
            if part is not None:
                part.thread_position, part.thread_total, part.thread_head = position, total, head
    return others


def _add_parents(session: Session, posts: list[Post], known: dict[int, Post], public: bool) -> None:
    """A reply to another account gets its parent post, when stored and visible to this reader."""
    replies = [post for post in posts if post.reply_to_id and post.thread_id is None and post.reply_to_id.isdigit()]
    if not replies:
        return
    wanted = {int(post.reply_to_id) for post in replies}
    found = {post.id: post for post in posts} | known
    found |= _read(session, wanted - found.keys(), public)
    for post in replies:
        post.reply_parent = found.get(int(post.reply_to_id))


def _read(session: Session, ids: set[int], public: bool) -> dict[int, Post]:
    """The posts with these ids that the reader may see, by id."""
    if not ids:
        return {}
    return {post.id: post for post in session.scalars(posts_statement(public), {"ids": sorted(ids)})}
