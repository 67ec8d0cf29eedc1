"""What every request needs to know about the content, read at most once a second per worker.

The content version and the office list change only when the poller or an
admin writes. Reading them from the database on every request would make a
304 cost as much as a render; instead each worker re-reads them once
FEEDAPP_STATE_TTL has passed, so a change shows within that many seconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime

from flask import Flask, current_app
from sqlalchemy import select

from feedapp.db import sessions
from feedapp.models import ContentVersion, Office, SiteSetting


@dataclass(frozen=True)
class OfficeInfo:
    """An office as pages need it (plain data, safe to share between threads)."""

    id: int
    slug: str
    name: str
    language: str | None = None  # its feeds' language; None: the site's default


@dataclass(frozen=True)
class ContentState:
    """The content version, when it changed, the offices and the installation's identity."""

    version: int
    changed_at: datetime
    last_modified: str  # changed_at as an HTTP date, formatted once
    installation_id: str = ""  # a UUID minted once per installation (site_settings), for feed ids
    offices: tuple[OfficeInfo, ...] = ()
    by_slug: dict[str, OfficeInfo] = field(default_factory=dict)
    by_id: dict[int, OfficeInfo] = field(default_factory=dict)


class StateCache:
    """ContentState per worker, refreshed after ttl seconds; one refresh at a time."""

    def __init__(self, app: Flask, ttl: float, clock=time.monotonic):
        self.app, self.ttl, self.clock = app, ttl, clock
        self._state: ContentState | None = None
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def get(self) -> ContentState:
        """The current state, re-read when older than ttl."""
        if self._state is not None and self.clock() - self._read_at < self.ttl:
            return self._state
        with self._lock:
            if self._state is None or self.clock() - self._read_at >= self.ttl:
                self._state = self._read(self._state)
                self._read_at = self.clock()
            return self._state

    def _read(self, old: ContentState | None) -> ContentState:
        with sessions(self.app)() as session:
            row = session.execute(select(ContentVersion.version, ContentVersion.changed_at).where(ContentVersion.id == 1)).first()
            version, changed_at = row if row else (0, datetime.fromtimestamp(0, timezone.utc))
            if old is not None and old.version == version:
                return old
            offices = tuple(OfficeInfo(o.id, o.slug, o.name, o.language)
                            for o in session.scalars(select(Office).order_by(Office.slug)))
            installation = session.scalar(select(SiteSetting.value).where(SiteSetting.key == "installation_id"))
        http_date = format_datetime(changed_at.replace(microsecond=0), usegmt=True)
        return ContentState(version, changed_at, http_date, installation or "", offices,
                            {o.slug: o for o in offices}, {o.id: o for o in offices})


def init_app(app: Flask) -> None:
    """Attach the per-worker state cache."""
    app.extensions["feedapp.state"] = StateCache(app, float(app.config["FEEDAPP_STATE_TTL"]))


def content_state() -> ContentState:
    """The content state for this request."""
    return current_app.extensions["feedapp.state"].get()
