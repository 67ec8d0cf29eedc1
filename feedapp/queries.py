"""Named reads; nothing here writes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select, union_all
from sqlalchemy.orm import Session, defer, selectinload

from feedapp.models import Office, Post, Source


def sources_due(session: Session, now: datetime | None) -> list[int]:
    """Ids of sources whose next check has come (every source when now is None), oldest check first."""
    stmt = select(Source.id).order_by(Source.next_check_at.is_not(None), Source.next_check_at, Source.id)
    if now is not None:
        stmt = stmt.where(or_(Source.next_check_at.is_(None), Source.next_check_at <= now))
    return list(session.scalars(stmt))


def sources_for_profile_check(session: Session, before: datetime) -> list[Source]:
    """Sources whose profile was last read before `before` (or never)."""
    stmt = select(Source).where(or_(Source.profile_checked_at.is_(None), Source.profile_checked_at < before))
    return list(session.scalars(stmt.order_by(Source.id)))


def source_by_username(session: Session, username: str) -> Source | None:
    """The source with that X username, case-insensitively."""
    return session.scalar(select(Source).where(func.lower(Source.username) == username.lower()))


def office_by_slug(session: Session, slug: str) -> Office | None:
    """The office with that slug."""
    return session.scalar(select(Office).where(Office.slug == slug))


def all_sources(session: Session) -> list[Source]:
    """Every source, company-wide first, then by office and username."""
    return list(session.scalars(select(Source).order_by(Source.office_id.is_not(None), Source.office_id, Source.username)))


def all_offices(session: Session) -> list[Office]:
    """Every office by slug."""
    return list(session.scalars(select(Office).order_by(Office.slug)))


def posts_for_feed(
    session: Session,
    office_id: int | None = None,
    *,
    staff: bool = False,
    before: int | None = None,
    limit: int = 30,
) -> list[Post]:
    """Newest posts of company-wide sources plus office_id's, older than `before` (keyset).

    Staff-only posts (protected on X or marked by an admin) only when staff is True.
    """
    ids = _newest_ids(session, scope_source_ids(session, office_id, staff=staff), before, limit)
    if not ids:
        return []
    stmt = select(Post).where(Post.id.in_(ids)).order_by(Post.id.desc()).options(
        selectinload(Post.media), selectinload(Post.source), defer(Post.raw)  # raw JSON is for re-rendering only
    )
    return list(session.scalars(stmt))


def scope_source_ids(session: Session, office_id: int | None, *, staff: bool) -> list[int]:
    """Ids of the sources a feed draws from: company-wide ones plus one office's."""
    scope = Source.office_id.is_(None)
    if office_id is not None:
        scope = or_(scope, Source.office_id == office_id)
    stmt = select(Source.id).where(scope)
    if not staff:
        stmt = stmt.where(Source.protected.is_(False), Source.staff_only.is_(False))
    return list(session.scalars(stmt))


def _newest_ids(session: Session, source_ids: list[int], before: int | None, limit: int) -> list[int]:
    """The `limit` newest post ids of those sources, below `before`.

    One index range per source (ix_posts_source_id_id), each cut at `limit`,
    merged: the cost grows with sources × limit, never with the table size.
    """
    if not source_ids:
        return []
    parts = []
    for source_id in source_ids:
        part = select(Post.id).where(Post.source_id == source_id)
        if before is not None:
            part = part.where(Post.id < before)
        parts.append(select(part.order_by(Post.id.desc()).limit(limit).subquery().c.id))
    merged = union_all(*parts).subquery()
    return list(session.scalars(select(merged.c.id).order_by(merged.c.id.desc()).limit(limit)))

