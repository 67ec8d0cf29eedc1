"""What readers see: offices, sources (followed X accounts), posts, pins, media, X accounts seen."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, query_expression, relationship

from .base import Base, UTCDateTime, utcnow


class Office(Base):
    """A local site whose staff read its own accounts besides the company-wide ones."""

    __tablename__ = "offices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # BCP 47 tag of the office's feeds and labels (e.g. "fr"); None: the site's default language.
    language: Mapped[str | None] = mapped_column(String(16))
    # Web Push quiet hours (feedapp.push.quiet): "HH:MM" local times in time_zone (IANA, e.g. "Europe/Paris");
    # None: the site's defaults (FEEDAPP_TIME_ZONE, FEEDAPP_QUIET_HOURS).
    time_zone: Mapped[str | None] = mapped_column(String(64))
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    sources: Mapped[list[Source]] = relationship(back_populates="office")


class Source(Base):
    """A followed X account and its poll state (errors are stored here, never raised)."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    x_id: Mapped[str] = mapped_column(String(32), unique=True)
    username: Mapped[str] = mapped_column(String(50), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    avatar_url: Mapped[str | None] = mapped_column(String(500))
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id", ondelete="RESTRICT"), index=True)
    staff_only: Mapped[bool] = mapped_column(Boolean, default=False)  # set by an admin
    protected: Mapped[bool] = mapped_column(Boolean, default=False)  # protected on X
    # Timeline position: every post with id <= since_id is stored.
    since_id: Mapped[int | None] = mapped_column(BigInteger)
    # An interrupted catch-up: posts in (since_id, gap_until_id) are still to fetch;
    # gap_newest_id becomes since_id once they are.
    gap_until_id: Mapped[int | None] = mapped_column(BigInteger)
    gap_newest_id: Mapped[int | None] = mapped_column(BigInteger)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    profile_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    review: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # new posts wait for an editor
    # Replies to other accounts are left out on our side (X's exclude=replies would drop the account's threads too);
    # reposts are never asked for (exclude=retweets: not read, not billed).
    no_replies: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    no_reposts: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # not polled

    office: Mapped[Office | None] = relationship(back_populates="sources")

    @property
    def is_staff_only(self) -> bool:
        """Protected accounts are always staff-only; others when an admin says so."""
        return self.protected or self.staff_only


class Post(Base):
    """One timeline entry, unique by its X id (a repost by the repost's id)."""

    __tablename__ = "posts"
    __table_args__ = (Index("ix_posts_source_id_id", "source_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    author_id: Mapped[str] = mapped_column(String(32), default="")
    author_username: Mapped[str] = mapped_column(String(50), default="")
    author_name: Mapped[str] = mapped_column(String(200), default="")
    author_avatar: Mapped[str | None] = mapped_column(String(500))
    text: Mapped[str] = mapped_column(Text, default="")
    links: Mapped[list] = mapped_column(JSON, default=list)
    lang: Mapped[str | None] = mapped_column(String(16))
    possibly_sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    conversation_id: Mapped[str | None] = mapped_column(String(32))
    repost_of_id: Mapped[str | None] = mapped_column(String(32))
    original_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reply_to_id: Mapped[str | None] = mapped_column(String(32))
    reply_to_user_id: Mapped[str | None] = mapped_column(String(32))
    reply_to_username: Mapped[str | None] = mapped_column(String(50))
    quoted: Mapped[dict | None] = mapped_column(JSON)
    # X id of the quoted post's author: who decides, when reading, whether the quote may be shown.
    # (quoted["author"]["protected"] is only what X said when the post was stored.)
    quoted_author_id: Mapped[str | None] = mapped_column(String(32), index=True)
    # An account's reply to itself is a part of a thread: the id of the thread's first post (which
    # need not be stored). None for every other post. Written by store_posts only.
    thread_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    # The post this row shows: a repost's original, else the row's own id. Two rows with one
    # canonical_id in a scope are one post reached twice; readers see it once.
    canonical_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    raw: Mapped[dict] = mapped_column(JSON, default=dict)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Moderation (feedapp.moderation): a pending post waits for an editor's approval, a hidden one is off every
    # surface; neither reaches any reader. pending is set by store_posts for sources under review.
    pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    hidden_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hidden_reason: Mapped[str | None] = mapped_column(Text)
    hidden_by: Mapped[str | None] = mapped_column(String(50))
    highlighted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # a shout-out

    # Set by queries.posts_for_feed from the accounts' current state (None when read any other way):
    # the author (a repost's original author) is staff-only now / the quoted author is.
    author_hidden: Mapped[bool | None] = query_expression()
    quote_hidden: Mapped[bool | None] = query_expression()

    # Set on a page's posts by feedapp.queries (plain attributes, not columns; the class values are defaults):
    reposted_by = ()  # tuple of usernames: the in-scope sources that reposted this post
    thread_parts = ()  # tuple of Post: a thread's first post's later parts the reader may see, oldest first
    thread_position = None  # int: the post's place in its thread, 1 for the first post (None: not a thread)
    thread_total = None  # int: how many posts of the thread the reader may see
    thread_head = None  # Post: a later part's first post, when the reader may see it
    reply_parent = None  # Post: a reply to another account's post, when that post is stored and visible
    pinned = False  # bool: shown at the top of the page as a pin (feedapp.queries.pinned_posts)
    must_read = False  # bool: an active must-read of the reader's audience (feedapp.mustread)
    acknowledged = None  # True: the signed-in reader said "got it" to it; False: they are asked to; None: neither
    quote_removed = False  # bool: the quoted post is hidden by an editor (feedapp.post_context)

    @property
    def is_thread_part(self) -> bool:
        """A later part of a thread (an account's reply to itself), not its first post."""
        return self.thread_id is not None

    source: Mapped[Source] = relationship()
    media: Mapped[list[Media]] = relationship(order_by="Media.position", cascade="all, delete-orphan")


class Pin(Base):
    """A post kept at the top of the company feed (office_id None) or of one office's feed, until ends_at."""

    __tablename__ = "pins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # smaller first
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pinned_by: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Media(Base):
    """A photo, video or GIF of a post, in display order."""

    __tablename__ = "media"
    __table_args__ = (UniqueConstraint("post_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    media_key: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(20))
    url: Mapped[str | None] = mapped_column(String(500))
    preview_url: Mapped[str | None] = mapped_column(String(500))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    alt_text: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    variants: Mapped[list] = mapped_column(JSON, default=list)


class SeenAccount(Base):
    """What X last told us of an account a stored post touches (author, repost's original author, quoted author).

    Written by store_posts from every user object X sends with a page, so an account that turns
    protected hides its text from public readers from the next sighting on, even when nobody
    follows it. For followed accounts the Source row decides instead.
    """

    __tablename__ = "seen_accounts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # X user id
    username: Mapped[str] = mapped_column(String(50), default="")
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # when X last said something new
    # When the poller last looked the account up by id (feedapp.ingest.profiles); None: never.
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
