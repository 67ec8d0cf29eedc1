"""Moderation, pins and highlights: what editors do to posts, for the console and the CLI alike.

Each function takes the Actor doing it, checks the role and office scope for every row it
touches (feedapp.roles), writes an audit row and bumps the content scopes whose readers see the
change, so pages, every feed, post pages and the 304 fast path drop or show the post at once.
Nothing here commits; callers do. No Flask.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, selectinload

from feedapp.accounts import audit
from feedapp.content_scopes import posts_scope
from feedapp.ingest.store import bump_content_version
from feedapp.models import Office, Pin, Post, Source, utcnow
from feedapp.push.announce import cancel_post_pushes
from feedapp.roles import Actor, Forbidden

# Bumped by every hide and unhide: a reader's service worker that saw another value drops the
# hidden posts from its saved pages (see templates/sw.js and /removed.json).
REMOVALS = "removals"
REASON_MAX = 300
MAX_POST_ID = 2**63 - 1  # posts.id is a BIGINT


class ModerationError(ValueError):
    """An action that cannot be done as asked; code says which case (the console words it), str() for the CLI."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code  # unknown | not_hidden | not_pending | not_pinned | past | unpublished | wrong_feed


@dataclass(frozen=True)
class Outcome:
    """What an action changed: the rows (ids) and a line for the person who did it."""

    post_ids: tuple[int, ...]
    message: str


def get_post(session: Session, post_id: int) -> Post:
    """The stored post with this X id (any state), or ModerationError."""
    if not 0 < post_id <= MAX_POST_ID:  # past BIGINT the database refuses the number itself (a traceback)
        raise ModerationError("unknown", f"no stored post {post_id}")
    post = session.get(Post, post_id, options=[selectinload(Post.source)])
    if post is None:
        raise ModerationError("unknown", f"no stored post {post_id}")
    return post


def _copies(session: Session, post: Post) -> list[Post]:
    """Every stored row showing this post (a repost's original and its other reposts), with their sources."""
    stmt = select(Post).where(Post.canonical_id == post.canonical_id).options(selectinload(Post.source))
    return list(session.scalars(stmt.order_by(Post.id)))


def _scopes(posts: list[Post]) -> set[str]:
    return {posts_scope(p.source.office_id, p.source.is_staff_only) for p in posts}


def hide(session: Session, actor: Actor, post_id: int, reason: str = "") -> Outcome:
    """Take a post off every surface: each row showing it that the actor may edit (a repost by another
    office stays, being theirs). Later copies of it arrive hidden (store_posts)."""
    post = get_post(session, post_id)
    reason = " ".join((reason or "").split())[:REASON_MAX]
    rows = [p for p in _copies(session, post) if actor.may_edit(p.source.office_id)]
    if not rows:
        raise Forbidden("outside your office")
    now = utcnow()
    ids = [p.id for p in rows]
    session.execute(update(Post).where(Post.id.in_(ids))
                    .values(hidden_at=now, hidden_reason=reason or None, hidden_by=actor.name))
    for row_id in ids:  # a must-read push still in the outbox goes nowhere (feedapp.push.announce)
        cancel_post_pushes(session, row_id)
    bump_content_version(session, _scopes(rows) | {REMOVALS})
    audit(session, actor.name, "hide_post", str(post.id), reason)
    return Outcome(tuple(ids), f"post {post.id} hidden")


def unhide(session: Session, actor: Actor, post_id: int) -> Outcome:
    """Put a hidden post back on every surface (the rows of it the actor may edit)."""
    post = get_post(session, post_id)
    rows = [p for p in _copies(session, post) if p.hidden_at is not None and actor.may_edit(p.source.office_id)]
    if not rows:
        if post.hidden_at is None:
            raise ModerationError("not_hidden", f"post {post.id} is not hidden")
        raise Forbidden("outside your office")
    ids = [p.id for p in rows]
    session.execute(update(Post).where(Post.id.in_(ids)).values(hidden_at=None, hidden_reason=None, hidden_by=None))
    bump_content_version(session, _scopes(rows) | {REMOVALS})
    audit(session, actor.name, "unhide_post", str(post.id))
    return Outcome(tuple(ids), f"post {post.id} shown again")


def approve(session: Session, actor: Actor, post_id: int) -> Outcome:
    """Publish a post waiting for review (its source is under review)."""
    post = get_post(session, post_id)
    actor.check(post.source.office_id)
    if not post.pending:
        raise ModerationError("not_pending", f"post {post.id} is not waiting for review")
    post.pending = False
    bump_content_version(session, _scopes([post]))
    audit(session, actor.name, "approve_post", str(post.id))
    return Outcome((post.id,), f"post {post.id} published")


def pin(session: Session, actor: Actor, post_id: int, office: Office | None = None,
        ends_at: datetime | None = None) -> Outcome:
    """Keep a post at the top of the company feed (office None) or of one office's feed, after the pins
    already there, until ends_at (None: until unpinned). Pinning it again there moves its end only."""
    post = get_post(session, post_id)
    office_id = office.id if office is not None else None
    actor.check(post.source.office_id)
    actor.check(office_id)
    if post.source.office_id is not None and post.source.office_id != office_id:
        raise ModerationError("wrong_feed", "an office's post shows in that office's feed only: pin it there")
    if post.pending or post.hidden_at is not None:
        raise ModerationError("unpublished", f"post {post.id} is not published")
    if ends_at is not None and ends_at <= utcnow():
        raise ModerationError("past", "the end of the pin is already past")
    existing = session.scalar(select(Pin).where(Pin.post_id == post.id, _at(office_id)))
    if existing is not None:
        existing.ends_at = ends_at
    else:
        last = session.scalar(select(func.max(Pin.position)).where(_at(office_id)))
        session.add(Pin(post_id=post.id, office_id=office_id, position=(last or 0) + 1, ends_at=ends_at,
                        pinned_by=actor.name))
    bump_content_version(session, _feed_scopes(office_id))
    where = office.slug if office is not None else "company"
    audit(session, actor.name, "pin_post", str(post.id),
          f"{where} until {ends_at:%Y-%m-%d %H:%M}" if ends_at else where)
    return Outcome((post.id,), f"post {post.id} pinned ({where})")


def unpin(session: Session, actor: Actor, post_id: int, office: Office | None = None,
          everywhere: bool = False) -> Outcome:
    """Take a post's pin off the company feed (office None) or one office's feed; everywhere: each pin
    of it the actor may remove."""
    post = get_post(session, post_id)
    actor.check(post.source.office_id)
    pins = list(session.scalars(select(Pin).where(Pin.post_id == post.id)))
    if not everywhere:
        pins = [p for p in pins if p.office_id == (office.id if office is not None else None)]
    pins = [p for p in pins if actor.may_edit(p.office_id)]
    if not pins:
        raise ModerationError("not_pinned", f"post {post.id} is not pinned there")
    scopes: set[str] = set()
    for p in pins:
        scopes |= _feed_scopes(p.office_id)
        session.delete(p)
    bump_content_version(session, scopes)
    places = {session.get(Office, p.office_id).slug if p.office_id is not None else "company" for p in pins}
    audit(session, actor.name, "unpin_post", str(post.id), ",".join(sorted(places)))
    return Outcome((post.id,), f"post {post.id} unpinned")


def highlight(session: Session, actor: Actor, post_id: int, on: bool = True) -> Outcome:
    """Mark a post as a recognition shout-out (a badge on pages, a category in feeds), or unmark it."""
    post = get_post(session, post_id)
    actor.check(post.source.office_id)
    rows = [p for p in _copies(session, post) if actor.may_edit(p.source.office_id)]
    session.execute(update(Post).where(Post.id.in_([p.id for p in rows])).values(highlighted=on))
    bump_content_version(session, _scopes(rows))
    audit(session, actor.name, "highlight_post" if on else "unhighlight_post", str(post.id))
    return Outcome(tuple(p.id for p in rows), f"post {post.id} {'highlighted' if on else 'no longer highlighted'}")


def expire_pins(session: Session, now: datetime | None = None) -> int:
    """Delete pins past their end and bump the feeds they were on (the poller calls this); how many."""
    now = now or utcnow()
    ended = list(session.scalars(select(Pin).where(Pin.ends_at.is_not(None), Pin.ends_at <= now)))
    if not ended:
        return 0
    scopes: set[str] = set()
    for p in ended:
        scopes |= _feed_scopes(p.office_id)
    session.execute(delete(Pin).where(Pin.id.in_([p.id for p in ended])))
    bump_content_version(session, scopes)
    return len(ended)


def _at(office_id: int | None):
    return Pin.office_id.is_(None) if office_id is None else Pin.office_id == office_id


def _feed_scopes(office_id: int | None) -> set[str]:
    """The scopes of a feed's pages, both audiences: a pin changes the order of what both see."""
    return {posts_scope(office_id, False), posts_scope(office_id, True)}


def pending_filter(actor: Actor):
    """SQL over Source: the sources whose posts the actor may moderate."""
    if actor.is_admin or (actor.is_editor and actor.office_id is None):
        return Source.id.is_not(None)
    if actor.is_editor:
        return Source.office_id == actor.office_id
    return Source.id.is_(None)
