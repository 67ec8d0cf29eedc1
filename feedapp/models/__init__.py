"""Tables, one module per area; every name is importable from feedapp.models.

base: the declarative base, UTCDateTime, utcnow, roles. content: offices, sources, posts, pins, media,
X accounts seen. operations: the poller lease, API reads, rate windows, console requests, site files
and settings, scope versions. accounts: staff accounts and the audit log. push: Web Push. reach: must-read
posts, acknowledgements, readership counts, the survey. screens: break-room screens.
"""

from __future__ import annotations

from .accounts import AuditEvent, FeedToken, Invite, SignIn, ThrottleCount, User
from .base import ROLE_ADMIN, ROLE_EDITOR, ROLE_STAFF, ROLES, Base, UTCDateTime, utcnow
from .content import Media, Office, Pin, Post, SeenAccount, Source
from .operations import ApiRead, Lease, RateWindow, ScopeVersion, SiteFile, SiteSetting, SourceRequest, StreamStatus
from .push import PUSH_FAILED, PUSH_GONE, PUSH_PENDING, PUSH_SENT, PushMessage, PushSubscription
from .reach import (
    Acknowledgement,
    FeedReader,
    FeedSubscribers,
    MustRead,
    ReadCount,
    Survey,
    SurveyResponder,
    SurveyTally,
)
from .screens import Screen

__all__ = [
    "ROLE_ADMIN", "ROLE_EDITOR", "ROLE_STAFF", "ROLES", "Base", "UTCDateTime", "utcnow",
    "Office", "Source", "Post", "Pin", "Media", "SeenAccount",
    "Lease", "StreamStatus", "ApiRead", "RateWindow", "SourceRequest", "SiteFile", "SiteSetting", "ScopeVersion",
    "User", "SignIn", "Invite", "ThrottleCount", "FeedToken", "AuditEvent",
    "PUSH_PENDING", "PUSH_SENT", "PUSH_FAILED", "PUSH_GONE", "PushSubscription", "PushMessage",
    "MustRead", "Acknowledgement", "ReadCount", "FeedReader", "FeedSubscribers", "Survey", "SurveyTally",
    "SurveyResponder", "Screen",
]
