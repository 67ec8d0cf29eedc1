"""What every request needs to know about the content, read at most once a second per worker.

The scopes' content versions (feedapp.content_scopes) and the office list change
only when the poller or an admin writes. Reading them from the database on every
request would make a 304 cost as much as a render; instead each worker re-reads
them once FEEDAPP_STATE_TTL has passed, so a change shows within that many seconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime

from flask import Flask, current_app
from sqlalchemy import select

from feedapp.content_scopes import EVERY_OFFICE, reader_scopes
from feedapp.db import sessions
from feedapp.manage.branding import Branding, read_branding
from feedapp.models import Office, ScopeVersion, SiteSetting

NEVER = datetime.fromtimestamp(0, timezone.utc)  # changed_at of a scope nothing was written to yet


@dataclass(frozen=True)
class OfficeInfo:
    """An office as pages need it (plain data, safe to share between threads)."""

    id: int
    slug: str
    name: str
    language: str | None = None  # its feeds' language; None: the site's default


@dataclass(frozen=True)
class Validators:
    """What a response's ETag and Last-Modified come from: the versions of the scopes it shows."""

    scopes: tuple[str, ...]
    versions: tuple[int, ...]  # of scopes, in order (0: never written)
    changed_at: datetime  # the newest change among scopes
    last_modified: str  # changed_at as an HTTP date, formatted once


@dataclass(frozen=True)
class ContentState:
    """Each scope's content version and when it changed, the offices, the branding and the installation's identity.

    A new ContentState is made only when a version changed, so `state is old_state`
    says "nothing changed" without looking at any version.
    """

    versions: dict[str, int] = field(default_factory=dict)  # scope -> version; a missing scope is 0
    changed: dict[str, datetime] = field(default_factory=dict)  # scope -> when it last changed
    installation_id: str = ""  # a UUID minted once per installation (site_settings), for feed ids
    offices: tuple[OfficeInfo, ...] = ()
    by_slug: dict[str, OfficeInfo] = field(default_factory=dict)
    by_id: dict[int, OfficeInfo] = field(default_factory=dict)
    branding: Branding = Branding()  # the console's name, short name, theme colour and logo etags (SITE scope)
    _validators: dict[tuple, Validators] = field(default_factory=dict, compare=False, repr=False)

    def validators(self, office: str | None, staff: bool, company: bool = True) -> Validators:
        """The validators of a response showing company-wide posts plus office's (a slug, None, or EVERY_OFFICE).

        staff: the reader sees staff-only posts too (signed in, or a private feed token);
        company False: without the company-wide posts (an office-only feed; with no
        office, a response that shows no post: the site scope only).
        """
        key = (office, staff, company)
        found = self._validators.get(key)  # made once per state; a dict read needs no lock
        if found is None:
            if office == EVERY_OFFICE:
                office_ids = (None, *self.by_id)
            else:
                info = self.by_slug.get(office) if office is not None else None
                office_ids = ((None,) if company else ()) + (() if info is None else (info.id,))
            scopes = reader_scopes(office_ids, staff)
            changed_at = max(self.changed.get(scope, NEVER) for scope in scopes)
            found = Validators(scopes, self.versions_of(scopes), changed_at,
                               format_datetime(changed_at.replace(microsecond=0), usegmt=True))
            self._validators[key] = found
        return found

    def versions_of(self, scopes: tuple[str, ...]) -> tuple[int, ...]:
        """The current versions of scopes, in order."""
        versions = self.versions
        return tuple(versions.get(scope, 0) for scope in scopes)


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
            rows = session.execute(select(ScopeVersion.scope, ScopeVersion.version, ScopeVersion.changed_at)).all()
            versions = {scope: version for scope, version, _ in rows}
            if old is not None and old.versions == versions:
                return old
            offices = tuple(OfficeInfo(o.id, o.slug, o.name, o.language)
                            for o in session.scalars(select(Office).order_by(Office.slug)))
            installation = session.scalar(select(SiteSetting.value).where(SiteSetting.key == "installation_id"))
            branding = read_branding(session)
        return ContentState(versions, {scope: changed_at for scope, _, changed_at in rows}, installation or "",
                            offices, {o.slug: o for o in offices}, {o.id: o for o in offices}, branding)


def init_app(app: Flask) -> None:
    """Attach the per-worker state cache."""
    app.extensions["feedapp.state"] = StateCache(app, float(app.config["FEEDAPP_STATE_TTL"]))


def content_state() -> ContentState:
    """The content state for this request."""
    return current_app.extensions["feedapp.state"].get()
