"""The filtered stream's status row: written by the worker holding the stream, read by `sources list` and the console.

The worker runs in another process (often on another machine), so what the CLI and the
console say about the stream comes from this row, never from memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedapp.models import StreamStatus, utcnow

NAME = "filtered"
LIVE, CONNECTING, RECONNECTING, REFUSED, OFF, STOPPED = "live", "connecting", "reconnecting", "refused", "off", "stopped"
HEARTBEAT = timedelta(seconds=30)  # the worker's status is rewritten at least this often while it runs


def write_status(session: Session, state: str, detail: str | None = None, *, streamed_sources: int = 0,
                 delivered: int = 0, now: datetime | None = None) -> None:
    """Record the stream's state (its start time is kept while the state stays the same); caller commits."""
    now = now or utcnow()
    row = session.get(StreamStatus, NAME)
    if row is None:
        row = StreamStatus(name=NAME, state=state, since=now)
        session.add(row)
    elif row.state != state:
        row.state, row.since = state, now
    row.detail, row.heartbeat_at = detail, now
    row.streamed_sources, row.delivered = streamed_sources, delivered


@dataclass(frozen=True)
class StreamView:
    """What to tell people about the stream: one state word and one sentence."""

    state: str  # live | connecting | reconnecting | refused | off | not-running
    sentence: str
    streamed_sources: int = 0
    minutes: int = 5  # how often polled sources are read
    since: datetime | None = None
    detail: str | None = None


def stream_view(session: Session, enabled: bool, has_bearer: bool, interval: int,
                now: datetime | None = None) -> StreamView:
    """The stream's state in words, from the settings and the worker's status row (English; the console
    translates by state)."""
    minutes = max(1, round(interval / 60))
    polling = f"every source is polled every {minutes} min"
    if not has_bearer:  # first: without a token the setting's default is off too
        return StreamView(OFF, f"Filtered stream: off (it needs FEEDAPP_X_BEARER_TOKEN); {polling}.",
                          minutes=minutes, detail="no-bearer")
    if not enabled:
        return StreamView(OFF, f"Filtered stream: off (FEEDAPP_STREAM=off); {polling}.", minutes=minutes,
                          detail="setting")
    row = session.scalar(select(StreamStatus).where(StreamStatus.name == NAME))
    now = now or utcnow()
    if row is None or row.state == STOPPED or now - row.heartbeat_at > 3 * HEARTBEAT:
        return StreamView("not-running", "Filtered stream: not running (`poll --loop` runs it); "
                                         f"{polling} while it is not.", minutes=minutes)
    if row.state == LIVE:
        return StreamView(LIVE, f"Filtered stream: live since {row.since:%Y-%m-%d %H:%M} UTC; new posts of "
                                f"{row.streamed_sources} public sources arrive within seconds, protected "
                                f"sources are polled every {minutes} min; {row.delivered} posts delivered since.",
                          row.streamed_sources, minutes, row.since)
    if row.state == REFUSED:
        return StreamView(REFUSED, f"Filtered stream: refused by X ({row.detail or 'no reason given'}); "
                                   f"{polling}.", minutes=minutes, since=row.since, detail=row.detail)
    detail = f" ({row.detail})" if row.detail else ""
    return StreamView(row.state, f"Filtered stream: {row.state}{detail}; public sources are polled every "
                                 f"{minutes} min until it is back.", minutes=minutes, since=row.since,
                      detail=row.detail)
