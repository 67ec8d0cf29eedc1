"""Fetching one source: its new posts, page by page, and an Outcome saying how it ended.

Fetching writes posts and the source's timeline position, nothing else; what
the outcome means for the schedule (error count, next check) is schedule.py's
job. Each page is stored in one transaction together with the position, so an
interrupted catch-up resumes below the oldest stored post: no gap, no duplicate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from feedapp.models import Post, Source
from feedapp.xapi import RateLimited, SourceError, XClient, XError
from feedapp.xapi.types import XPost, XUser

from .store import record_reads, store_posts

log = logging.getLogger(__name__)

MAX_PAGES = 40  # X serves at most the 3,200 newest posts of a timeline: 32 pages of 100
READER_MISSING = (
    "protected on X: skipped until the OAuth 1.0a reader account is configured (FEEDAPP_X_CONSUMER_KEY, "
    "FEEDAPP_X_CONSUMER_SECRET, FEEDAPP_X_ACCESS_TOKEN, FEEDAPP_X_ACCESS_TOKEN_SECRET)"
)

# How a fetch ended.
OK = "ok"
RATE_LIMITED = "rate-limited"  # retry_at: the window's reset
FAILED = "failed"  # reason; backoff: exponential (True) or the plain interval (False)
TURNED_PROTECTED = "turned-protected"  # a public account refused us: it is protected now
GONE = "gone"  # the source was removed while the cycle ran


@dataclass
class Outcome:
    """How fetching one source ended, and what it cost."""

    status: str = OK
    username: str | None = None  # for the report; None when the source is gone
    reason: str | None = None
    retry_at: datetime | None = None
    backoff: bool = True
    skipped: bool = False  # stopped before a call that would fail (known rate limit, missing credentials)
    new_posts: int = 0
    requests: int = 0
    post_reads: int = 0
    user_reads: int = 0

    def end(self, status: str, reason: str | None = None, **kw) -> Outcome:
        """Set how it ended, keeping what was stored and counted so far."""
        self.status, self.reason = status, reason
        for name, value in kw.items():
            setattr(self, name, value)
        return self

    def then(self, later: Outcome) -> Outcome:
        """This outcome's counts plus a later fetch of the same source, ending as that one did."""
        for name in ("new_posts", "requests", "post_reads", "user_reads"):
            setattr(later, name, getattr(later, name) + getattr(self, name))
        later.username = later.username or self.username
        return later


def is_reply_to_other(post: XPost) -> bool:
    """A reply to another account (left out for no_replies sources); an account's reply to itself is a thread part."""
    return not post.repost_of_id and bool(post.reply_to_user_id) and post.reply_to_user_id != post.author.id


def fetch_source(sessions: sessionmaker[Session], client: XClient, source_id: int, backfill: int,
                 until_id: int | None = None) -> Outcome:
    """Read one source's new posts (older than until_id, when given) into the database; never raises."""
    outcome, protected = Outcome(), False
    try:
        with sessions() as session:
            source = session.get(Source, source_id)
            if source is None:
                return outcome.end(GONE, "removed while the cycle ran", skipped=True)
            outcome.username, protected = source.username, source.protected
            if protected and not client.settings.has_user_auth:
                return outcome.end(FAILED, READER_MISSING, backoff=False, skipped=True)
            try:
                TimelineReader(session, client, source, backfill, outcome, until_id).catch_up()
            except BaseException:
                session.rollback()  # the unfinished page only: finished ones are committed with their position
                raise
    except RateLimited as exc:
        outcome.end(RATE_LIMITED, str(exc), retry_at=exc.reset_at, skipped=not exc.called)
    except SourceError as exc:
        if exc.kind == "not-authorized" and not protected:
            outcome.end(TURNED_PROTECTED, str(exc))
        else:
            outcome.end(FAILED, str(exc))
    except XError as exc:
        log.warning("source=%s poll failed: %s", outcome.username, exc)
        outcome.end(FAILED, str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug or a database fault must not stop other sources
        log.exception("source=%s poll crashed", outcome.username or f"#{source_id}")
        outcome.end(FAILED, f"internal error: {type(exc).__name__} (see the log)")
    return outcome


@dataclass
class TimelineReader:
    """One source's catch-up: the session, client and source it works with, and the running outcome."""

    session: Session
    client: XClient
    source: Source
    backfill: int
    outcome: Outcome = field(default_factory=Outcome)
    until_id: int | None = None  # the filtered stream's first post: what it delivered is not read again

    def catch_up(self) -> None:
        """Finish an interrupted catch-up, then read everything newer than since_id (and older than until_id)."""
        source = self.source
        if source.gap_until_id is not None:
            limit = None if source.since_id else self._backfill_left()
            if limit != 0:
                self._walk(until=source.gap_until_id, limit=limit)
            self._close_gap()
            self.session.commit()
        self._walk(until=self.until_id, limit=None if source.since_id else self.backfill)

    def _walk(self, *, until: int | None, limit: int | None) -> None:
        """Page back from the newest post after since_id (or before until), storing each page.

        After each stored page the oldest stored id is saved, in the same
        transaction, as gap_until_id: a failure on the next page loses nothing.
        The last page's transaction also closes the gap (one write, not two).
        """
        source, outcome = self.source, self.outcome
        owner = XUser(id=source.x_id, username=source.username, name=source.display_name,
                     avatar_url=source.avatar_url, protected=source.protected)
        token, seen = None, 0
        for _ in range(MAX_PAGES):
            want = 100 if limit is None else min(100, limit - seen)
            before = self.client.requests_made
            try:
                fetched = self.client.timeline_page(
                    source.x_id, since_id=source.since_id, until_id=until, max_results=want,
                    pagination_token=token, user_auth=source.protected, owner=owner,
                    exclude_reposts=source.no_reposts,
                )
            finally:
                outcome.requests += self.client.requests_made - before  # a failed call counts against the limit too
            page = fetched.page
            # Filtered posts are still read (and billed), and still move the position below: never fetched again.
            kept = [p for p in page.posts if not (source.no_replies and is_reply_to_other(p))]
            outcome.new_posts += len(store_posts(self.session, source, kept))
            outcome.post_reads += record_reads(self.session, "post", fetched.post_ids)
            outcome.user_reads += record_reads(self.session, "user", fetched.user_ids)
            if page.posts:
                ids = [int(p.id) for p in page.posts]
                if source.gap_newest_id is None:
                    source.gap_newest_id = max(ids)
                source.gap_until_id = until = min(ids)
            seen += len(page.posts)
            last = not page.next_token or not page.posts or (limit is not None and seen >= limit)
            if last:
                self._close_gap()
            self.session.commit()
            if last:
                return
            token = page.next_token
        log.warning("source=%s catch-up stopped after %d pages", source.username, MAX_PAGES)
        self._close_gap()
        self.session.commit()

    def _close_gap(self) -> None:
        """The catch-up finished: everything up to gap_newest_id is stored (the caller commits)."""
        source = self.source
        if source.gap_newest_id is not None:
            source.since_id = max(source.since_id or 0, source.gap_newest_id)
        source.gap_until_id = source.gap_newest_id = None

    def _backfill_left(self) -> int:
        stored = self.session.scalar(select(func.count()).select_from(Post).where(Post.source_id == self.source.id))
        return max(0, self.backfill - stored)
