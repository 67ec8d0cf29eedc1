"""The X API v2, seen through tweepy and turned into feedapp's own types (no Flask here)."""

from .client import Fetched, Lookup, XClient, XSettings
from .errors import AuthError, MalformedResponse, RateLimited, SourceError, TransientError, XError
from .types import Link, XMedia, XPage, XPost, XQuotedPost, XUser

__all__ = [
    "AuthError", "Fetched", "Link", "Lookup", "MalformedResponse", "RateLimited", "SourceError", "TransientError",
    "XClient", "XError", "XMedia", "XPage", "XPost", "XQuotedPost", "XSettings", "XUser",
]
