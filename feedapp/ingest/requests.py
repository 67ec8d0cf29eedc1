"""The console's requests to the poller (SourceRequest rows): add an account, check a source now.

Web nodes hold no X credentials, so the console leaves a row and the poller,
holding the lease, runs it here: "add" through the same add_sources as the CLI
(then a first poll of the account), "check" through poll_source. Each request
ends "done" (outcome: the account's name, or what the check found) or "failed"
(outcome: X's reason in words). The scope is checked again with the requester's
role as it is now.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from datetime import timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from feedapp.models import Office, SourceRequest, utcnow
from feedapp.roles import Forbidden
from feedapp.xapi import XClient

from .fetch import READER_MISSING
from .ratelimits import DbRateLimits
from .sources import SourceFlags, SourceInputError

log = logging.getLogger(__name__)

PENDING, DONE, FAILED = "pending", "done", "failed"
KEEP = timedelta(days=30)
# A claim (done_at on a pending request) older than this is a poller that died mid-request: taken again.
CLAIM_STALE = timedelta(minutes=15)
NO_READER = ("protected on X and no reader account: followed, but not read until the OAuth 1.0a reader "
             "account is configured")


def has_pending(sessions: sessionmaker[Session]) -> bool:
    """Whether any request waits (one indexed lookup: the poller asks every couple of seconds)."""
    with sessions() as session:
        return session.scalar(select(SourceRequest.id).where(SourceRequest.state == PENDING).limit(1)) is not None


def serve_requests(sessions: sessionmaker[Session], client: XClient, settings, *,
                   now=None, echo: Callable[[str], None] | None = None) -> list[str]:
    """Run every pending request, oldest first; returns a line for each. Never raises for one request's failure."""
    from .poll import PollJob  # poll imports this module

    if not isinstance(client.limits, DbRateLimits):  # rate windows are shared through the database
        shared = client.clone(DbRateLimits(sessions))
        try:
            return serve_requests(sessions, shared, settings, now=now, echo=echo)
        finally:
            shared.close()
    with sessions() as session:
        # Answered requests are kept KEEP for the console's list, then go (the table stays small).
        session.execute(delete(SourceRequest).where(SourceRequest.state != PENDING,
                                                    SourceRequest.done_at < (now or utcnow()) - KEEP))
        session.commit()
        ids = list(session.scalars(select(SourceRequest.id).where(SourceRequest.state == PENDING)
                                   .order_by(SourceRequest.id)))
    lines = []
    for request_id in ids:
        job = PollJob(sessions, client, settings, now or utcnow())
        try:
            line = _serve(job, request_id)
        except SQLAlchemyError as exc:
            log.exception("request=%s failed on a database error", request_id)
            _release(sessions, request_id)
            line = f"request #{request_id}: database error ({type(exc).__name__}); retried next time"
        if line:
            lines.append(line)
            if echo:
                echo(line)
    return lines


def _serve(job, request_id: int) -> str | None:
    from feedapp.manage import sources as manage

    with job.sessions() as session:
        if not _claim(session, request_id):
            return None  # removed (its source or office went), served, or being served by another poller
        request = session.get(SourceRequest, request_id)
        username = request.username
        actor = manage.requester(session, request.requested_by)
        if actor is None:
            return _finish(session, request, FAILED, "the account that asked is switched off or gone")
        if request.kind == "check":
            return _check(job, session, request, actor)
        slug = session.scalar(select(Office.slug).where(Office.id == request.office_id)) if request.office_id else None
        try:
            report = manage.add_sources(actor, session, job.client, [request.username], slug, SourceFlags.of(request))
        except (Forbidden, SourceInputError) as exc:
            session.rollback()
            return _finish(session, request, FAILED, str(exc) or "outside your office")
        if report.refused:
            session.rollback()  # the audit rows of nothing
            request = session.get(SourceRequest, request_id)
            return _finish(session, request, FAILED, report.refused[0][1])
        source = (report.added + report.updated)[0]
        session.flush()
        request.source_id = source.id
        if source.protected and not job.client.settings.has_user_auth:
            return _finish(session, request, FAILED, NO_READER)
        _finish(session, request, DONE, source.display_name or source.username)
        source_id = source.id
    # A first poll at once: the editor sees the account's posts, or why not, without waiting for the next cycle.
    from .poll import poll_source

    result = poll_source(job, source_id)
    return f"request #{request_id} (add @{username}): done; {result.line()}"


def _claim(session: Session, request_id: int) -> bool:
    """Take a pending request for this poller, committed before any call to X; False: not ours to run.

    One conditional UPDATE: of two pollers (a lease that lapsed mid-cycle lets a second one in), the
    second matches no row once the first committed, so a request never runs twice. The claim is
    done_at on a row still "pending" (the console shows it waiting, as it is); _finish overwrites it.
    """
    now = utcnow()
    taken = session.execute(
        update(SourceRequest)
        .where(SourceRequest.id == request_id, SourceRequest.state == PENDING,
               or_(SourceRequest.done_at.is_(None), SourceRequest.done_at < now - CLAIM_STALE))
        .values(done_at=now)).rowcount
    session.commit()
    return taken == 1


def _release(sessions: sessionmaker[Session], request_id: int) -> None:
    """Give a claim back after a database error, so the next cycle retries it (else it waits CLAIM_STALE)."""
    try:
        with sessions() as session:
            session.execute(update(SourceRequest).where(SourceRequest.id == request_id, SourceRequest.state == PENDING)
                            .values(done_at=None))
            session.commit()
    except SQLAlchemyError:
        log.warning("request=%s claim not released (database error); taken again after %s", request_id, CLAIM_STALE)


def _check(job, session: Session, request: SourceRequest, actor) -> str:
    from .poll import poll_source

    from feedapp.models import Source

    source = session.get(Source, request.source_id) if request.source_id else None
    if source is None:
        return _finish(session, request, FAILED, "no longer followed")
    if not actor.may_edit(source.office_id):
        return _finish(session, request, FAILED, "outside your office")
    session.commit()  # nothing held while polling
    result = poll_source(job, source.id)
    request = session.get(SourceRequest, request.id)
    if request is None:
        return f"check @{result.username}: {result.line()}"
    if result.error or result.skipped:
        reason = result.error or result.skipped
        if reason == READER_MISSING:
            reason = "protected on X and no reader account is configured"
        return _finish(session, request, FAILED, reason, f"check: {result.line()}")
    words = f"{result.new_posts} new post{'s' if result.new_posts != 1 else ''}"
    return _finish(session, request, DONE, words, f"check: {result.line()}")


def _finish(session: Session, request: SourceRequest, state: str, outcome: str, line: str | None = None) -> str:
    request.state, request.outcome, request.done_at = state, outcome[:1000], utcnow()
    session.commit()
    return f"request #{request.id} ({request.kind} @{request.username}): {line or f'{state}: {outcome}'}"
