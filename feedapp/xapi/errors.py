"""Errors the X layer raises; nothing outside feedapp.xapi sees tweepy's."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


class XError(Exception):
    """Base of every X API failure; str() is a reason fit for an operator."""

    #: a retry soon may succeed (5xx, timeout, malformed body)
    transient = False


class RateLimited(XError):
    """A window is used up (HTTP 429, or x-rate-limit-remaining: 0 before); retry at reset_at (UTC).

    called is False when the window was known before the call, so no request went out.
    """

    def __init__(self, reset_at: datetime, words: str = "", *, called: bool = False):
        until = f"rate-limited until {until_words(reset_at)}" + (f" ({words})" if words else "")
        super().__init__(f"X answered 429 Too Many Requests; {until}" if called else until)
        self.reset_at = reset_at
        self.called = called


def until_words(at: datetime) -> str:
    """'14:05 UTC' within the next day, else '2026-12-03 14:05 UTC'."""
    at = at.astimezone(timezone.utc)
    if at.second or at.microsecond:  # round up: "until 14:05" must not be before the reset
        at = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    if at - datetime.now(timezone.utc) < timedelta(hours=20):
        return f"{at:%H:%M} UTC"
    return f"{at:%Y-%m-%d %H:%M} UTC"


class AuthError(XError):
    """401/403: the credentials are missing, wrong or lack access."""


class SourceError(XError):
    """The account itself is unavailable: not found, suspended, protected without access."""

    def __init__(self, message: str, kind: str = "unavailable"):
        super().__init__(message)
        self.kind = kind  # "not-found" | "suspended" | "not-authorized" | "unavailable"


class TransientError(XError):
    """5xx, timeout, connection failure: back off and try again."""

    transient = True


class MalformedResponse(TransientError):
    """The body was not the JSON shape the X API v2 documents."""
