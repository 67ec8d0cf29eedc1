"""Errors the X layer raises; nothing outside feedapp.xapi sees tweepy's."""

from __future__ import annotations

from datetime import datetime


class XError(Exception):
    """Base of every X API failure; str() is a reason fit for an operator."""

    #: a retry soon may succeed (5xx, timeout, malformed body)
    transient = False


class RateLimited(XError):
    """HTTP 429 or x-rate-limit-remaining: 0; retry at reset_at (UTC)."""

    def __init__(self, reset_at: datetime, message: str = "rate limited"):
        super().__init__(f"{message}; next call after {reset_at:%Y-%m-%d %H:%M:%S} UTC")
        self.reset_at = reset_at


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
