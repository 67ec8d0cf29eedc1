"""The must-read push: the worker fans a marked post out to its audience's subscriptions, then one reminder. No Flask.

Marking a post must-read (feedapp.mustread) only writes a MustRead row; the worker (`poll --loop`, `push
deliver`) calls `announce_due` and `remind_due` at each wake, which queue outbox rows (feedapp.push.outbox)
with INSERT … SELECT, one statement per office, whatever the number of subscriptions. Each must-read is
claimed by a guarded UPDATE of its announced_at (reminded_at) in the same transaction as its rows, so it is
queued exactly once, however many workers run, and not at all if the transaction fails.

Lock screens are public: a staff-only post's notification carries neither its text nor its author, only a
generic line and the link to its page, which asks for sign-in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Integer, String, Text, and_, cast, delete, exists, insert, literal, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from feedapp.config import public_base_url, script_root
from feedapp.models import (PUSH_PENDING, Acknowledgement, MustRead, Office, Post, PushMessage, PushSubscription)
from feedapp.models.base import UTCDateTime
from feedapp.render.post import cut, readable_text
from feedapp.visibility import account_hidden, public_source, published

from .outbox import MAX_PAYLOAD, TOPIC_RE, PushInputError
from .quiet import QuietDefaults, office_window, release_time

TRANSLATIONS = Path(__file__).resolve().parent.parent.parent / "translations"
BODY_MAX = 140  # characters of post text on a lock screen: about what Android and iOS show before cutting
TTL = 4 * 86400  # seconds a push service keeps it for a phone that is off (RFC 8030 §5.2): a long weekend


def N_(message: str) -> str:
    """Marks a string for extraction (tools/update_translations.py); translated when the payload is built."""
    return message


MUST_READ = N_("Must read: %(author)s")
REMINDER = N_("Reminder — must read: %(author)s")
STAFF_TITLE = N_("A must-read post for staff")
STAFF_REMINDER = N_("Reminder: a must-read post for staff")
STAFF_BODY = N_("Sign in to read it.")
NO_TEXT = N_("Open it to see it.")


@dataclass(frozen=True)
class AnnounceSettings:
    """What the payloads need: where post pages are, the site's language and quiet-hours defaults."""

    base_url: str  # "https://feed.example.com" (or a path prefix, possibly "", when no public address is set)
    default_locale: str
    quiet: QuietDefaults
    translations: str = str(TRANSLATIONS)

    @classmethod
    def from_config(cls, config) -> AnnounceSettings:
        """From the app's settings; QuietHoursError for a bad FEEDAPP_TIME_ZONE or FEEDAPP_QUIET_HOURS."""
        base = public_base_url(config) or script_root(config)
        return cls(base, config.get("BABEL_DEFAULT_LOCALE") or "en", QuietDefaults.from_config(config))


def topic_for(post_id: int) -> str:
    """The push Topic of a post's must-read messages (RFC 8030 §5.4): a reminder replaces an undelivered first push."""
    topic = f"mr{post_id}"
    assert TOPIC_RE.match(topic)  # a BIGINT is at most 19 digits: 21 characters
    return topic


@lru_cache(maxsize=16)
def _translations(folder: str, locale: str):
    from babel.support import Translations

    return Translations.load(folder, [locale])  # NullTranslations (English) when there is no catalogue


def payload(post: Post, *, staff_only: bool, locale: str, settings: AnnounceSettings, reminder: bool = False) -> dict:
    """The JSON the service worker shows (templates/sw.js): title, body, url, tag, postId."""
    gettext = _translations(settings.translations, locale).gettext
    if staff_only:  # lock screens are public: no text, no author
        title, body = gettext(STAFF_REMINDER if reminder else STAFF_TITLE), gettext(STAFF_BODY)
    else:
        author = post.author_name or f"@{post.author_username}"
        title = gettext(REMINDER if reminder else MUST_READ) % {"author": author}
        text = " ".join(readable_text(post.text or "", post.links).split())
        body = cut(text, BODY_MAX) if text else gettext(NO_TEXT)
    topic = topic_for(post.id)
    return {"title": title, "body": body, "url": f"{settings.base_url}/posts/{post.id}", "tag": topic,
            "postId": str(post.id)}


def _live(now: datetime):
    return MustRead.ended_at.is_(None) & or_(MustRead.ends_at.is_(None), MustRead.ends_at > now)


def has_due(session_factory: sessionmaker[Session], now: datetime) -> bool:
    """Whether a must-read waits for its push or its reminder (one query over the few live must-reads)."""
    with session_factory() as session:
        return session.scalar(select(exists().where(_live(now), or_(
            MustRead.announced_at.is_(None), and_(MustRead.reminded_at.is_(None), MustRead.remind_at <= now)))))


def announce_due(session_factory: sessionmaker[Session], now: datetime, settings: AnnounceSettings) -> int:
    """Queue the push of every live must-read not yet announced whose post is published; the rows queued.

    A post waiting for review or hidden stays unannounced until it is published (never pushed meanwhile).
    """
    with session_factory() as session:
        due = list(session.scalars(select(MustRead.post_id).join(Post, Post.id == MustRead.post_id)
                                   .where(MustRead.announced_at.is_(None), _live(now), published(Post))
                                   .order_by(MustRead.marked_at, MustRead.post_id)))
    return sum(_fan_out(session_factory, post_id, now, settings, reminder=False) for post_id in due)


def remind_due(session_factory: sessionmaker[Session], now: datetime, settings: AnnounceSettings) -> int:
    """Queue the one reminder of every live, announced must-read whose remind_at has come; the rows queued.

    It goes to staff subscriptions of the audience whose owner has not acknowledged the post, with the same
    Topic, so it replaces the first push on a phone that has not fetched it yet. A post announced late (it
    waited for review) is reminded no sooner than the same delay after its announcement.
    """
    with session_factory() as session:
        rows = session.execute(
            select(MustRead.post_id, MustRead.marked_at, MustRead.remind_at, MustRead.announced_at)
            .join(Post, Post.id == MustRead.post_id)
            .where(MustRead.remind_at <= now, MustRead.reminded_at.is_(None), MustRead.announced_at.is_not(None),
                   _live(now), published(Post))
            .order_by(MustRead.remind_at, MustRead.post_id)).all()
    due = [r.post_id for r in rows if r.announced_at + (r.remind_at - r.marked_at) <= now]
    return sum(_fan_out(session_factory, post_id, now, settings, reminder=True) for post_id in due)


def _fan_out(session_factory: sessionmaker[Session], post_id: int, now: datetime, settings: AnnounceSettings,
             reminder: bool) -> int:
    """Claim one must-read's push (or reminder) and queue its rows, in one transaction; rows queued (0: not ours)."""
    stamp = MustRead.reminded_at if reminder else MustRead.announced_at
    with session_factory() as session:
        # PostgreSQL: lock the post first, so an editor hiding it meanwhile either waits for these rows (and
        # cancel_post_pushes then deletes them) or wins, and the claim below sees it hidden. A post another
        # worker holds is skipped: it is that worker's, or comes back at the next wake. (SQLite has one
        # writer at a time: the claim starts this write transaction, so it sees every committed hide.)
        locked = session.scalar(select(Post.id).where(Post.id == post_id, published(Post))
                                .with_for_update(skip_locked=True))
        if locked is None:
            return 0
        still_published = select(Post.id).where(Post.id == post_id, published(Post)).exists()
        claim = (update(MustRead).where(MustRead.post_id == post_id, stamp.is_(None), _live(now), still_published)
                 .values({stamp: now}).execution_options(synchronize_session=False))
        if session.execute(claim).rowcount != 1:  # another worker's, ended, or hidden meanwhile
            session.rollback()
            return 0
        must_read = session.scalar(select(MustRead).where(MustRead.post_id == post_id))
        post = session.get(Post, post_id)
        # The stored audience, and the accounts' current state: a source or author turned staff-only since the
        # post was marked must not have its text on a lock screen either.
        public = session.scalar(select(public_source(Post.source_id) & ~account_hidden(Post.author_id))
                                .where(Post.id == post_id))
        staff_only = must_read.staff_only or not public
        queued = _queue(session, post, must_read, staff_only, now, settings, reminder)
        session.commit()
    return queued


def _queue(session: Session, post: Post, must_read: MustRead, staff_only: bool, now: datetime,
           settings: AnnounceSettings, reminder: bool) -> int:
    """INSERT … SELECT the outbox rows of one must-read, one statement per office of the audience."""
    audience = []
    if must_read.office_id is not None:
        audience.append(PushSubscription.office_id == must_read.office_id)
    if staff_only or reminder:
        audience.append(PushSubscription.staff.is_(True))
    if reminder:  # staff who have not said "Got it"
        audience += [PushSubscription.user_id.is_not(None),
                     ~exists().where(Acknowledgement.post_id == post.id,
                                     Acknowledgement.user_id == PushSubscription.user_id)]
    if must_read.office_id is not None:
        groups = [session.get(Office, must_read.office_id)]
    else:
        groups = [None, *session.scalars(select(Office).order_by(Office.id))]
    topic = topic_for(post.id)
    queued = 0
    for office in groups:
        locale = (office.language if office is not None else None) or settings.default_locale
        body = json.dumps(payload(post, staff_only=staff_only, locale=locale, settings=settings, reminder=reminder),
                          ensure_ascii=False, separators=(",", ":"))
        if len(body.encode()) > MAX_PAYLOAD:  # cannot happen with BODY_MAX; said rather than sent cut by a service
            raise PushInputError(f"payload of {len(body.encode())} bytes for post {post.id}")
        not_before = release_time(now, office_window(office, settings.quiet))
        where = PushSubscription.office_id.is_(None) if office is None else PushSubscription.office_id == office.id
        rows = select(PushSubscription.id, literal(body, Text), literal(topic, String), literal("high", String),
                      literal(TTL, Integer), literal(not_before, UTCDateTime), literal(0, Integer),
                      literal(PUSH_PENDING, String), literal(now, UTCDateTime)).where(where, *audience)
        result = session.execute(insert(PushMessage).from_select(
            ["subscription_id", "payload", "topic", "urgency", "ttl", "not_before", "attempts", "state",
             "created_at"], rows).execution_options(preserve_rowcount=True))  # else -1 for an INSERT on psycopg
        queued += result.rowcount
    return queued


def cancel_post_pushes(session: Session, post_id: int) -> int:
    """Delete the post's must-read pushes not sent yet (hidden, or its must-read ended); how many. Caller commits.

    A row a worker is sending at this moment may still go out; its result then updates nothing.
    """
    result = session.execute(delete(PushMessage).where(PushMessage.topic == topic_for(post_id),
                                                       PushMessage.state == PUSH_PENDING))
    return result.rowcount or 0



def withdraw_exposed(session_factory: sessionmaker[Session], settings: AnnounceSettings) -> int:
    """Make the must-read pushes not sent yet safe again when their post is no longer published and public.

    Their payload may have been built while the post was public: its text and author, for every subscription
    of the audience. A source or author turned staff-only (or protected on X) while rows wait for an office's
    quiet hours to end must not put that text on a lock screen in the morning (lock screens are public): the
    rows of anonymous subscriptions go, staff ones get the generic line. Must-reads marked staff-only were
    queued that way already. The worker calls this before sending; the rows changed (usually one query, none).
    """
    still_public = published(Post) & public_source(Post.source_id) & ~account_hidden(Post.author_id)
    waiting = exists().where(PushMessage.topic == literal("mr").concat(cast(MustRead.post_id, String)),
                             PushMessage.state == PUSH_PENDING)
    changed = 0
    with session_factory() as session:
        exposed = list(session.scalars(select(MustRead.post_id).join(Post, Post.id == MustRead.post_id)
                                       .where(MustRead.staff_only.is_(False), ~still_public, waiting)))
        for post_id in exposed:
            post = session.get(Post, post_id)
            pending = (PushMessage.topic == topic_for(post_id), PushMessage.state == PUSH_PENDING)
            anonymous = select(PushSubscription.id).where(PushSubscription.staff.is_(False))
            changed += session.execute(delete(PushMessage).where(*pending, PushMessage.subscription_id.in_(anonymous))
                                       .execution_options(synchronize_session=False)).rowcount or 0
            for office in [None, *session.scalars(select(Office).order_by(Office.id))]:
                locale = (office.language if office is not None else None) or settings.default_locale
                body = json.dumps(payload(post, staff_only=True, locale=locale, settings=settings),
                                  ensure_ascii=False, separators=(",", ":"))
                where = PushSubscription.office_id.is_(None) if office is None else PushSubscription.office_id == office.id
                staff = select(PushSubscription.id).where(PushSubscription.staff.is_(True), where)
                changed += session.execute(update(PushMessage).where(*pending, PushMessage.subscription_id.in_(staff))
                                           .values(payload=body).execution_options(synchronize_session=False)
                                           ).rowcount or 0
        session.commit()
    return changed
