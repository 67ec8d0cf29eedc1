"""Sources (followed X accounts): add, change settings, pause, remove, and the console's requests to the poller.

Every function that changes something takes the Actor first and checks its
scope for every office it touches: the source's office before the change and
the office it goes to. The web app never calls X: the console queues a
SourceRequest (queue_add, queue_check) that the poller runs (feedapp.ingest.requests)
through the same add_sources the CLI uses.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from feedapp.accounts import audit
from feedapp.content_scopes import SITE
from feedapp.ingest import sources as ingest
from feedapp.ingest.sources import AddReport, SourceFlags, SourceInputError, clean_x_username
from feedapp.ingest.store import bump_content_version
from feedapp.models import Office, Post, Source, SourceRequest, User
from feedapp.roles import Actor, Forbidden

# Names typed in the console: one a line, or separated by commas or spaces.
SEPARATORS = re.compile(r"[\s,;]+")
MAX_AT_ONCE = 100

__all__ = ["AddReport", "Forbidden", "SourceFlags", "SourceInputError"]


def split_usernames(text: str) -> tuple[list[str], list[str]]:
    """(clean usernames, one each, in order; entries that are not X usernames or profile URLs)."""
    names, bad, seen = [], [], set()
    for raw in SEPARATORS.split(text or ""):
        if not raw:
            continue
        try:
            name = clean_x_username(raw)
        except SourceInputError:
            bad.append(raw)
            continue
        if name.lower() not in seen:
            seen.add(name.lower())
            names.append(name)
    return names, bad


def _office_id(session: Session, slug: str | None) -> int | None:
    if not slug:
        return None
    office_id = session.scalar(select(Office.id).where(Office.slug == slug))
    if office_id is None:
        raise SourceInputError(f"no office {slug!r}; create it with `offices add {slug} NAME`")
    return office_id


def _veto(actor: Actor):
    def may_change(source: Source) -> str | None:
        return None if actor.may_edit(source.office_id) else "followed already, outside your office"
    return may_change


def add_sources(actor: Actor, session: Session, client, usernames: list[str], office_slug: str | None,
                flags: SourceFlags) -> AddReport:
    """Follow accounts (or update the settings of followed ones) in office_slug (None: company-wide). Caller commits.

    The lookup is a call to X: the CLI and the poller call this, never a web node.
    """
    actor.check(_office_id(session, office_slug))
    report = ingest.add_sources(session, client, usernames, office_slug, flags=flags, may_change=_veto(actor))
    detail = f"office={office_slug or '-'} {' '.join(flags.words())}".strip()
    for verb, sources in (("add_source", report.added), ("update_source", report.updated)):
        for source in sources:
            audit(session, actor.name, verb, f"@{source.username}", detail)
    return report


def change_source(actor: Actor, session: Session, source: Source, office_slug: str | None,
                  flags: SourceFlags) -> Source:
    """Move a source (None: company-wide) and set its settings. Caller commits."""
    actor.check(source.office_id)
    office_id = _office_id(session, office_slug)
    actor.check(office_id)
    before = (source.office_id, SourceFlags.of(source))
    source.office_id = office_id
    flags.apply(source)
    if before != (office_id, flags):
        # SITE: a source's office and settings decide which reposts and quotes of it show anywhere.
        bump_content_version(session, [SITE])
        audit(session, actor.name, "change_source", f"@{source.username}",
              f"office={office_slug or '-'} {' '.join(flags.words())}".strip())
    return source


def set_paused(actor: Actor, session: Session, source: Source, paused: bool) -> Source:
    """Pause (not polled) or resume a source. Caller commits."""
    actor.check(source.office_id)
    if source.paused != paused:
        source.paused = paused
        if not paused:
            source.next_check_at = None  # due at once
        audit(session, actor.name, "pause_source" if paused else "resume_source", f"@{source.username}")
    return source


def stored_post_count(session: Session, source_id: int) -> int:
    """How many posts of the source are stored (they go when it is removed)."""
    return session.scalar(select(func.count()).select_from(Post).where(Post.source_id == source_id)) or 0


def remove_source(actor: Actor, session: Session, source: Source) -> int:
    """Stop following the account and delete its stored posts; returns how many went. Caller commits."""
    actor.check(source.office_id)
    count = stored_post_count(session, source.id)
    session.delete(source)
    bump_content_version(session, [SITE])
    audit(session, actor.name, "remove_source", f"@{source.username}", f"{count} posts deleted")
    return count


def source_named(session: Session, raw_username: str) -> Source:
    """The followed source of a username or profile URL, or SourceInputError."""
    username = clean_x_username(raw_username)
    source = session.scalar(select(Source).where(func.lower(Source.username) == username.lower()))
    if source is None:
        raise SourceInputError(f"@{username} is not followed")
    return source


# --- the console's requests to the poller ---------------------------------------------------------------------------

def queue_add(actor: Actor, session: Session, usernames: list[str], office_slug: str | None,
              flags: SourceFlags) -> list[SourceRequest]:
    """Ask the poller to add (or update) accounts: one pending request each. Caller commits."""
    office_id = _office_id(session, office_slug)
    actor.check(office_id)
    if not usernames:
        raise SourceInputError("give at least one X username or profile URL")
    if len(usernames) > MAX_AT_ONCE:
        raise SourceInputError(f"at most {MAX_AT_ONCE} accounts at once")
    requests = []
    for name in usernames:
        request = SourceRequest(kind="add", username=name, office_id=office_id, requested_by=actor.name,
                                state="pending", **{k: getattr(flags, k) for k in
                                                    ("staff_only", "review", "no_replies", "no_reposts")})
        session.add(request)
        requests.append(request)
    audit(session, actor.name, "queue_add_source", " ".join(f"@{n}" for n in usernames)[:100],
          f"office={office_slug or '-'} {' '.join(flags.words())}".strip())
    return requests


def queue_check(actor: Actor, session: Session, source: Source) -> SourceRequest:
    """Ask the poller to poll a source now. Caller commits."""
    actor.check(source.office_id)
    request = SourceRequest(kind="check", username=source.username, source_id=source.id,
                            office_id=source.office_id, requested_by=actor.name, state="pending")
    session.add(request)
    audit(session, actor.name, "queue_check_source", f"@{source.username}")
    return request


def requester(session: Session, name: str) -> Actor | None:
    """The Actor who queued a request, as they are now (None: the account is gone or switched off).

    Only console users queue requests, so a staff account named "cli" is that account, never the CLI.
    """
    user = session.scalar(select(User).where(User.username == name))
    return Actor.of(user) if user is not None and user.active else None
