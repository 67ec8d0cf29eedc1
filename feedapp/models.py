"""Tables: offices, sources (X accounts), posts, media, X accounts seen, the poller lease, API reads, rate windows,
staff accounts, throttle counts, Web Push subscriptions and outbox."""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, query_expression, relationship


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


class Office(Base):
    """A local site whose staff read its own accounts besides the company-wide ones."""

    __tablename__ = "offices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # BCP 47 tag of the office's feeds and labels (e.g. "fr"); None: the site's default language.
    language: Mapped[str | None] = mapped_column(String(16))
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


class Lease(Base):
    """A named lock with an expiry, so only one poller runs across machines."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiRead(Base):
    """An object the X API returned today: pay-per-use bills each once per UTC day."""

    __tablename__ = "api_reads"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(4), primary_key=True)  # "post" | "user"
    object_id: Mapped[str] = mapped_column(String(32), primary_key=True)


class RateWindow(Base):
    """An X rate-limit window, shared by every poller and command: per credential and endpoint.

    X counts calls per credential (the app's bearer token, or the reader account's
    access token) and per endpoint; `remaining` = 0 means no call until `reset_at`.
    The credential is named by a short hash, never stored.
    """

    __tablename__ = "rate_windows"

    credential: Mapped[str] = mapped_column(String(40), primary_key=True)  # "bearer:<hash>" | "reader:<hash>"
    endpoint: Mapped[str] = mapped_column(String(100), primary_key=True)  # X's template, e.g. /2/users/:id/tweets
    reset_at: Mapped[datetime] = mapped_column(UTCDateTime)
    remaining: Mapped[int | None] = mapped_column(Integer)
    limit: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SourceRequest(Base):
    """Work the console leaves for the poller (web nodes hold no X credentials), and its outcome.

    kind "add": look up username and follow it with these settings; "check": poll source_id now.
    state: "pending" until the poller takes it, then "done" or "failed" (outcome: X's reason in words).
    done_at: when it was answered; on a pending row, when a poller claimed it (feedapp.ingest.requests._claim).
    """

    __tablename__ = "source_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    username: Mapped[str] = mapped_column(String(50))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"))
    staff_only: Mapped[bool] = mapped_column(Boolean, default=False)
    review: Mapped[bool] = mapped_column(Boolean, default=False)
    no_replies: Mapped[bool] = mapped_column(Boolean, default=False)
    no_reposts: Mapped[bool] = mapped_column(Boolean, default=False)
    requested_by: Mapped[str] = mapped_column(String(50))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    outcome: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SiteFile(Base):
    """A file the console uploaded or made: the logo (re-encoded) and the icons made from it."""

    __tablename__ = "site_files"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)  # "logo", "icon-192", …
    content_type: Mapped[str] = mapped_column(String(40))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    etag: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SiteSetting(Base):
    """An installation-wide value: installation_id (minted by migration 0007), later the console's settings."""

    __tablename__ = "site_settings"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ScopeVersion(Base):
    """A counter per content scope (feedapp.content_scopes), bumped by every write that changes what its readers see.

    Pages and feeds derive ETag and Last-Modified from the versions of the scopes they
    show, and the render cache keys on them, so one small read per worker and second
    answers every conditional GET, and a write leaves the responses of other scopes alone.
    """

    __tablename__ = "scope_versions"

    scope: Mapped[str] = mapped_column(String(40), primary_key=True)  # "site", "public:office:3" …
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    """A staff account: no email, an office, a password set through a one-time invite."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(50), unique=True)  # stored lower-case
    display_name: Mapped[str] = mapped_column(String(100), default="")
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id", ondelete="SET NULL"), index=True)
    # "admin": everything; "editor": content and sources (of office_id only, when set); "staff": reads.
    role: Mapped[str] = mapped_column(String(10), default="staff", server_default="staff")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(300))  # None until the invite is used
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    office: Mapped[Office | None] = relationship()

    @property
    def is_admin(self) -> bool:
        """Whether the account may do everything, staff accounts and branding included."""
        return self.role == ROLE_ADMIN


class SignIn(Base):
    """One signed-in browser of a staff member. The cookie holds a random key; deleting the row signs it out."""

    __tablename__ = "sign_ins"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the key
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The browser's "keep me signed in" choice, kept when a password change signs it in afresh.
    remember: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Invite(Base):
    """A one-time link where a new (or locked-out) user sets a password."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ThrottleCount(Base):
    """Attempts counted by feedapp.throttle in one window, shared by every worker and node on this database."""

    __tablename__ = "throttle_counts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # e.g. "login-client:203.0.113.9"
    count: Mapped[int] = mapped_column(Integer)
    # Unix time (seconds) the window ends; a plain number compares the same on every engine.
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class FeedToken(Base):
    """The secret in a user's private feed URLs (RSS readers cannot sign in); stored hashed."""

    __tablename__ = "feed_tokens"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEvent(Base):
    """Who did what to whom, and when: every admin action."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(50))  # a username, or "cli"
    action: Mapped[str] = mapped_column(String(50))
    target: Mapped[str] = mapped_column(String(100), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


# --- Web Push (feedapp.push) ---------------------------------------------------------------------------------------

PUSH_PENDING, PUSH_SENT, PUSH_FAILED, PUSH_GONE = "pending", "sent", "failed", "gone"


class PushSubscription(Base):
    """A browser's push subscription (the Push API's PushSubscription.toJSON()) and whose news it gets.

    Scope: office_id (None: company-wide news only) and staff (made by a signed-in staff member, user_id:
    staff-only posts may be announced, and it goes when they sign out). Removed when the push service
    answers 404 or 410 (RFC 8030 §7.3: the subscription is gone).
    """

    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(1000), unique=True)
    p256dh: Mapped[str] = mapped_column(String(100))  # the browser's P-256 public key, base64url (65 bytes)
    auth: Mapped[str] = mapped_column(String(40))  # the authentication secret, base64url (16 bytes)
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id", ondelete="SET NULL"), index=True)
    staff: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0)


class PushMessage(Base):
    """One push waiting for (or done with) delivery to one subscription: the outbox the worker drains.

    state: "pending" until sent ("sent"), given up after retries ("failed"), or its subscription is gone
    ("gone"). not_before: not tried before then (Retry-After, backoff, quiet hours; a worker's claim
    pushes it forward for the duration of one send, so a crashed worker's rows come back by themselves).
    """

    __tablename__ = "push_outbox"
    __table_args__ = (Index("ix_push_outbox_due", "state", "not_before"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("push_subscriptions.id", ondelete="CASCADE"), index=True)
    topic: Mapped[str | None] = mapped_column(String(32))  # RFC 8030 §5.4: a newer message with it replaces this one
    payload: Mapped[str] = mapped_column(Text)  # JSON the service worker reads
    urgency: Mapped[str] = mapped_column(String(10), default="normal")  # RFC 8030 §5.3
    ttl: Mapped[int] = mapped_column(Integer, default=86400)  # seconds the push service may keep it (RFC 8030 §5.2)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(10), default=PUSH_PENDING)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
