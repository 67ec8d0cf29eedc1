"""The poll cycle: due sources, fetched concurrently, each outcome scheduled.

fetch.py reads one source's posts and says how it went; schedule.py turns that
into error counts and the next check. One source's failure is stored on that
source and never stops the others; rate-limit windows live in the database
(ratelimits.py), so no process calls through a limit another one learned.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from feedapp import mustread, readership
from feedapp.models import utcnow
from feedapp.moderation import expire_pins
from feedapp.queries import sources_due
from feedapp.xapi import XClient

from .coverage import Coverage
from .fetch import FAILED, RATE_LIMITED, READER_MISSING, TURNED_PROTECTED, Outcome, fetch_source
from .profiles import refresh_profiles, refresh_seen_accounts
from .ratelimits import DbRateLimits
from .report import CycleSummary, SourceResult
from .requests import serve_requests
from .schedule import Backoff, record_outcome
from .sources import mark_protected

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollSettings:
    """How often, how wide and how far back the poller reads."""

    interval: int = 300
    concurrency: int = 8
    backfill: int = 50
    backoff_max: int = 3600
    profile_refresh: int = 86400

    @classmethod
    def from_config(cls, config) -> PollSettings:
        """Settings from a mapping holding the FEEDAPP_* keys."""
        return cls(
            interval=int(config["FEEDAPP_POLL_INTERVAL"]),
            concurrency=max(1, int(config["FEEDAPP_POLL_CONCURRENCY"])),
            backfill=max(1, int(config["FEEDAPP_BACKFILL"])),
            backoff_max=int(config["FEEDAPP_BACKOFF_MAX"]),
            profile_refresh=int(config["FEEDAPP_PROFILE_REFRESH"]),
        )

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.interval, self.backoff_max)


@dataclass(frozen=True)
class PollJob:
    """What one poll of a source needs besides its id."""

    sessions: sessionmaker[Session]
    client: XClient  # used by one thread at a time (a requests.Session is not thread-safe)
    settings: PollSettings
    now: datetime  # the cycle's start: every source's next check counts from it


def poll_cycle(
    sessions: sessionmaker[Session],
    client: XClient,
    settings: PollSettings,
    *,
    everything: bool = False,
    now: datetime | None = None,
    stop: threading.Event | None = None,
    coverage: Coverage | None = None,
) -> CycleSummary:
    """Poll every due source (every source with everything=True) once; stop early when `stop` is set.

    With the filtered stream's coverage, sources whose posts the stream delivers are left out, and
    a source the stream is filling the gap of is not read twice at once.
    Raises only when the cycle cannot start (the list of sources cannot be read).
    """
    started = time.monotonic()
    now = now or utcnow()
    summary = CycleSummary()
    if not isinstance(client.limits, DbRateLimits):  # windows are always shared through the database
        shared = client.clone(DbRateLimits(sessions))
        try:
            return poll_cycle(sessions, shared, settings, everything=everything, now=now, stop=stop,
                              coverage=coverage)
        finally:
            shared.close()
    if stop is None or not stop.is_set():
        try:  # the console's requests first: an editor is waiting on them
            summary.notes.extend(serve_requests(sessions, client, settings, now=now))
        except SQLAlchemyError as exc:
            log.exception("console requests failed")
            summary.notes.append(f"console requests skipped: database error ({type(exc).__name__})")
    for refresh in (refresh_profiles, refresh_seen_accounts):
        try:
            refresh(sessions, client, settings.profile_refresh, now, summary)
        except SQLAlchemyError as exc:
            log.exception("profile check failed")
            summary.notes.append(f"profile check skipped: database error ({type(exc).__name__})")
    with sessions() as session:
        # Pins and must-reads past their end leave the feeds they were on (their pages' caches move on with them).
        expired = expire_pins(session, now) + mustread.expire(session, now)
        # A finished day's readership salt goes even when no feed answer came to replace it (now is UTC).
        if readership.drop_stale_salt(session, now.date()) or expired:
            session.commit()
        ids = sources_due(session, None if everything else now)
    if coverage is not None:
        streamed = {source_id for source_id in ids if coverage.covers(source_id)}
        if streamed:
            ids = [source_id for source_id in ids if source_id not in streamed]
            summary.notes.append(f"{len(streamed)} sources not polled: their posts arrive by the filtered stream")
    clients = ThreadClients(client)
    job = PollJob(sessions, client, settings, now)

    def run(source_id: int) -> SourceResult:
        if stop is not None and stop.is_set():
            return SourceResult(f"#{source_id}", skipped="not polled: this poller lost its lease")
        if coverage is not None and not coverage.claim(source_id):
            return SourceResult(f"#{source_id}", skipped="not polled: the filtered stream is filling its gap now")
        try:
            return poll_source(PollJob(job.sessions, clients.mine(), job.settings, job.now), source_id)
        except Exception as exc:  # noqa: BLE001 - a bug in the bookkeeping itself: still never the whole cycle
            log.exception("source_id=%s poll crashed", source_id)
            return SourceResult(f"#{source_id}", error=f"internal error: {type(exc).__name__} (see the log)")
        finally:
            if coverage is not None:
                coverage.release(source_id)

    try:
        with ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="poll") as pool:
            summary.results = list(pool.map(run, ids))
    finally:
        clients.close()
    summary.seconds = time.monotonic() - started
    return summary


def poll_source(job: PollJob, source_id: int, until_id: int | None = None) -> SourceResult:
    """Fetch one source (posts older than until_id, when given) and schedule its next check.

    Failures become data on the source, never exceptions.
    """
    outcome = fetch_source(job.sessions, job.client, source_id, job.settings.backfill, until_id)
    if outcome.status == TURNED_PROTECTED:
        try:
            # A public account that turned protected: staff-only at once, posts already stored included.
            mark_protected(job.sessions, source_id)
            log.warning("source=%s turned protected on X; now staff-only", outcome.username)
        except SQLAlchemyError as exc:
            log.exception("source=%s could not be marked protected", outcome.username)
            outcome.end(FAILED, f"database error while marking it protected: {type(exc).__name__} (see the log)")
        else:
            if job.client.settings.has_user_auth:
                outcome = outcome.then(fetch_source(job.sessions, job.client, source_id, job.settings.backfill))
            else:
                outcome.end(FAILED, READER_MISSING, backoff=False)
    outcome = record_outcome(job.sessions, source_id, outcome, job.now, job.settings.backoff)
    return _result(source_id, outcome)


def _result(source_id: int, outcome: Outcome) -> SourceResult:
    result = SourceResult(outcome.username or f"#{source_id}", new_posts=outcome.new_posts,
                          requests=outcome.requests, post_reads=outcome.post_reads, user_reads=outcome.user_reads)
    if outcome.skipped:
        result.skipped = outcome.reason
    elif outcome.status in (FAILED, RATE_LIMITED):
        result.error = outcome.reason
    return result


class ThreadClients:
    """One XClient, so one HTTP session, per worker thread; all closed at the end of the cycle."""

    def __init__(self, template: XClient):
        self._template = template
        self._local = threading.local()
        self._made: list[XClient] = []
        self._lock = threading.Lock()

    def mine(self) -> XClient:
        """This thread's client (made on first use)."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._template.clone()
            with self._lock:
                self._made.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            for client in self._made:
                client.close()
            self._made.clear()
