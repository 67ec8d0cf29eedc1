"""The push outbox: queueing messages, and delivering them from the worker with pywebpush. No Flask.

Nothing is sent from a web request: whatever wants a push adds rows (`queue_push`), and the worker
(`poll --loop`, or `push deliver`) drains them with `deliver`. Several workers may drain at once: a
worker claims a batch by moving each row's not_before past the time one send can take (on PostgreSQL
under `SELECT … FOR UPDATE SKIP LOCKED`, so workers never wait for or take each other's rows; on SQLite,
whose writers take turns, by one UPDATE guarded on each row still being due, RETURNING the rows it took).
Sending one row is feedapp.push.sender's. A worker that dies mid-send leaves rows that come due again by themselves.
"""

from __future__ import annotations

import json
import logging
import random
import re
import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

from sqlalchemy import delete, exists, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from feedapp.models import PUSH_FAILED, PUSH_PENDING, PUSH_SENT, Office, PushMessage, PushSubscription, utcnow

from .quiet import QuietDefaults, office_window, release_time

log = logging.getLogger(__name__)

# RFC 8030 §5.4: a topic is at most 32 characters of the URL- and filename-safe base64 alphabet.
TOPIC_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
URGENCIES = ("very-low", "low", "normal", "high")  # RFC 8030 §5.3
# RFC 8291 §4: one record of at most 4096 bytes, less 86 of header, padding delimiter and tag.
MAX_PAYLOAD = 3993
KEEP_DONE = timedelta(days=7)  # sent and failed rows are kept this long (to look into), then deleted


class PushInputError(ValueError):
    """A message that no push service would take, in a sentence."""


@dataclass(frozen=True)
class DeliverySettings:
    """How the worker sends: the VAPID key and contact, and its pace."""

    private_pem: bytes
    subject: str
    concurrency: int = 8  # sends in flight at once
    timeout: float = 10.0  # seconds for one push service request
    batch: int = 100  # rows claimed at a time
    max_attempts: int = 8  # then the row is "failed"
    backoff_base: int = 30  # seconds before the first retry, doubled each time (with jitter)
    backoff_max: int = 3600
    claim_seconds: int = 120  # how long a claimed row is left alone: longer than one send can take

    @classmethod
    def from_push(cls, push, **overrides) -> DeliverySettings:
        """From the app's PushSettings (feedapp.push.keys), which must be enabled."""
        return cls(push.keys.private_pem, push.subject, **overrides)


@dataclass
class Claimed:
    """A claimed row with what sending it needs."""

    id: int
    attempts: int
    subscription_id: int
    endpoint: str
    p256dh: str
    auth: str
    payload: str
    topic: str | None
    urgency: str
    ttl: int


@dataclass
class Outcome:
    """What a push service said to one send: its status (None: no answer) and Retry-After, in seconds."""

    status: int | None
    retry_after: float | None = None
    error: str = ""


@dataclass
class DeliverySummary:
    """Counts of one drain, for the worker's log line."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    gone: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"push: {self.sent} sent, {self.retried} to retry, {self.failed} failed, {self.gone} subscriptions gone"


def queue_push(session: Session, subscription_ids: Iterable[int], payload: dict, *, topic: str | None = None,
               urgency: str = "normal", ttl: int = 86400, not_before: datetime | None = None) -> int:
    """Queue one message to each subscription; how many rows. Caller commits.

    topic (RFC 8030 §5.4): the push service keeps only the newest undelivered message with it per
    subscription, so a retried or updated message replaces rather than stacks on a phone that was offline.
    """
    if topic is not None and not TOPIC_RE.match(topic):
        raise PushInputError(f"topic {topic!r}: at most 32 characters of A-Z a-z 0-9 - _ (RFC 8030 §5.4)")
    if urgency not in URGENCIES:
        raise PushInputError(f"urgency {urgency!r}: one of {', '.join(URGENCIES)} (RFC 8030 §5.3)")
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    if len(body.encode()) > MAX_PAYLOAD:
        raise PushInputError(f"payload of {len(body.encode())} bytes: push services take at most {MAX_PAYLOAD}")
    rows = [{"subscription_id": sid, "payload": body, "topic": topic, "urgency": urgency, "ttl": ttl,
             "not_before": not_before or utcnow(), "attempts": 0, "state": PUSH_PENDING, "created_at": utcnow()}
            for sid in subscription_ids]
    if rows:
        session.execute(insert(PushMessage), rows)
    return len(rows)


def has_due(session_factory: sessionmaker[Session], now: datetime | None = None) -> bool:
    """Whether any row may be sent now (one indexed query: the worker asks every couple of seconds)."""
    with session_factory() as session:
        return session.scalar(select(exists().where(PushMessage.state == PUSH_PENDING,
                                                    PushMessage.not_before <= (now or utcnow()))))


def claim(session_factory: sessionmaker[Session], now: datetime, limit: int, hold: timedelta) -> list[Claimed]:
    """Take up to limit due rows for this worker: each one's not_before moves to now + hold, attempts + 1."""
    with session_factory() as session:
        due = (select(PushMessage.id)
               .where(PushMessage.state == PUSH_PENDING, PushMessage.not_before <= now)
               .order_by(PushMessage.not_before, PushMessage.id).limit(limit))
        postgres = session.get_bind().dialect.name == "postgresql"
        if postgres:
            due = due.with_for_update(skip_locked=True)  # rows another worker is claiming are skipped, not awaited
        ids = list(session.scalars(due))
        taken = []
        claim_row = (update(PushMessage)
                     .values(not_before=now + hold, attempts=PushMessage.attempts + 1)
                     .execution_options(synchronize_session=False))
        if postgres:
            if ids:  # locked by us until commit
                session.execute(claim_row.where(PushMessage.id.in_(ids)))
            taken = ids
        elif ids and sqlite3.sqlite_version_info >= (3, 35):
            # One statement, guarded on each row still being due: those another worker took between our SELECT
            # and here (SQLite writers take turns) are left out, and RETURNING says which rows are ours.
            taken = list(session.scalars(claim_row.where(PushMessage.id.in_(ids), PushMessage.state == PUSH_PENDING,
                                                         PushMessage.not_before <= now).returning(PushMessage.id)))
        else:
            for row_id in ids:  # still due, so no other worker took it between our SELECT and here
                result = session.execute(claim_row.where(PushMessage.id == row_id, PushMessage.state == PUSH_PENDING,
                                                         PushMessage.not_before <= now))
                if result.rowcount == 1:
                    taken.append(row_id)
        rows = session.execute(
            select(PushMessage.id, PushMessage.attempts, PushMessage.subscription_id, PushSubscription.endpoint,
                   PushSubscription.p256dh, PushSubscription.auth, PushMessage.payload, PushMessage.topic,
                   PushMessage.urgency, PushMessage.ttl)
            .join(PushSubscription, PushSubscription.id == PushMessage.subscription_id)
            .where(PushMessage.id.in_(taken)).order_by(PushMessage.id)).all() if taken else []
        session.commit()
    return [Claimed(*row) for row in rows]


def hold_for_quiet_hours(session_factory: sessionmaker[Session], now: datetime, defaults: QuietDefaults) -> int:
    """Move the due rows of subscriptions whose office is in its quiet hours now to the window's end; how many.

    Rows are given their office's release time when queued (feedapp.push.announce), but a row can still come
    due inside a window: queued before it began and not sent yet (the worker was stopped, or behind), or retried
    into it (a 429's Retry-After, a 5xx backoff). The worker calls this before each batch it claims. Rows claimed
    by a worker (not_before ahead) are left to it. One query for the offices, one UPDATE per office now quiet.
    """
    changed = 0
    with session_factory() as session:
        for office in [None, *session.scalars(select(Office).order_by(Office.id))]:
            release = release_time(now, office_window(office, defaults))
            if release <= now:
                continue
            where = PushSubscription.office_id.is_(None) if office is None else PushSubscription.office_id == office.id
            changed += session.execute(
                update(PushMessage).where(PushMessage.state == PUSH_PENDING, PushMessage.not_before <= now,
                                          PushMessage.subscription_id.in_(select(PushSubscription.id).where(where)))
                .values(not_before=release).execution_options(synchronize_session=False)).rowcount or 0
        session.commit()
    return changed


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After (RFC 9110 §10.2.3) as seconds from now: delay-seconds or an HTTP-date; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


def deliver(session_factory: sessionmaker[Session], settings: DeliverySettings, *,
            clock: Callable[[], datetime] = utcnow, send: Callable[[Claimed], Outcome] | None = None,
            stop: Callable[[], bool] = lambda: False,
            before_batch: Callable[[datetime], object] | None = None) -> DeliverySummary:
    """Send every due row, a thread pool's worth at a time, until none is due (or stop() says so).

    before_batch(now) runs before each claim: the worker holds rows of offices in quiet hours there, so a long
    send that runs into an office's window stops sending to it at the window's start, not at the run's end.

    2xx: sent. 404/410: the subscription is gone (RFC 8030 §7.3); it and its queued rows are deleted.
    429 and 5xx, or no answer: retried after Retry-After when the service gave one, else after a growing
    backoff; after max_attempts the row is "failed". Any other status (400, 403, 413): failed at once, since
    sending it again would get the same answer.
    """
    if send is None:
        from .sender import Sender

        send = Sender(settings, clock)
    summary = DeliverySummary()
    hold = timedelta(seconds=settings.claim_seconds)
    with ThreadPoolExecutor(max_workers=max(1, settings.concurrency), thread_name_prefix="push") as pool:
        while not stop():
            if before_batch is not None:
                before_batch(clock())
            batch = claim(session_factory, clock(), settings.batch, hold)
            if not batch:
                break
            outcomes = list(pool.map(send, batch))
            record(session_factory, settings, zip(batch, outcomes), clock(), summary)
    with session_factory() as session:
        purge_outbox(session, clock() - KEEP_DONE)
        session.commit()
    return summary


def purge_outbox(session: Session, before: datetime) -> int:
    """Delete sent and failed rows queued before `before`; how many. Caller commits."""
    result = session.execute(delete(PushMessage).where(PushMessage.state.in_((PUSH_SENT, PUSH_FAILED)),
                                                       PushMessage.created_at < before))
    return result.rowcount or 0


def record(session_factory: sessionmaker[Session], settings: DeliverySettings,
           results: Iterable[tuple[Claimed, Outcome]], now: datetime, summary: DeliverySummary) -> None:
    """Store what the push services said. Each update is guarded on the attempt this worker claimed.

    Sent rows, nearly all of them, are marked a batch at a time (a few statements rather than two per row).
    """
    sent: dict[int, list[int]] = {}  # attempts -> row ids
    delivered: set[int] = set()  # subscriptions
    with session_factory() as session:
        for item, outcome in results:
            mine = (PushMessage.id == item.id, PushMessage.attempts == item.attempts)
            status = outcome.status
            if status is not None and 200 <= status < 300:
                sent.setdefault(item.attempts, []).append(item.id)
                delivered.add(item.subscription_id)
                summary.sent += 1
            elif status in (404, 410):
                session.execute(delete(PushSubscription).where(PushSubscription.id == item.subscription_id))
                summary.gone += 1
                log.info("push subscription gone id=%s status=%s", item.subscription_id, status)
            elif status is None or status == 429 or status >= 500:
                session.execute(update(PushSubscription).where(PushSubscription.id == item.subscription_id)
                                .values(failures=PushSubscription.failures + 1))
                if item.attempts >= settings.max_attempts:
                    _fail(session, mine, outcome, summary)
                    continue
                delay = outcome.retry_after
                if delay is None:
                    delay = min(settings.backoff_max, settings.backoff_base * 2 ** (item.attempts - 1))
                    delay *= random.uniform(0.8, 1.2)  # noqa: S311 - jitter, so retries do not arrive together
                delay = min(delay, 24 * 3600)  # a Retry-After of a year is not honoured as such
                session.execute(update(PushMessage).where(*mine).values(
                    not_before=now + timedelta(seconds=delay), last_error=outcome.error or str(status)))
                summary.retried += 1
            else:
                _fail(session, mine, outcome, summary)
        for attempts, ids in sent.items():
            session.execute(update(PushMessage).where(PushMessage.id.in_(ids), PushMessage.attempts == attempts)
                            .values(state=PUSH_SENT, sent_at=now, last_error=None)
                            .execution_options(synchronize_session=False))
        if delivered:
            session.execute(update(PushSubscription).where(PushSubscription.id.in_(sorted(delivered)))
                            .values(last_success_at=now, failures=0).execution_options(synchronize_session=False))
        session.commit()


def _fail(session: Session, mine, outcome: Outcome, summary: DeliverySummary) -> None:
    session.execute(update(PushMessage).where(*mine).values(state=PUSH_FAILED, last_error=outcome.error or "failed"))
    summary.failed += 1
    summary.problems.append(outcome.error)


def outbox_counts(session: Session) -> dict[str, int]:
    """{state: rows} of the outbox."""
    return dict(session.execute(select(PushMessage.state, func.count()).group_by(PushMessage.state)).all())
