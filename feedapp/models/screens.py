"""Break-room screens: a wall display's secret URL, its scope (office, staff-only) and when it last fetched."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow


class Screen(Base):
    """A signage player's URL (/screen/TOKEN): its token is stored hashed like a private feed token."""

    __tablename__ = "screens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the URL's token
    # Company-wide posts plus this office's; None: company-wide only. A closed office takes its screens along.
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"), index=True)
    # Inside the premises: may show staff-only posts. Any other screen never does.
    staff_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(50))  # a username, or "cli"
    # Written at most once a minute (feedapp.screens.touch), so a wall of screens costs few writes.
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
