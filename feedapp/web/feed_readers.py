"""Count the distinct readers of each feed per day, for every answer a feed gets (304s and the fast path's too).

WSGI middleware around the fast path (feedapp.web.fastpath), which answers repeat fetches before Flask runs:
an after_request hook would miss most of them. A successful answer (200 or 304) to a GET or HEAD of a feed
counts its client once per UTC day: an aggregator by the subscribers its User-Agent reports, anyone else by
a keyed hash of its address and User-Agent under the day's salt (feedapp.readership). Each worker remembers
what it already wrote today, so a reader polling every few minutes costs a set lookup, not a write.
"""

from __future__ import annotations

import logging
import re
import threading
from datetime import date, datetime, timezone

from sqlalchemy.exc import SQLAlchemyError

from feedapp import readership

from .limits import group_address

log = logging.getLogger(__name__)

FEED_PATHS = (
    (re.compile(r"^/feed\.(?:rss|atom|json)$"), lambda m: "company"),
    (re.compile(r"^/offices/([^/]{1,60})/feed\.(?:rss|atom|json)$"), lambda m: f"office:{m.group(1)}"),
    (re.compile(r"^/offices/([^/]{1,60})/local/feed\.(?:rss|atom|json)$"), lambda m: f"local:{m.group(1)}"),
    # One key for every private feed: which person's feed it was is never kept.
    (re.compile(r"^/private/[^/]+/feed\.(?:rss|atom|json)$"), lambda m: "private"),
)
REMEMBERED = 100_000  # (feed, client) pairs a worker remembers per day before starting over (writes are idempotent)


def feed_key(path: str) -> str | None:
    """Which feed a request path is ("company", "office:SLUG", "local:SLUG", "private"), or None."""
    if not path.endswith((".rss", ".atom", ".json")):
        return None
    for pattern, key in FEED_PATHS:
        match = pattern.match(path)
        if match:
            return key(match)
    return None


def utc_today() -> date:
    """Today in UTC."""
    return datetime.now(timezone.utc).date()


class FeedReaders:
    """WSGI middleware: note each feed answer's client (see the module's docstring)."""

    def __init__(self, wsgi_app, session_factory, today=utc_today):
        self.wsgi_app, self.session_factory, self.today = wsgi_app, session_factory, today
        self.lock = threading.Lock()
        self.day: date | None = None
        self.salt = b""
        self.seen: set[tuple[str, str]] = set()
        self.subscribers: dict[tuple[str, str], int] = {}

    def __call__(self, environ, start_response):
        feed = feed_key(environ.get("PATH_INFO", "")) if environ.get("REQUEST_METHOD") in ("GET", "HEAD") else None
        if feed is None:
            return self.wsgi_app(environ, start_response)
        status = []

        def noting(code, headers, exc_info=None):
            status.append(code[:3])
            return start_response(code, headers, exc_info)

        result = self.wsgi_app(environ, noting)
        if status and status[-1] in ("200", "304"):
            try:
                self.note(feed, environ.get("REMOTE_ADDR") or "", environ.get("HTTP_USER_AGENT") or "")
            except SQLAlchemyError as exc:  # a count is never worth a failed feed
                log.warning("feed reader not counted feed=%s error=%s", feed, type(exc).__name__)
        return result

    def note(self, feed: str, address: str, user_agent: str) -> None:
        """Count one answer of feed to a client, today."""
        today = self.today()
        aggregator = readership.parse_aggregator(user_agent)
        if aggregator is not None and aggregator[1] is not None:
            name, n = aggregator
            if self.day == today and self.subscribers.get((feed, name), -1) >= n:
                return
            with self.session_factory() as session:
                readership.record_subscribers(session, today, feed, name, n)
                session.commit()
            with self.lock:
                if self.day == today:
                    self.subscribers[(feed, name)] = max(n, self.subscribers.get((feed, name), 0))
            return
        salt = self._salt(today)
        client = readership.client_hash(salt, feed, group_address(address), user_agent)
        if (feed, client) in self.seen:
            return
        with self.session_factory() as session:
            readership.record_feed_reader(session, today, feed, client)
            session.commit()
        with self.lock:
            if self.day == today:
                if len(self.seen) >= REMEMBERED:
                    self.seen.clear()
                self.seen.add((feed, client))

    def _salt(self, today: date) -> bytes:
        if self.day == today:
            return self.salt
        with self.lock:
            if self.day != today:
                with self.session_factory() as session:
                    self.salt = readership.daily_salt(session, today)
                # Yesterday's salt, hashes and subscriber counts go from memory with the day.
                self.day, self.seen, self.subscribers = today, set(), {}
            return self.salt
