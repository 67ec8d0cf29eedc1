"""The poll cycle: due sources, fetched concurrently, stored page by page.

One source's failure is stored on that source (error_count, last_error, next
check pushed back) and never stops the others. Position on the timeline is
kept so an interrupted catch-up resumes with no gap and no duplicate.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from feedapp.models import Post, Source, utcnow
from feedapp.queries import sources_due
from feedapp.xapi import RateLimited, SourceError, XClient, XError
from feedapp.xapi.types import User

from .profiles import refresh_profiles
from .report import CycleSummary, SourceResult
from .store import bump_content_version, record_reads, store_posts

log = logging.getLogger(__name__)

MAX_PAGES = 40  # X serves at most the 3,200 newest posts of a timeline: 32 pages of 100


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


class RateGate:
    """Rate-limit windows shared by one cycle's threads: app auth and user auth count apart."""

    def __init__(self):
        self._until: dict[bool, datetime] = {}
        self._lock = threading.Lock()

    def block(self, user_auth: bool, until: datetime) -> None:
        with self._lock:
            self._until[user_auth] = max(until, self._until.get(user_auth, until))

    def blocked_until(self, user_auth: bool, now: datetime) -> datetime | None:
        with self._lock:
            until = self._until.get(user_auth)
        return until if until and until > now else None


def poll_cycle(
    sessions: sessionmaker[Session],
    client: XClient,
    settings: PollSettings,
    *,
    everything: bool = False,
    now: datetime | None = None,
) -> CycleSummary:
    """Poll every due source (every source with everything=True) once."""
    started = time.monotonic()
    now = now or utcnow()
    summary = CycleSummary()
    refresh_profiles(sessions, client, settings.profile_refresh, now, summary)
    with sessions() as session:
        ids = sources_due(session, None if everything else now)
    gate = RateGate()
    with ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="poll") as pool:
        summary.results = list(pool.map(lambda sid: poll_source(sessions, client, sid, settings, gate, now), ids))
    summary.seconds = time.monotonic() - started
    return summary


def poll_source(
    sessions: sessionmaker[Session],
    client: XClient,
    source_id: int,
    settings: PollSettings,
    gate: RateGate | None = None,
    now: datetime | None = None,
) -> SourceResult:
    """Fetch one source's new posts; failures become data on the source."""
    gate = gate or RateGate()
    now = now or utcnow()
    with sessions() as session:
        source = session.get(Source, source_id)
        if source is None:
            return SourceResult(f"#{source_id}", skipped="removed while the cycle ran")
        result = SourceResult(source.username)
        source.last_polled_at = now
        user_auth = source.protected
        if user_auth and not client.settings.has_user_auth:
            reason = ("protected on X: skipped until the OAuth 1.0a reader account is configured "
                      "(FEEDAPP_X_CONSUMER_KEY, FEEDAPP_X_CONSUMER_SECRET, FEEDAPP_X_ACCESS_TOKEN, FEEDAPP_X_ACCESS_TOKEN_SECRET)")
            _mark_failed(source, reason, now, settings, backoff=False)
            result.skipped = reason
            session.commit()
            return result
        blocked = gate.blocked_until(user_auth, now)
        if blocked:
            source.next_check_at = blocked
            result.skipped = f"rate limited; next call after {blocked:%H:%M:%S} UTC"
            session.commit()
            return result
        try:
            try:
                _catch_up(session, client, source, settings, result, gate, user_auth)
            except SourceError as exc:
                if exc.kind != "not-authorized" or source.protected:
                    raise
                # A public account that turned protected: staff-only from now on, posts already stored included.
                session.rollback()
                source.protected = True
                bump_content_version(session)
                session.commit()
                log.warning("source=%s turned protected on X; now staff-only", source.username)
                if not client.settings.has_user_auth:
                    raise
                _catch_up(session, client, source, settings, result, gate, True)
        except RateLimited as exc:
            session.rollback()
            gate.block(source.protected, exc.reset_at)
            source.next_check_at = exc.reset_at
            source.last_error, source.last_error_at = str(exc), now
            result.error = str(exc)
        except XError as exc:
            session.rollback()
            _mark_failed(source, str(exc), now, settings)
            result.error = str(exc)
            log.warning("source=%s poll failed: %s", source.username, exc)
        except Exception as exc:  # noqa: BLE001 - a bug or a database fault must not stop other sources
            log.exception("source=%s poll crashed", source.username)
            session.rollback()
            _mark_failed(source, f"internal error: {type(exc).__name__}", now, settings)
            result.error = f"internal error: {type(exc).__name__} (see the log)"
        else:
            source.error_count, source.last_error = 0, None
            source.last_success_at = now
            source.next_check_at = now + timedelta(seconds=settings.interval)
        session.commit()
        return result


def _catch_up(session, client, source, settings, result, gate, user_auth) -> None:
    """Finish an interrupted catch-up, then read everything newer than since_id."""
    if source.gap_until_id is not None:
        limit = None if source.since_id else _backfill_left(session, source, settings)
        if limit != 0:
            _walk(session, client, source, result, gate, user_auth, until=source.gap_until_id, limit=limit)
        _close_gap(session, source)
    _walk(session, client, source, result, gate, user_auth, until=None,
          limit=None if source.since_id else settings.backfill)
    _close_gap(session, source)


def _walk(session, client, source, result, gate, user_auth, *, until, limit) -> None:
    """Page back from the newest post after since_id (or before until), storing each page.

    After each stored page the oldest stored id is saved, in the same
    transaction, as gap_until_id: a failure on the next page loses nothing.
    """
    owner = User(id=source.x_id, username=source.username, name=source.display_name,
                 avatar_url=source.avatar_url, protected=source.protected)
    token, seen = None, 0
    for _ in range(MAX_PAGES):
        want = 100 if limit is None else min(100, limit - seen)
        result.requests += 1  # a failed call counts against the rate limit too
        fetched = client.timeline_page(
            source.x_id, since_id=source.since_id, until_id=until, max_results=want,
            pagination_token=token, user_auth=user_auth, owner=owner,
        )
        page = fetched.page
        new_ids = store_posts(session, source, page.posts)
        result.new_posts += len(new_ids)
        result.post_reads += record_reads(session, "post", fetched.post_ids)
        result.user_reads += record_reads(session, "user", fetched.user_ids)
        if page.posts:
            ids = [int(p.id) for p in page.posts]
            if source.gap_newest_id is None:
                source.gap_newest_id = max(ids)
            source.gap_until_id = until = min(ids)
        session.commit()
        seen += len(page.posts)
        if fetched.rate_reset_at:
            gate.block(user_auth, fetched.rate_reset_at)
        if not page.next_token or not page.posts or (limit is not None and seen >= limit):
            return
        if fetched.rate_reset_at:
            # That call used the window's last request: stop here, the gap is saved.
            raise RateLimited(fetched.rate_reset_at, "rate limit window used up")
        token = page.next_token
    log.warning("source=%s catch-up stopped after %d pages", source.username, MAX_PAGES)


def _close_gap(session, source) -> None:
    """The catch-up finished: everything up to gap_newest_id is stored."""
    if source.gap_newest_id is not None:
        source.since_id = max(source.since_id or 0, source.gap_newest_id)
    source.gap_until_id = source.gap_newest_id = None
    session.commit()


def _backfill_left(session, source, settings) -> int:
    stored = session.scalar(select(func.count()).select_from(Post).where(Post.source_id == source.id))
    return max(0, settings.backfill - stored)


def _mark_failed(source: Source, reason: str, now: datetime, settings: PollSettings, backoff: bool = True) -> None:
    """Store the failure and push the next check back exponentially, with jitter."""
    source.error_count = (source.error_count or 0) + 1
    source.last_error, source.last_error_at = reason[:1000], now
    delay = settings.interval
    if backoff:
        delay = min(settings.backoff_max, settings.interval * 2 ** (source.error_count - 1))
        delay *= random.uniform(0.75, 1.25)  # jitter keeps failed sources from retrying in lockstep
    source.next_check_at = now + timedelta(seconds=delay)
