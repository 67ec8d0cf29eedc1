"""Plain data the rest of feedapp sees instead of tweepy or raw X JSON.

X-prefixed names are what the API returned, kept apart from the ORM models
(feedapp.models.Post, User, Media) that store them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class XUser:
    """An X account as returned by the users lookup."""

    id: str
    username: str
    name: str
    avatar_url: str | None = None
    protected: bool = False
    verified: bool = False


@dataclass(frozen=True)
class Link:
    """One rich span of post text, in code points of the unescaped text.

    kind is "url", "mention", "hashtag" or "cashtag"; href is where it points
    (expanded URL, or the x.com profile / hashtag search); display is the
    readable text that replaces the span.
    """

    start: int
    end: int
    kind: str
    href: str
    display: str


@dataclass(frozen=True)
class XMedia:
    """A photo, video or GIF attached to a post."""

    key: str
    type: str  # "photo" | "video" | "animated_gif"
    url: str | None  # photo URL (pbs.twimg.com) or None for videos
    preview_url: str | None  # poster image for video/GIF
    width: int | None = None
    height: int | None = None
    alt_text: str | None = None
    duration_ms: int | None = None
    # mp4 variants only, sorted by bit_rate ascending: ({"url", "bit_rate", "content_type"})
    variants: tuple[dict, ...] = ()


@dataclass(frozen=True)
class XQuotedPost:
    """The post a quote embeds, kept whole so it renders as a nested card."""

    id: str
    author: XUser
    text: str
    links: tuple[Link, ...]
    media: tuple[XMedia, ...]
    created_at: datetime | None
    lang: str | None = None


@dataclass(frozen=True)
class XPost:
    """One timeline entry, ready to store.

    For a repost, id is the repost's own id (the timeline position) and
    created_at its date, while author/text/links/media come from the
    original post; repost_of_id names the original.
    """

    id: str
    author: XUser
    text: str  # unescaped exactly once; note_tweet text for long posts
    links: tuple[Link, ...]
    media: tuple[XMedia, ...]
    created_at: datetime  # timezone-aware UTC
    lang: str | None = None
    possibly_sensitive: bool = False
    conversation_id: str | None = None
    repost_of_id: str | None = None
    original_created_at: datetime | None = None  # the original's date, for reposts
    reply_to_id: str | None = None
    reply_to_user_id: str | None = None
    reply_to_username: str | None = None
    quoted: XQuotedPost | None = None
    raw: dict = field(default_factory=dict, compare=False)  # the tweet JSON plus the includes it used


@dataclass
class XPage:
    """One page of a timeline response, normalized."""

    posts: list[XPost]
    newest_id: str | None
    oldest_id: str | None
    next_token: str | None
    result_count: int
    post_reads: int  # billable post objects returned (data + includes.tweets)
    user_reads: int  # billable user objects returned (includes.users)
    errors: list[dict] = field(default_factory=list)
