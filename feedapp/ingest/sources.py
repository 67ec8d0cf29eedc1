"""Following and unfollowing X accounts (the rows the poller reads)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from sqlalchemy import update
from sqlalchemy.orm import Session, object_session, sessionmaker

from feedapp.content_scopes import SITE
from feedapp.models import Office, Source, utcnow
from feedapp.queries import office_by_slug, source_by_username
from feedapp.xapi import AuthError, RateLimited, XClient, XError
from feedapp.xapi.client import LOOKUP_BATCH
from feedapp.xapi.types import XUser

from .store import bump_content_version, record_reads

# X usernames: 1-15 letters, digits or underscores (X help center, "username rules").
USERNAME_RE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
NOT_A_USERNAME = "not an X username (1-15 letters, digits or _)"


class SourceInputError(ValueError):
    """Input that names no valid account or office; nothing was changed."""


def clean_x_username(raw: str) -> str:
    """An X username without @ or x.com/ prefix, or SourceInputError."""
    name = raw.strip()
    name = re.sub(r"^(https?://)?(www\.)?(x|twitter)\.com/", "", name, flags=re.I).lstrip("@").rstrip("/")
    if not USERNAME_RE.match(name):
        raise SourceInputError(f"{raw!r} is {NOT_A_USERNAME}")
    return name


@dataclass(frozen=True)
class SourceFlags:
    """A source's settings besides its office: who sees it, review, and what is left out."""

    staff_only: bool = False
    review: bool = False  # new posts wait for an editor
    no_replies: bool = False  # replies to other accounts are left out (filtered on our side)
    no_reposts: bool = False  # reposts are never asked for (exclude=retweets)

    def apply(self, source: Source) -> None:
        """Write these settings onto source."""
        for f in fields(self):
            setattr(source, f.name, getattr(self, f.name))

    @classmethod
    def of(cls, row) -> SourceFlags:
        """The settings of a Source or SourceRequest row."""
        return cls(**{f.name: bool(getattr(row, f.name)) for f in fields(cls)})

    def words(self) -> list[str]:
        """The settings that are on, as short words (for listings and the audit)."""
        return [f.name.replace("_", "-") for f in fields(self) if getattr(self, f.name)]


def lookup_problem(exc: XError) -> str:
    """Why a lookup call failed, in words an editor can act on."""
    if isinstance(exc, AuthError):
        # Missing credentials are said as such; anything else is X refusing the ones we have.
        return str(exc) if str(exc).startswith("no X credentials") else f"credentials refused: {exc}"
    if isinstance(exc, RateLimited):
        return f"X rate limit: {exc}; try again later"
    return f"not looked up: {exc}"


@dataclass
class AddReport:
    """What `add_sources` did: sources added or updated, and each name that was not, with why."""

    added: list[Source] = field(default_factory=list)
    updated: list[Source] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (name as given or cleaned, reason)


def add_sources(session: Session, client: XClient, raw_usernames: list[str], office_slug: str | None = None,
                staff_only: bool = False, *, flags: SourceFlags | None = None,
                may_change: Callable[[Source], str | None] | None = None) -> AddReport:
    """Look accounts up on X, 100 per call, and follow (or update) each one found. Caller commits.

    Names that are not X usernames, or that X cannot resolve (not found,
    suspended …), are listed in the report with the reason and change nothing;
    an unknown office refuses everything before any call. flags (default: only
    staff_only) are the new settings; may_change(source) vetoes the update of an
    already followed source with a reason (the console's office scope).
    """
    flags = flags or SourceFlags(staff_only=staff_only)
    office = _office(session, office_slug)
    report, wanted = AddReport(), {}
    for raw in raw_usernames:
        try:
            name = clean_x_username(raw)
        except SourceInputError:
            report.refused.append((repr(raw), NOT_A_USERNAME))
            continue
        wanted.setdefault(name.lower(), name)  # @a, x.com/A and a are one account
    names = list(wanted.values())
    for i in range(0, len(names), LOOKUP_BATCH):
        batch = names[i : i + LOOKUP_BATCH]
        try:
            lookup = client.lookup_users(batch)
        except XError as exc:  # this batch is not added; the ones X answered for are
            report.refused.extend((f"@{n}", lookup_problem(exc)) for n in batch)
            continue
        record_reads(session, "user", lookup.user_ids)
        found = {u.username.lower(): u for u in lookup.users}
        for name in batch:
            user = found.get(name.lower())
            if user is None:
                report.refused.append((f"@{name}", lookup.problems.get(name.lower(), "X returned no such user")))
                continue
            existing = session.query(Source).filter_by(x_id=user.id).one_or_none()
            veto = may_change(existing) if existing is not None and may_change is not None else None
            if veto:
                report.refused.append((f"@{name}", veto))
                continue
            source, created = upsert_source(session, user, office, flags)
            (report.added if created else report.updated).append(source)
    return report


def upsert_source(session: Session, user: XUser, office: Office | None,
                  flags: SourceFlags | bool = False) -> tuple[Source, bool]:
    """Create the source for user, or update its office, settings and profile (flags: a bool means staff_only)."""
    if isinstance(flags, bool):
        flags = SourceFlags(staff_only=flags)
    source = session.query(Source).filter_by(x_id=user.id).one_or_none()
    created = source is None
    if created:
        source = Source(x_id=user.id, error_count=0)
        session.add(source)
    apply_profile(source, user)
    source.office = office
    flags.apply(source)
    # SITE: besides its own posts, a source's settings decide which reposts and quotes of it show anywhere.
    bump_content_version(session, [SITE])
    if created:
        source.next_check_at = utcnow()
    return source, created


def apply_profile(source: Source, user: XUser) -> None:
    """Copy what X says of the account onto the source."""
    if source.id is not None and (user.protected, user.username) != (source.protected, source.username):
        # Its posts (and reposts of them) just became staff-only, or public; or reposts name it anew.
        bump_content_version(object_session(source), [SITE])
    source.username = user.username
    source.display_name = user.name
    source.avatar_url = user.avatar_url
    source.protected = user.protected
    source.profile_checked_at = utcnow()


def mark_protected(sessions: sessionmaker[Session], source_id: int) -> None:
    """X refused a public account's timeline: it is protected now, staff-only from this commit on."""
    with sessions() as session:
        session.execute(update(Source).where(Source.id == source_id).values(protected=True))
        bump_content_version(session, [SITE])
        session.commit()


def remove_source(session: Session, raw_username: str) -> Source:
    """Stop following the account and delete its stored posts. Caller commits."""
    username = clean_x_username(raw_username)
    source = source_by_username(session, username)
    if source is None:
        raise SourceInputError(f"@{username} is not followed")
    session.delete(source)
    bump_content_version(session, [SITE])
    return source


def _office(session: Session, slug: str | None) -> Office | None:
    if slug is None:
        return None
    office = office_by_slug(session, slug)
    if office is None:
        raise SourceInputError(f"no office {slug!r}; create it with `offices add {slug} NAME`")
    return office
