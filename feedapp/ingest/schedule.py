"""Scheduling: what a fetch's outcome means for the source's next check.

The one writer of error_count, last_error, last_error_at, last_success_at,
last_polled_at and next_check_at. Failures become data on the source, never
exceptions: even a database error while writing them is recorded as that
source's failure (when the database lets us) and reported, never raised.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from feedapp.models import Source

from .fetch import FAILED, GONE, OK, RATE_LIMITED, Outcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """How long to wait before the next check: the interval, doubled per failure up to a cap."""

    interval: int = 300
    cap: int = 3600

    def delay(self, error_count: int) -> float:
        """Seconds after error_count failures in a row, with ±25% jitter."""
        delay = min(self.cap, self.interval * 2 ** max(0, error_count - 1))
        return delay * random.uniform(0.75, 1.25)  # jitter keeps failed sources from retrying in lockstep


def record_outcome(sessions: sessionmaker[Session], source_id: int, outcome: Outcome, now: datetime,
                   backoff: Backoff) -> Outcome:
    """Write outcome's consequences onto the source; returns the outcome as stored.

    When the database refuses, the failure to record is itself stored as the
    source's failure (in a fresh transaction) and returned; nothing is raised.
    """
    try:
        _store(sessions, source_id, outcome, now, backoff)
        return outcome
    except SQLAlchemyError as exc:
        log.exception("source_id=%s: the poll's bookkeeping failed", source_id)
        failed = replace(outcome).end(  # what was fetched is kept; the source is marked failed
            FAILED, f"database error while recording this poll: {type(exc).__name__} (see the log)",
            skipped=False, backoff=True)
    try:
        _store(sessions, source_id, failed, now, backoff)
    except SQLAlchemyError:
        log.exception("source_id=%s: storing the bookkeeping failure failed too", source_id)
    return failed


def _store(sessions: sessionmaker[Session], source_id: int, outcome: Outcome, now: datetime, backoff: Backoff) -> None:
    """Apply outcome to the source in one transaction (a source removed meanwhile is left alone)."""
    with sessions() as session:
        source = session.get(Source, source_id)
        if source is not None:
            apply_outcome(source, outcome, now, backoff)
            session.commit()


def apply_outcome(source: Source, outcome: Outcome, now: datetime, backoff: Backoff) -> None:
    """Set the schedule fields of source from outcome (the caller commits)."""
    if outcome.status == GONE:
        return
    source.last_polled_at = now
    if outcome.status == OK:
        source.error_count, source.last_error = 0, None
        source.last_success_at = now
        source.next_check_at = now + timedelta(seconds=backoff.interval)
    elif outcome.status == RATE_LIMITED:
        # Not the source's fault: no error counted; the window's reset is the next chance.
        source.next_check_at = max(outcome.retry_at, now)
    else:
        source.error_count = (source.error_count or 0) + 1
        source.last_error, source.last_error_at = (outcome.reason or "failed")[:1000], now
        delay = backoff.delay(source.error_count) if outcome.backoff else backoff.interval
        source.next_check_at = now + timedelta(seconds=delay)
