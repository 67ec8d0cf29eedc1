"""X rate-limit windows kept in the database, so every process and machine honours them.

A window learned from a 429 or from x-rate-limit-remaining: 0 holds for every
later call until its reset: the next `poll`, `poll --all`, a restarted
`poll --loop`, a second machine, `sources add`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, not_, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from feedapp.models import RateWindow, utcnow
from feedapp.xapi.errors import until_words
from feedapp.xapi.limits import RateInfo, RateKey

log = logging.getLogger(__name__)

# A window with calls left is written at most this often per key: enough for `sources list`
# to show what is left, without one extra write per API call.
SNAPSHOT_EVERY = 30.0
KEEP_EXPIRED = timedelta(days=1)  # expired rows are deleted after this


class DbRateLimits:
    """The RateLimits store of feedapp.xapi, in the rate_windows table.

    Checks read the database before every call (another process may have learned a
    window a moment ago); a used-up window is also remembered here, as it cannot end
    before its reset. Writes never lower a newer window: within one window the
    smaller `remaining` wins, and a later reset replaces an earlier one.
    """

    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions
        self._blocked: dict[RateKey, datetime] = {}
        self._written: dict[RateKey, tuple[datetime, float]] = {}  # key -> (reset written, monotonic time)
        self._lock = threading.Lock()

    def blocked_until(self, key: RateKey) -> datetime | None:
        """The reset of key's used-up window, or None when a call may go out now."""
        now = utcnow()
        with self._lock:
            known = self._blocked.get(key)
        if known is not None and known > now:
            return known
        with self.sessions() as session:
            until = session.scalar(
                select(RateWindow.reset_at).where(
                    RateWindow.credential == key.credential, RateWindow.endpoint == key.endpoint,
                    RateWindow.remaining == 0, RateWindow.reset_at > now,
                )
            )
        if until is not None:
            with self._lock:
                self._blocked[key] = until
        return until

    def record(self, key: RateKey, info: RateInfo) -> None:
        """Store what a response said; a used-up window at once, others now and then."""
        with self._lock:
            if info.exhausted:
                self._blocked[key] = max(info.reset_at, self._blocked.get(key, info.reset_at))
            else:
                written = self._written.get(key)
                if written and written[0] == info.reset_at and time.monotonic() - written[1] < SNAPSHOT_EVERY:
                    return
            self._written[key] = (info.reset_at, time.monotonic())
        try:
            with self.sessions() as session:
                save_window(session, key, info)
                session.commit()
        except SQLAlchemyError:
            if info.exhausted:
                raise  # a limit we could not share must not be called through: the caller records the failure
            log.warning("rate window %s not saved (database error); it is only advisory", key.words())


def save_window(session: Session, key: RateKey, info: RateInfo) -> None:
    """Upsert key's window: a later reset replaces, the same reset keeps the smaller remaining.

    A used-up window is news whatever its reset (X's 429 may name an earlier reset than the
    window the last good answer described): it replaces any window that does not already
    block. An answer with calls left and the same or an earlier reset cannot reopen a used-up
    window: it comes from a call made before that one.
    """
    now = utcnow()
    row = {"credential": key.credential, "endpoint": key.endpoint, "reset_at": info.reset_at,
           "remaining": info.remaining, "limit": info.limit, "updated_at": now}
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = module.insert(RateWindow).values(row)
    current, new = RateWindow.__table__.c, stmt.excluded
    stored_blocks = and_(func.coalesce(current.remaining, -1) == 0, current.reset_at > now)
    newer = or_(
        new.reset_at > current.reset_at,
        and_(new.reset_at == current.reset_at,
             or_(current.remaining.is_(None), new.remaining <= current.remaining)),
        and_(new.remaining == 0, not_(stored_blocks)),
    )
    session.execute(stmt.on_conflict_do_update(
        index_elements=["credential", "endpoint"],
        set_={"reset_at": stmt.excluded.reset_at, "remaining": stmt.excluded.remaining,
              "limit": stmt.excluded.limit, "updated_at": stmt.excluded.updated_at},
        where=newer,
    ))
    if info.exhausted:  # rare: a good moment to forget windows of tokens long rotated away
        session.execute(delete(RateWindow).where(RateWindow.reset_at < now - KEEP_EXPIRED))


@dataclass(frozen=True)
class WindowState:
    """A stored window, for people: which credential and endpoint, until when, how many calls left."""

    key: RateKey
    reset_at: datetime
    remaining: int | None
    limit: int | None

    @property
    def blocked(self) -> bool:
        return self.remaining == 0

    def words(self) -> str:
        """'rate-limited until 14:05 UTC (bearer token, timelines)', or what is left of the window."""
        if self.blocked:
            return f"rate-limited until {until_words(self.reset_at)} ({self.key.words()})"
        left = f"{self.remaining} of {self.limit}" if self.limit else str(self.remaining)
        return f"{left} calls left until {until_words(self.reset_at)} ({self.key.words()})"


def current_windows(session: Session, now: datetime | None = None) -> list[WindowState]:
    """Windows that have not reset yet, used-up ones first."""
    now = now or utcnow()
    rows = session.scalars(select(RateWindow).where(RateWindow.reset_at > now))
    states = [WindowState(RateKey(r.credential, r.endpoint), r.reset_at, r.remaining, r.limit) for r in rows]
    return sorted(states, key=lambda w: (not w.blocked, w.key.credential, w.key.endpoint))
