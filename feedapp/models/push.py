"""Web Push (feedapp.push): browsers' subscriptions and the outbox the worker drains."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow


PUSH_PENDING, PUSH_SENT, PUSH_FAILED, PUSH_GONE = "pending", "sent", "failed", "gone"


class PushSubscription(Base):
    """A browser's push subscription (the Push API's PushSubscription.toJSON()) and whose news it gets.

    Scope: office_id (None: company-wide news only) and staff (made by a signed-in staff member, user_id:
    staff-only posts may be announced, and it goes when they sign out). Removed when the push service
    answers 404 or 410 (RFC 8030 §7.3: the subscription is gone).
    """

    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(1000), unique=True)
    p256dh: Mapped[str] = mapped_column(String(100))  # the browser's P-256 public key, base64url (65 bytes)
    auth: Mapped[str] = mapped_column(String(40))  # the authentication secret, base64url (16 bytes)
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id", ondelete="SET NULL"), index=True)
    staff: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0)


class PushMessage(Base):
    """One push waiting for (or done with) delivery to one subscription: the outbox the worker drains.

    state: "pending" until sent ("sent"), given up after retries ("failed"), or its subscription is gone
    ("gone"). not_before: not tried before then (Retry-After, backoff, quiet hours; a worker's claim
    pushes it forward for the duration of one send, so a crashed worker's rows come back by themselves).
    """

    __tablename__ = "push_outbox"
    __table_args__ = (Index("ix_push_outbox_due", "state", "not_before"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("push_subscriptions.id", ondelete="CASCADE"), index=True)
    topic: Mapped[str | None] = mapped_column(String(32))  # RFC 8030 §5.4: a newer message with it replaces this one
    payload: Mapped[str] = mapped_column(Text)  # JSON the service worker reads
    urgency: Mapped[str] = mapped_column(String(10), default="normal")  # RFC 8030 §5.3
    ttl: Mapped[int] = mapped_column(Integer, default=86400)  # seconds the push service may keep it (RFC 8030 §5.2)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(10), default=PUSH_PENDING)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
