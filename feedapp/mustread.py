"""Must-read posts and staff acknowledgements: marking, ending, "got it", what heads a page, and the counts.

Marking is one row (feedapp.models.MustRead) with announced_at None: the worker fans the push out
(feedapp.push.announce), never the request that marks it. The audience is fixed when it is marked,
from the post's source. Like feedapp.moderation, each write checks the actor's role and office
(feedapp.roles), writes an audit row and bumps the content scope of that audience, so pages, feeds
and post pages show or drop it at once. An acknowledgement bumps no scope: it changes one person's
pages only, which know it through their Variant (feedapp.web.variant). Nothing here commits. No Flask.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from feedapp.accounts import audit
from feedapp.content_scopes import posts_scope
from feedapp.ingest.store import bump_content_version
from feedapp.moderation import ModerationError, Outcome, get_post
from feedapp.models import Acknowledgement, MustRead, Office, Post, User, utcnow
from feedapp.post_context import add_context
from feedapp.push.announce import cancel_post_pushes
from feedapp.roles import Actor
from feedapp.visibility import posts_statement, published

EVERY = object()  # reader_state's office for a post's own page: the must-reads of every office
MIN_GROUP = 5  # the console shows acknowledgements of groups of at least this many people only
LIST_MAX = 50


def active(now: datetime):
    """SQL over MustRead: not ended by an editor, and its end (if any) still ahead."""
    return MustRead.ended_at.is_(None) & or_(MustRead.ends_at.is_(None), MustRead.ends_at > now)


def is_active(row: MustRead | None, now: datetime) -> bool:
    """The row is a must-read still in force."""
    return row is not None and row.ended_at is None and (row.ends_at is None or row.ends_at > now)


def _scope(row: MustRead) -> str:
    return posts_scope(row.office_id, row.staff_only)


def mark(session: Session, actor: Actor, post_id: int, ends_at: datetime | None = None, *,
         remind_hours: int = 0, now: datetime | None = None) -> Outcome:
    """Make a published post must-read for its source's audience until ends_at (None: until ended).

    remind_hours: FEEDAPP_MUST_READ_REMIND (0: no reminder). Marking an ended one again re-opens it
    (a new push; acknowledgements already given stand); marking an active one again is refused, so
    that nobody gets a second push for the same post.
    """
    now = now or utcnow()
    post = get_post(session, post_id)
    source = post.source
    actor.check(source.office_id)
    if post.pending or post.hidden_at is not None:
        raise ModerationError("unpublished", f"post {post.id} is not published")
    if ends_at is not None and ends_at <= now:
        raise ModerationError("past", "the end of the must-read is already past")
    row = session.get(MustRead, post.id)
    if is_active(row, now):
        raise ModerationError("already", f"post {post.id} is already must-read")
    if row is None:
        row = MustRead(post_id=post.id, marked_by=actor.name)
        try:  # two editors marking it at once: the second is told, not shown a database error
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            raise ModerationError("already", f"post {post.id} is already must-read") from None
    else:
        # Re-opened: the old push may still wait in the outbox (its end date passed before expire() ran).
        cancel_post_pushes(session, post.id)
        if row.office_id != source.office_id or row.staff_only != source.is_staff_only:
            bump_content_version(session, {_scope(row)})  # its old audience loses it
    row.office_id, row.staff_only = source.office_id, source.is_staff_only
    row.marked_by, row.marked_at, row.ends_at, row.ended_at = actor.name, now, ends_at, None
    row.announced_at, row.reminded_at = None, None  # the worker picks it up (feedapp.push.announce)
    row.remind_at = now + timedelta(hours=remind_hours) if remind_hours > 0 else None
    bump_content_version(session, {_scope(row)})
    where = "staff " if row.staff_only else ""
    where += session.get(Office, row.office_id).slug if row.office_id is not None else "company"
    audit(session, actor.name, "mark_must_read", str(post.id),
          f"{where} until {ends_at:%Y-%m-%d %H:%M}" if ends_at else where)
    return Outcome((post.id,), f"post {post.id} is must-read ({where})")


def end(session: Session, actor: Actor, post_id: int, *, now: datetime | None = None) -> Outcome:
    """Take a post's must-read off: it leaves the top of its audience's pages; no reminder goes out."""
    now = now or utcnow()
    post = get_post(session, post_id)
    row = session.get(MustRead, post.id)
    actor.check(row.office_id if row is not None else post.source.office_id)
    if not is_active(row, now):
        raise ModerationError("not_must_read", f"post {post.id} is not must-read")
    row.ended_at = now
    cancel_post_pushes(session, post.id)  # a phone in its office's quiet hours need not get it in the morning
    bump_content_version(session, {_scope(row)})
    audit(session, actor.name, "end_must_read", str(post.id))
    return Outcome((post.id,), f"post {post.id} is no longer must-read")


def expire(session: Session, now: datetime | None = None) -> int:
    """End the must-reads past their ends_at and bump their audiences (the poller calls this); how many."""
    now = now or utcnow()
    rows = list(session.scalars(select(MustRead).where(
        MustRead.ended_at.is_(None), MustRead.ends_at.is_not(None), MustRead.ends_at <= now)))
    for row in rows:
        row.ended_at = row.ends_at
        cancel_post_pushes(session, row.post_id)
    bump_content_version(session, {_scope(row) for row in rows})
    return len(rows)


def in_audience(row: MustRead, user: User) -> bool:
    """Whether this account is among the staff a must-read asks to acknowledge it (its office's, or everyone's)."""
    return user.active and (row.office_id is None or row.office_id == user.office_id)


def acknowledge(session: Session, user, post_id: int, *, now: datetime | None = None) -> bool:
    """Record a staff member's "got it" for an active must-read; True if new, False if already given.

    ModerationError("unknown") for a post that is not an active, published must-read of this person's
    audience (the web answers 404). Once per person by the primary key: INSERT … ON CONFLICT DO NOTHING,
    so two taps at once (two workers, PostgreSQL) still leave one row.
    """
    now = now or utcnow()
    account = session.get(User, user.id)
    row = session.get(MustRead, post_id) if 0 < post_id < 2**63 else None
    post = session.get(Post, post_id) if row is not None else None
    if (account is None or not is_active(row, now) or post is None or post.pending or post.hidden_at is not None
            or not in_audience(row, account)):
        raise ModerationError("unknown", f"post {post_id} is not a must-read for {getattr(account, 'username', '?')}")
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(Acknowledgement).values(post_id=post_id, user_id=account.id, at=now)
    stmt = stmt.on_conflict_do_nothing(index_elements=["post_id", "user_id"]).returning(Acknowledgement.user_id)
    return session.execute(stmt).first() is not None  # RETURNING: a row only when this insert made it


def _audience(office_id: int | None, staff: bool, company: bool):
    """SQL over MustRead: the must-reads a page of company-wide posts plus office_id's (company False: its own) heads."""
    where = MustRead.office_id == office_id if office_id is not None else MustRead.office_id.is_(None)
    if company and office_id is not None:
        where = or_(MustRead.office_id.is_(None), where)
    return where if staff else and_(where, MustRead.staff_only.is_(False))


def active_ids(session: Session, office_id: int | None, *, staff: bool, now: datetime, company: bool = True) -> list[int]:
    """Ids of the active, published must-reads of a page's audience, most recently marked first."""
    stmt = (select(MustRead.post_id).join(Post, Post.id == MustRead.post_id)
            .where(active(now), _audience(office_id, staff, company), published())
            .order_by(MustRead.marked_at.desc(), MustRead.post_id.desc()))
    return list(session.scalars(stmt))


def acknowledged_ids(session: Session, user_id: int | None, post_ids) -> set[int]:
    """Which of these posts this person has acknowledged."""
    post_ids = list(post_ids)
    if user_id is None or not post_ids:
        return set()
    return set(session.scalars(select(Acknowledgement.post_id).where(
        Acknowledgement.user_id == user_id, Acknowledgement.post_id.in_(post_ids))))


def active_must_reads(session: Session, office_id: int | None, *, staff: bool, now: datetime,
                      ids: list[int] | None = None, company: bool = True) -> list[Post]:
    """The active must-read posts of a page's audience the reader may see, newest marked first, flagged must_read.

    ids: active_ids, when the caller has them already.
    """
    ids = active_ids(session, office_id, staff=staff, now=now, company=company) if ids is None else ids
    if not ids:
        return []
    found = {p.id: p for p in session.scalars(posts_statement(not staff), {"ids": ids})}
    posts = [found[i] for i in ids if i in found]
    add_context(session, posts, office_id, not staff, company)
    for post in posts:
        post.must_read = True
    return posts


@dataclass(frozen=True)
class ReaderState:
    """The active must-reads a page's reader meets: all of them, those they acknowledged, those they are asked to."""

    ids: tuple[int, ...] = ()  # active must-reads the page may show, most recently marked first
    acked: frozenset[int] = frozenset()  # of ids, acknowledged by the reader
    asked: frozenset[int] = frozenset()  # of ids, in the reader's audience and not acknowledged yet

    def flag(self, posts) -> None:
        """Set must_read and acknowledged (True: got it; False: asked to; None: not asked) on posts and their parts."""
        for post in posts:
            for one in (post, *post.thread_parts):
                one.must_read = one.id in self.ids
                one.acknowledged = True if one.id in self.acked else False if one.id in self.asked else None


def reader_state(session: Session, office_id, *, reader, now: datetime, company: bool = True) -> ReaderState:
    """What a page of company-wide posts plus office_id's (None: every office's, for a post's page) needs
    to know about must-reads for this reader: the signed-in account (its id and office_id; signed in means
    active), or None for an anonymous reader."""
    stmt = (select(MustRead.post_id, MustRead.office_id).join(Post, Post.id == MustRead.post_id)
            .where(active(now), published()).order_by(MustRead.marked_at.desc(), MustRead.post_id.desc()))
    if office_id is not EVERY:
        stmt = stmt.where(_audience(office_id, reader is not None, company))
    elif reader is None:
        stmt = stmt.where(MustRead.staff_only.is_(False))
    rows = session.execute(stmt).all()
    if not rows or reader is None:
        return ReaderState(tuple(i for i, _ in rows))
    acked = acknowledged_ids(session, reader.id, [i for i, _ in rows])
    asked = {i for i, office in rows if i not in acked and office in (None, reader.office_id)}
    return ReaderState(tuple(i for i, _ in rows), frozenset(acked), frozenset(asked))


@dataclass(frozen=True)
class AckGroup:
    """One line of a must-read's reach: an office (name), staff without one (kind "no_office"), or the
    small groups merged (kind "other"). Counts are None when fewer than MIN_GROUP people are in it."""

    kind: str  # office | no_office | other
    name: str
    acknowledged: int | None
    in_scope: int | None

    @property
    def few(self) -> bool:
        """Fewer than MIN_GROUP people: no number may be shown."""
        return self.in_scope is None


def ack_counts(session: Session, post_id: int) -> list[AckGroup]:
    """Acknowledged / staff in scope per office for a must-read: active accounts of its office (company-wide:
    every office, plus accounts without one), groups under MIN_GROUP merged into "other"."""
    row = session.get(MustRead, post_id)
    if row is None:
        return []
    scope = User.active.is_(True)
    if row.office_id is not None:
        scope &= User.office_id == row.office_id
    totals = dict(session.execute(select(User.office_id, func.count()).where(scope).group_by(User.office_id)).all())
    acked = dict(session.execute(
        select(User.office_id, func.count()).join(Acknowledgement, Acknowledgement.user_id == User.id)
        .where(scope, Acknowledgement.post_id == post_id).group_by(User.office_id)).all())
    names = dict(session.execute(select(Office.id, Office.name)).all())
    groups: list[AckGroup] = []
    other_total = other_acked = 0
    for office_id in sorted(totals, key=lambda o: (o is None, names.get(o, ""))):
        total = totals[office_id]
        if total < MIN_GROUP:
            other_total, other_acked = other_total + total, other_acked + acked.get(office_id, 0)
        elif office_id is None:
            groups.append(AckGroup("no_office", "", acked.get(None, 0), total))
        else:
            groups.append(AckGroup("office", names.get(office_id, ""), acked.get(office_id, 0), total))
    if other_total:
        few = other_total < MIN_GROUP
        groups.append(AckGroup("other", "", None if few else other_acked, None if few else other_total))
    return groups


def rows_of(session: Session, post_ids) -> dict[int, MustRead]:
    """The must-read rows (active or ended) of these posts, by post id."""
    return {row.post_id: row for row in session.scalars(select(MustRead).where(MustRead.post_id.in_(list(post_ids))))}


def must_read_list(session: Session, actor: Actor, limit: int = LIST_MAX) -> list[tuple[MustRead, Post]]:
    """The must-reads this editor may act on (their office's, or all), active first, then by when marked."""
    stmt = select(MustRead, Post).join(Post, Post.id == MustRead.post_id)
    if not actor.is_admin and actor.office_only:
        stmt = stmt.where(MustRead.office_id == actor.office_id)
    elif not actor.is_editor:
        return []
    stmt = stmt.order_by(MustRead.ended_at.is_not(None), MustRead.marked_at.desc()).limit(limit)
    return [(mr, post) for mr, post in session.execute(stmt).all()]
