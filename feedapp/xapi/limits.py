"""Rate-limit windows as X counts them: per credential and per endpoint.

X API v2 ("Rate limits"): a bearer token's calls count per app, an OAuth 1.0a
user context's per access token; each endpoint has its own 15-minute window,
announced on every response in x-rate-limit-limit / -remaining / -reset.
The client asks a RateLimits store before every call and tells it after every
response; where the store keeps windows (memory, the database) is the
caller's business, so nothing here touches a database.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

# X's path templates (as in its rate-limit tables), and what an operator calls them.
TIMELINES = "/2/users/:id/tweets"
USERS_BY_ID = "/2/users"
USERS_BY_NAME = "/2/users/by"
ENDPOINT_WORDS = {TIMELINES: "timelines", USERS_BY_ID: "profile look-ups", USERS_BY_NAME: "username look-ups"}
CREDENTIAL_WORDS = {"bearer": "bearer token", "reader": "reader account"}
DEFAULT_WINDOW = timedelta(minutes=15)  # when X sends no usable x-rate-limit-reset


def credential_id(kind: str, *secrets: str | None) -> str:
    """A short, non-reversible name for a credential: a new token gets a new name (and a fresh window)."""
    digest = hashlib.sha256("\x00".join(s or "" for s in (kind, *secrets)).encode()).hexdigest()
    return f"{kind}:{digest[:16]}"


@dataclass(frozen=True)
class RateKey:
    """One window as X counts it: a credential (never its secret) and an endpoint template."""

    credential: str  # "bearer:<hash>" or "reader:<hash>"
    endpoint: str  # e.g. "/2/users/:id/tweets"

    @property
    def kind(self) -> str:
        return self.credential.split(":", 1)[0]

    def words(self) -> str:
        """'bearer token, timelines'."""
        return f"{CREDENTIAL_WORDS.get(self.kind, self.kind)}, {ENDPOINT_WORDS.get(self.endpoint, self.endpoint)}"


@dataclass(frozen=True)
class RateInfo:
    """What one response said about its window."""

    reset_at: datetime
    remaining: int | None = None  # None: the response carried no count
    limit: int | None = None

    @property
    def exhausted(self) -> bool:
        return self.remaining == 0


def rate_info(headers, *, refused: bool = False) -> RateInfo | None:
    """The window announced by a response's headers (refused: it was a 429), or None without headers.

    A 429 may come from a 24-hour cap instead of the 15-minute window; X then sends
    x-app-limit-24hour-* or x-user-limit-24hour-* with remaining 0, and that reset wins.
    """
    remaining = _int(headers.get("x-rate-limit-remaining"))
    reset = _epoch(headers.get("x-rate-limit-reset"))
    if refused:
        for prefix in ("x-app-limit-24hour-", "x-user-limit-24hour-"):
            if _int(headers.get(prefix + "remaining")) == 0 and (day := _epoch(headers.get(prefix + "reset"))):
                reset = max(reset, day) if reset else day
        return RateInfo(reset or utcnow() + DEFAULT_WINDOW, 0, _int(headers.get("x-rate-limit-limit")))
    if remaining is None:
        return None
    if reset is None:
        reset = utcnow() + DEFAULT_WINDOW
    return RateInfo(reset, remaining, _int(headers.get("x-rate-limit-limit")))


class RateLimits(Protocol):
    """Where windows live; the client asks before each call and reports after each response."""

    def blocked_until(self, key: RateKey) -> datetime | None:
        """The reset of an exhausted window for key, or None when a call may go out now."""

    def record(self, key: RateKey, info: RateInfo) -> None:
        """Remember what a response said about key's window."""


class MemoryRateLimits:
    """Windows kept in this process only (a client used without a database)."""

    def __init__(self):
        self._until: dict[RateKey, datetime] = {}
        self._lock = threading.Lock()

    def blocked_until(self, key: RateKey) -> datetime | None:
        with self._lock:
            until = self._until.get(key)
        return until if until and until > utcnow() else None

    def record(self, key: RateKey, info: RateInfo) -> None:
        if info.exhausted:
            with self._lock:
                self._until[key] = max(info.reset_at, self._until.get(key, info.reset_at))


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _epoch(value) -> datetime | None:
    """x-rate-limit-reset is epoch seconds."""
    seconds = _int(value)
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
