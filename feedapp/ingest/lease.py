"""A lease row in the database so that one poller runs at a time, across machines.

Works the same on SQLite and PostgreSQL: taking the lease is one conditional
UPDATE (or the INSERT of the row), so two pollers can never both succeed.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from feedapp.models import Lease, utcnow

POLLER = "poller"


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
