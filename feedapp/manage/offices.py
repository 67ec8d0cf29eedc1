"""Offices (local sites): create, rename, set language and quiet hours, delete when empty.

Admins and company-wide editors create and delete offices; an office editor may
rename its own office and set its language and quiet hours, nothing else. Every change
is audited; those readers see bump the SITE scope (the office menu, OPML and feed languages).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from feedapp.accounts import audit
from feedapp.content_scopes import SITE
from feedapp.ingest.store import bump_content_version
from feedapp.models import Office, Source, User
from feedapp.push.quiet import QuietHoursError, check_window, parse_hhmm, parse_time_zone
from feedapp.roles import Actor

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
NAME_MAX = 200


class OfficeError(ValueError):
    """Input or state that refuses the change; nothing was changed. str() is the operator-facing reason."""


@dataclass(frozen=True)
class OfficeUsage:
    """What still belongs to an office."""

    sources: int
    users: int

    @property
    def empty(self) -> bool:
        return not (self.sources or self.users)

    def words(self) -> str:
        """"2 sources and 1 staff account" (what keeps an office from being deleted)."""
        return (f"{self.sources} source{'s' if self.sources != 1 else ''} and "
                f"{self.users} staff account{'s' if self.users != 1 else ''}")


def clean_name(name: str) -> str:
    """A display name of 1-200 characters, stripped, or OfficeError."""
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX:
        raise OfficeError("give a name of 1-200 characters")
    return name


def clean_language(language: str | None, languages: tuple[str, ...]) -> str | None:
    """A supported language code, or None for the site's default."""
    if not language:
        return None
    if language not in languages:
        raise OfficeError(f"use one of {', '.join(languages)}")
    return language


def office_usage(session: Session, office_id: int) -> OfficeUsage:
    """How many sources and staff accounts belong to the office."""
    sources = session.scalar(select(func.count()).select_from(Source).where(Source.office_id == office_id))
    users = session.scalar(select(func.count()).select_from(User).where(User.office_id == office_id))
    return OfficeUsage(sources or 0, users or 0)


def create_office(actor: Actor, session: Session, slug: str, name: str, language: str | None = None, *,
                  languages: tuple[str, ...]) -> Office:
    """Create an office (admins and company-wide editors). Caller commits."""
    actor.check(None)  # company-wide scope: an office editor cannot make offices
    if not SLUG_RE.match(slug or ""):
        raise OfficeError("use lower-case letters, digits and - (at most 63) for the slug")
    name, language = clean_name(name), clean_language(language, languages)
    if session.scalar(select(Office.id).where(Office.slug == slug)) is not None:
        raise OfficeError(f"office {slug!r} exists already")
    office = Office(slug=slug, name=name, language=language)
    session.add(office)
    session.flush()
    bump_content_version(session, [SITE])  # the office menu and the OPML list change
    audit(session, actor.name, "create_office", slug, f"name={name} language={language or '-'}")
    return office


def rename_office(actor: Actor, session: Session, office: Office, name: str) -> Office:
    """Change what readers see as the office's name (its slug, so its URLs, stay). Caller commits."""
    actor.check(office.id)
    name = clean_name(name)
    if name != office.name:
        old, office.name = office.name, name
        bump_content_version(session, [SITE])
        audit(session, actor.name, "rename_office", office.slug, f"{old} -> {name}")
    return office


def set_office_language(actor: Actor, session: Session, office: Office, language: str | None, *,
                        languages: tuple[str, ...]) -> Office:
    """Set the language of the office's feeds and labels (None: the site's). Caller commits."""
    actor.check(office.id)
    language = clean_language(language, languages)
    if language != office.language:
        office.language = language
        bump_content_version(session, [SITE])
        audit(session, actor.name, "set_office_language", office.slug, language or "-")
    return office


def set_office_quiet_hours(actor: Actor, session: Session, office: Office, time_zone: str | None,
                           start: str | None, end: str | None) -> Office:
    """Set the office's time zone (IANA; None: the site's) and quiet hours ("HH:MM" both, or neither: the
    site's), when no push reaches its phones (feedapp.push.quiet). OfficeError for a bad value. Caller commits.

    Pages do not change, so no scope is bumped: pushes queued from now on wait for the new window's end.
    """
    actor.check(office.id)
    time_zone, start, end = ((value or "").strip() or None for value in (time_zone, start, end))
    try:
        if time_zone is not None:
            parse_time_zone(time_zone)
        if (start is None) != (end is None):
            raise QuietHoursError("give both the start and the end of the quiet hours, or neither")
        if start is not None:
            check_window(parse_hhmm(start), parse_hhmm(end))
    except QuietHoursError as exc:
        raise OfficeError(str(exc)) from None
    if (time_zone, start, end) != (office.time_zone, office.quiet_start, office.quiet_end):
        office.time_zone, office.quiet_start, office.quiet_end = time_zone, start, end
        hours = f"{start}-{end}" if start else "site default"
        audit(session, actor.name, "set_office_quiet_hours", office.slug, f"{hours} {time_zone or 'site time zone'}")
    return office


def delete_office(actor: Actor, session: Session, office: Office) -> None:
    """Delete an office with no sources and no staff accounts left; OfficeError says what still belongs to it."""
    actor.check(None)
    usage = office_usage(session, office.id)
    if not usage.empty:
        raise OfficeError(f"{office.name} still has {usage.words()}: move or remove them first")
    slug = office.slug
    session.delete(office)
    bump_content_version(session, [SITE])
    audit(session, actor.name, "delete_office", slug)


def office_by_slug_or_error(session: Session, slug: str) -> Office:
    """The office with this slug, or OfficeError."""
    office = session.scalar(select(Office).where(Office.slug == slug))
    if office is None:
        raise OfficeError(f"no office {slug!r}")
    return office
