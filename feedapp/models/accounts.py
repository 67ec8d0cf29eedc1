"""Staff accounts: users, sign-ins, invites, throttle counts, private feed tokens, the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import ROLE_ADMIN, Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from .content import Office


class User(Base):
    """A staff account: no email, an office, a password set through a one-time invite."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(50), unique=True)  # stored lower-case
    display_name: Mapped[str] = mapped_column(String(100), default="")
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id", ondelete="SET NULL"), index=True)
    # "admin": everything; "editor": content and sources (of office_id only, when set); "staff": reads.
    role: Mapped[str] = mapped_column(String(10), default="staff", server_default="staff")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(300))  # None until the invite is used
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    office: Mapped[Office | None] = relationship()

    @property
    def is_admin(self) -> bool:
        """Whether the account may do everything, staff accounts and branding included."""
        return self.role == ROLE_ADMIN


class SignIn(Base):
    """One signed-in browser of a staff member. The cookie holds a random key; deleting the row signs it out."""

    __tablename__ = "sign_ins"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the key
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The browser's "keep me signed in" choice, kept when a password change signs it in afresh.
    remember: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Invite(Base):
    """A one-time link where a new (or locked-out) user sets a password."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ThrottleCount(Base):
    """Attempts counted by feedapp.throttle in one window, shared by every worker and node on this database."""

    __tablename__ = "throttle_counts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # e.g. "login-client:203.0.113.9"
    count: Mapped[int] = mapped_column(Integer)
    # Unix time (seconds) the window ends; a plain number compares the same on every engine.
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class FeedToken(Base):
    """The secret in a user's private feed URLs (RSS readers cannot sign in); stored hashed."""

    __tablename__ = "feed_tokens"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEvent(Base):
    """Who did what to whom, and when: every admin action."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(50))  # a username, or "cli"
    action: Mapped[str] = mapped_column(String(50))
    target: Mapped[str] = mapped_column(String(100), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
