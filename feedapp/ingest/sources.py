"""Following and unfollowing X accounts (the rows the poller reads)."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session, object_session

from feedapp.models import Office, Source, utcnow
from feedapp.queries import office_by_slug, source_by_username
from feedapp.xapi import SourceError, XClient
from feedapp.xapi.types import User

from .store import bump_content_version, record_reads

# X usernames: 1-15 letters, digits or underscores (X help center, "username rules").
USERNAME_RE = re.compile(r"^[A-Za-z0-9_]{1,15}$")


class SourceInputError(ValueError):
    """Input that names no valid account or office; nothing was changed."""


def clean_username(raw: str) -> str:
    """A username without @ or x.com/ prefix, or SourceInputError."""
    name = raw.strip()
    name = re.sub(r"^(https?://)?(www\.)?(x|twitter)\.com/", "", name, flags=re.I).lstrip("@").rstrip("/")
    if not USERNAME_RE.match(name):
        raise SourceInputError(f"{raw!r} is not an X username (1-15 letters, digits or _)")
    return name


def add_source(session: Session, client: XClient, raw_username: str, office_slug: str | None = None,
               staff_only: bool = False) -> tuple[Source, bool]:
    """Look the account up on X and follow it (or update it); returns (source, created). Caller commits."""
    username = clean_username(raw_username)
    office = _office(session, office_slug)
    lookup = client.lookup_users([username])
    record_reads(session, "user", lookup.user_ids)
    match = next((u for u in lookup.users if u.username.lower() == username.lower()), None)
    if match is None:
        reason = lookup.problems.get(username.lower(), "X returned no such user")
        raise SourceError(f"@{username}: {reason}")
    return upsert_source(session, match, office, staff_only)


def upsert_source(session: Session, user: User, office: Office | None, staff_only: bool) -> tuple[Source, bool]:
    """Create the source for user, or update its office, flag and profile."""
    source = session.query(Source).filter_by(x_id=user.id).one_or_none()
    created = source is None
    if created:
        source = Source(x_id=user.id, error_count=0)
        session.add(source)
    apply_profile(source, user)
    source.office = office
    source.staff_only = staff_only
    bump_content_version(session)  # office or staff-only may have changed what a feed shows
    if created:
        source.next_check_at = utcnow()
    return source, created


def apply_profile(source: Source, user: User) -> None:
    """Copy what X says of the account onto the source."""
    source.username = user.username
    source.display_name = user.name
    source.avatar_url = user.avatar_url
    if user.protected != source.protected and source.id is not None:
        bump_content_version(object_session(source))  # its posts just became staff-only (or public)
    source.protected = user.protected
    source.profile_checked_at = utcnow()


def remove_source(session: Session, raw_username: str) -> Source:
    """Stop following the account and delete its stored posts. Caller commits."""
    username = clean_username(raw_username)
    source = source_by_username(session, username)
    if source is None:
        raise SourceInputError(f"@{username} is not followed")
    session.delete(source)
    bump_content_version(session)
    return source


def _office(session: Session, slug: str | None) -> Office | None:
    if slug is None:
        return None
    office = office_by_slug(session, slug)
    if office is None:
        raise SourceInputError(f"no office {slug!r}; create it with `offices add {slug} NAME`")
    return office
