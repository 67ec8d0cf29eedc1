"""A lease row in the database so that one poller runs at a time, across machines.

Works the same on SQLite and PostgreSQL: taking the lease is one conditional
UPDATE (or the INSERT of the row), so two pollers can never both succeed.
A LeaseKeeper renews it from a thread while its holder works, so a cycle that
runs longer than the lease never lets a second poller in; the lease itself can
then stay short, and a crashed poller blocks the next one only briefly.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from feedapp.models import Lease, utcnow

log = logging.getLogger(__name__)

POLLER = "poller"
TTL = timedelta(seconds=120)  # how long a crashed poller keeps others out; renewed every TTL / 4 while alive


def holder_name() -> str:
    """Who we are, as shown to a second poller: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class LeaseBusy:
    """The lease is held by someone else until expires_at."""

    holder: str
    expires_at: datetime

    def __str__(self) -> str:
        return f"another poller ({self.holder}) holds the lease until {self.expires_at:%H:%M:%S} UTC"


def acquire(sessions: sessionmaker[Session], holder: str, ttl: timedelta, name: str = POLLER) -> LeaseBusy | None:
    """Take or renew the lease; None on success, LeaseBusy when another holder has it."""
    now = utcnow()
    with sessions() as session:
        result = session.execute(
            update(Lease)
            .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at < now))
            .values(holder=holder, expires_at=now + ttl, acquired_at=now)
        )
        if result.rowcount == 1:
            session.commit()
            return None
        session.rollback()
        try:
            session.add(Lease(name=name, holder=holder, expires_at=now + ttl, acquired_at=now))
            session.commit()
            return None
        except IntegrityError:
            session.rollback()
        current = session.execute(select(Lease).where(Lease.name == name)).scalar_one_or_none()
        if current is None:  # released between our two statements: try once more
            return acquire(sessions, holder, ttl, name)
        return LeaseBusy(current.holder, current.expires_at)


def release(sessions: sessionmaker[Session], holder: str, name: str = POLLER) -> None:
    """Give the lease up, if we still hold it."""
    with sessions() as session:
        session.execute(
            update(Lease).where(Lease.name == name, Lease.holder == holder).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()


class LeaseKeeper:
    """Holds a lease and renews it from a thread until released.

    `lost` is set when another holder took the lease (ours lapsed, e.g. the
    database was unreachable for longer than the ttl): stop working at once.
    """

    def __init__(self, sessions: sessionmaker[Session], holder: str, ttl: timedelta = TTL, name: str = POLLER):
        self.sessions, self.holder, self.ttl, self.name = sessions, holder, ttl, name
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._taken = False

    @property
    def held(self) -> bool:
        return self._thread is not None and not self.lost.is_set()

    def hold(self) -> LeaseBusy | None:
        """Take the lease (or keep it) and renew it from now on; LeaseBusy when another holder has it."""
        if self.held:
            return None
        self._join()
        busy = acquire(self.sessions, self.holder, self.ttl, self.name)
        if busy is None:
            self._taken = True
            self.lost.clear()
            self._stop.clear()
            self._thread = threading.Thread(target=self._renew, name=f"lease-{self.name}", daemon=True)
            self._thread.start()
        return busy

    def release(self) -> None:
        """Stop renewing and give the lease up (a database error only lets it lapse by itself)."""
        self._join()
        if not self._taken:
            return
        try:
            release(self.sessions, self.holder, self.name)
        except SQLAlchemyError:
            log.warning("lease=%s not released (database error); it lapses by itself", self.name)

    def _join(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _renew(self) -> None:
        every = self.ttl.total_seconds() / 4  # three renewals may fail before the lease lapses
        while not self._stop.wait(every):
            try:
                busy = acquire(self.sessions, self.holder, self.ttl, self.name)
            except SQLAlchemyError:
                log.warning("lease=%s renewal failed (database error); retrying", self.name, exc_info=True)
                continue
            if busy is not None:
                log.error("lease=%s lost: %s", self.name, busy)
                self.lost.set()
                return
