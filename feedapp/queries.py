"""Named reads; nothing here writes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
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
    scope = Source.office_id.is_(None)
    if office_id is not None:
        scope = or_(scope, Source.office_id == office_id)
    stmt = select(Post).join(Source, Post.source_id == Source.id).where(scope)
    if not staff:
        stmt = stmt.where(Source.protected.is_(False), Source.staff_only.is_(False))
    if before is not None:
        stmt = stmt.where(Post.id < before)
    stmt = stmt.order_by(Post.id.desc()).limit(limit).options(
        selectinload(Post.media), selectinload(Post.source), defer(Post.raw)  # raw JSON is for re-rendering only
    )
    return list(session.scalars(stmt))

