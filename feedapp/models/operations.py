"""What the poller and the console keep: the lease, the stream's status, API reads, rate windows, console requests, site files and settings, scope versions."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow


class Lease(Base):
    """A named lock with an expiry, so only one poller runs across machines."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StreamStatus(Base):
    """How X's filtered stream fares, written by the worker that holds it and read by `sources list` and the console.

    One row per stream (name "filtered"). state: live, connecting, reconnecting, refused (X's plan or app does not
    include the stream: polling covers every source), off (FEEDAPP_STREAM=off or no bearer token).
    """

    __tablename__ = "stream_status"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text)
    since: Mapped[datetime] = mapped_column(UTCDateTime)  # when this state began
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the worker's last word (at most STATUS_EVERY old)
    streamed_sources: Mapped[int] = mapped_column(Integer, default=0)  # public sources the stream covers now
    delivered: Mapped[int] = mapped_column(Integer, default=0)  # posts X delivered on this connection


class ApiRead(Base):
    """An object the X API returned today: pay-per-use bills each once per UTC day."""

    __tablename__ = "api_reads"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(4), primary_key=True)  # "post" | "user"
    object_id: Mapped[str] = mapped_column(String(32), primary_key=True)


class RateWindow(Base):
    """An X rate-limit window, shared by every poller and command: per credential and endpoint.

    X counts calls per credential (the app's bearer token, or the reader account's
    access token) and per endpoint; `remaining` = 0 means no call until `reset_at`.
    The credential is named by a short hash, never stored.
    """

    __tablename__ = "rate_windows"

    credential: Mapped[str] = mapped_column(String(40), primary_key=True)  # "bearer:<hash>" | "reader:<hash>"
    endpoint: Mapped[str] = mapped_column(String(100), primary_key=True)  # X's template, e.g. /2/users/:id/tweets
    reset_at: Mapped[datetime] = mapped_column(UTCDateTime)
    remaining: Mapped[int | None] = mapped_column(Integer)
    limit: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SourceRequest(Base):
    """Work the console leaves for the poller (web nodes hold no X credentials), and its outcome.

    kind "add": look up username and follow it with these settings; "check": poll source_id now.
    state: "pending" until the poller takes it, then "done" or "failed" (outcome: X's reason in words).
    done_at: when it was answered; on a pending row, when a poller claimed it (feedapp.ingest.requests._claim).
    """

    __tablename__ = "source_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    username: Mapped[str] = mapped_column(String(50))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"))
    staff_only: Mapped[bool] = mapped_column(Boolean, default=False)
    review: Mapped[bool] = mapped_column(Boolean, default=False)
    no_replies: Mapped[bool] = mapped_column(Boolean, default=False)
    no_reposts: Mapped[bool] = mapped_column(Boolean, default=False)
    requested_by: Mapped[str] = mapped_column(String(50))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    outcome: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SiteFile(Base):
    """A file the console uploaded or made: the logo (re-encoded) and the icons made from it."""

    __tablename__ = "site_files"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)  # "logo", "icon-192", …
    content_type: Mapped[str] = mapped_column(String(40))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    etag: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SiteSetting(Base):
    """An installation-wide value: installation_id (minted by migration 0007), later the console's settings."""

    __tablename__ = "site_settings"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ScopeVersion(Base):
    """A counter per content scope (feedapp.content_scopes), bumped by every write that changes what its readers see.

    Pages and feeds derive ETag and Last-Modified from the versions of the scopes they
    show, and the render cache keys on them, so one small read per worker and second
    answers every conditional GET, and a write leaves the responses of other scopes alone.
    """

    __tablename__ = "scope_versions"

    scope: Mapped[str] = mapped_column(String(40), primary_key=True)  # "site", "public:office:3" …
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
