"""Reads for the console's sources page: each source's health in words, the X API spend, recent console requests.

A handful of queries whatever the number of sources (sources, posts per source
over 7 days grouped, rate windows, two ledger counts, requests), never one per
source. Reads only; the poller writes everything shown here.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import false, func, or_, select
from sqlalchemy.orm import Session, selectinload

from feedapp.models import ApiRead, Post, RateWindow, Source, SourceRequest, utcnow
from feedapp.xapi.limits import TIMELINES

FAILING_FLAG = timedelta(days=1)  # a source failing for longer is flagged at the top of the page
RECENT = timedelta(days=7)

# Health states (the template words them; tests and the CLI compare these).
OK, PAUSED, RATE_LIMITED, BACKING_OFF, CREDENTIALS, PROTECTED, NEW = (
    "ok", "paused", "rate-limited", "backing-off", "credentials", "protected-no-access", "new")

# The starts of the errors feedapp.xapi and feedapp.ingest store on a source (see xapi/client.py, ingest/fetch.py).
CREDENTIAL_ERRORS = ("X rejected", "X refused access", "no X credentials", "this account needs the OAuth")
PROTECTED_ERRORS = ("protected on X",)


@dataclass(frozen=True)
class SourceHealth:
    """One line of the health table."""

    source: Source
    state: str
    failures: int  # failures in a row
    until: datetime | None  # rate-limited: the window's reset
    posts_7d: int
    failing_long: bool  # failing for more than FAILING_FLAG

    @property
    def last_error(self) -> str | None:
        return self.source.last_error


@dataclass(frozen=True)
class Spend:
    """Billable reads from the ledger and what they cost at the configured prices."""

    post_today: int
    user_today: int
    post_month: int
    user_month: int
    price_post: float
    price_user: float
    today: date

    @property
    def cost_today(self) -> float:
        return self.post_today * self.price_post + self.user_today * self.price_user

    @property
    def cost_month(self) -> float:
        return self.post_month * self.price_post + self.user_month * self.price_user

    @property
    def projection(self) -> float:
        """The month's cost if the rest of it goes as it went so far: month-to-date / days elapsed × days in month."""
        days = calendar.monthrange(self.today.year, self.today.month)[1]
        return self.cost_month / self.today.day * days


def _in_offices(column, office_ids: set[int | None]):
    """column is one of these offices (None: company-wide)."""
    ids = [i for i in office_ids if i is not None]
    return or_(column.in_(ids), column.is_(None) if None in office_ids else false())


def state_of(source: Source, blocked_until: datetime | None, now: datetime) -> str:
    """A source's state: paused, rate-limited, failing (how), new, or ok."""
    if source.paused:
        return PAUSED
    if blocked_until is not None and blocked_until > now:
        return RATE_LIMITED
    if source.error_count:
        error = source.last_error or ""
        if error.startswith(CREDENTIAL_ERRORS):
            return CREDENTIALS
        if error.startswith(PROTECTED_ERRORS):
            return PROTECTED
        return BACKING_OFF
    if source.last_success_at is None:
        return NEW
    return OK


def failing_long(source: Source, now: datetime) -> bool:
    """Failing without a success for more than a day (since it was added, when it never worked)."""
    if source.paused or not source.error_count:
        return False
    since = source.last_success_at or source.created_at
    return since is not None and now - since > FAILING_FLAG


def timeline_blocks(session: Session, now: datetime) -> dict[str, datetime]:
    """{"bearer"|"reader": reset} of the used-up timeline windows: public sources are read with the bearer token,
    protected ones with the reader account."""
    rows = session.execute(select(RateWindow.credential, RateWindow.reset_at).where(
        RateWindow.endpoint == TIMELINES, RateWindow.remaining == 0, RateWindow.reset_at > now))
    blocks: dict[str, datetime] = {}
    for credential, reset_at in rows:
        kind = credential.split(":", 1)[0]
        blocks[kind] = max(blocks.get(kind, reset_at), reset_at)
    return blocks


def source_health(session: Session, office_ids: set[int | None] | None = None,
                  now: datetime | None = None) -> list[SourceHealth]:
    """The health of every source (of these offices only when given; None in the set: company-wide)."""
    now = now or utcnow()
    stmt = select(Source).options(selectinload(Source.office)).order_by(func.lower(Source.username))
    if office_ids is not None:
        stmt = stmt.where(_in_offices(Source.office_id, office_ids))
    sources = list(session.scalars(stmt))
    if not sources:
        return []
    counts = dict(session.execute(
        select(Post.source_id, func.count()).where(Post.created_at >= now - RECENT)
        .where(Post.source_id.in_([s.id for s in sources])).group_by(Post.source_id)).all())
    blocks = timeline_blocks(session, now)
    lines = []
    for s in sources:
        until = blocks.get("reader" if s.protected else "bearer")
        lines.append(SourceHealth(s, state_of(s, until, now), s.error_count or 0, until, counts.get(s.id, 0),
                                  failing_long(s, now)))
    return lines


def spend(session: Session, price_post: float, price_user: float, today: date | None = None) -> Spend:
    """Billable post and user reads today and this month (UTC days, as X bills) from the read ledger."""
    today = today or utcnow().date()
    first = today.replace(day=1)
    counts: dict[tuple[bool, str], int] = {}
    for day, kind, n in session.execute(  # at most 31 days × 2 kinds
            select(ApiRead.day, ApiRead.kind, func.count()).where(ApiRead.day >= first, ApiRead.day <= today)
            .group_by(ApiRead.day, ApiRead.kind)):
        counts[(day == today, kind)] = counts.get((day == today, kind), 0) + n
    month = {kind: counts.get((True, kind), 0) + counts.get((False, kind), 0) for kind in ("post", "user")}
    return Spend(counts.get((True, "post"), 0), counts.get((True, "user"), 0), month["post"], month["user"],
                 price_post, price_user, today)


def recent_requests(session: Session, office_ids: set[int | None] | None = None, limit: int = 20,
                    ) -> list[tuple[SourceRequest, Source | None]]:
    """The console's newest requests to the poller (pending ones first), with the source each one reached."""
    stmt = (select(SourceRequest, Source).outerjoin(Source, Source.id == SourceRequest.source_id)
            .order_by((SourceRequest.state == "pending").desc(), SourceRequest.id.desc()).limit(limit))
    if office_ids is not None:
        stmt = stmt.where(_in_offices(SourceRequest.office_id, office_ids))
    return [(r, s) for r, s in session.execute(stmt).all()]


def pending_count(session: Session) -> int:
    """How many requests wait for the poller."""
    return session.scalar(select(func.count()).select_from(SourceRequest)
                          .where(SourceRequest.state == "pending")) or 0
