"""The X API v2, seen through tweepy and turned into feedapp's own types (no Flask here)."""

from .client import Fetched, Lookup, XClient, XSettings
from .errors import AuthError, MalformedResponse, RateLimited, SourceError, TransientError, XError
from .types import Link, Media, Page, Post, QuotedPost, User

__all__ = [
    "AuthError", "Fetched", "Link", "Lookup", "MalformedResponse", "Media", "Page", "Post",
    "QuotedPost", "RateLimited", "SourceError", "TransientError", "User", "XClient", "XError", "XSettings",
]
