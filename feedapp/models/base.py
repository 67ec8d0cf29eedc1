"""The declarative base, aware UTC datetimes and the role names every table module shares."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import DateTime, TypeDecorator
from sqlalchemy.orm import DeclarativeBase


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every engine (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; feedapp stores aware UTC datetimes")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(timezone.utc)


ROLE_ADMIN, ROLE_EDITOR, ROLE_STAFF = "admin", "editor", "staff"
ROLES = (ROLE_ADMIN, ROLE_EDITOR, ROLE_STAFF)


class Base(DeclarativeBase):
    pass
