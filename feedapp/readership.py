"""Readership counts without tracking: views, post-page opens and feed readers per day, never a reader.

No Flask here. Every write adds to a count (one atomic upsert: INSERT … ON CONFLICT DO UPDATE, PostgreSQL
and SQLite 3.24+), so nothing records which person, device or time of day read what. Feed clients are
counted distinct per day through a keyed hash of address and User-Agent under that day's salt: the salt
is random, kept in one site setting for the current UTC day only, and replaced when the day changes or
deleted by the poller once its day is over, whichever comes first, so no past day's hash can ever be
recomputed from an address; the raw address and User-Agent are never stored. Reads (feedapp.reach_report)
show groups under SMALL merged into "other" and small numbers as "fewer than 5".
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from functools import lru_cache
from collections.abc import Iterable
from datetime import date, timedelta

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.orm import Session

from feedapp.models import FeedReader, FeedSubscribers, Post, ReadCount, SiteSetting, Source
from feedapp.visibility import published

KINDS = ("view", "open")
COMPANY_PAGE = 0  # ReadCount.office_id of the company feed, and of every post page (the same for all offices)
MAX_IDS = 50  # ids taken from one batch; a page sends one every 10 views, so more is not a real reader
SALT_KEY = "reach_salt"
# Rows of distinct feed clients older than this go when the salt rotates. Each day's rows are hashes under a salt
# that no longer exists, so they link to nobody and not to each other; the cap only bounds the table.
READER_DAYS = 400
MAX_SUBSCRIBERS = 10_000_000  # an aggregator's claim above this is not believed (it fits the column)


def _insert(session: Session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def valid_ids(raw: Iterable[int], limit: int = MAX_IDS) -> list[int]:
    """The first `limit` distinct ids of raw, in ascending order (upserts in one order cannot deadlock)."""
    seen: list[int] = []
    for one in raw:
        if one not in seen:
            seen.append(one)
        if len(seen) == limit:
            break
    return sorted(seen)


def record_views(session: Session, day: date, office_id: int, post_ids: Iterable[int], kind: str) -> int:
    """Add one to the day's count of each post the page could show among post_ids; how many were counted.

    A view (kind "view") counts only for a stored published post of the company or of office_id (0: the
    company feed, company-wide posts only); an open of a post's page for any stored published post.
    Unknown ids, and ids beyond MAX_IDS, are ignored; each id counts once per batch.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    ids = valid_ids(post_ids)
    if not ids:
        return 0
    stmt = select(Post.id).where(Post.id.in_(ids), published())
    if kind == "view":
        stmt = stmt.join(Source, Source.id == Post.source_id).where(
            or_(Source.office_id.is_(None), Source.office_id == (office_id or None)))
    known = sorted(session.scalars(stmt))
    if not known:
        return 0
    table = ReadCount.__table__
    insert = _insert(session)
    stmt = insert(table).values([{"day": day, "kind": kind, "post_id": post_id, "office_id": office_id, "count": 1}
                                 for post_id in known])
    # count + excluded.count in the database: concurrent batches add up, none overwrites another.
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.day, table.c.kind, table.c.post_id, table.c.office_id],
        set_={"count": table.c.count + stmt.excluded.count})
    session.execute(stmt)
    return len(known)


def record_feed_reader(session: Session, day: date, feed: str, client_hash: str) -> None:
    """Note that a client (its salted hash) fetched a feed on day; once per client, feed and day."""
    insert = _insert(session)
    stmt = insert(FeedReader.__table__).values(day=day, feed=feed[:80], client=client_hash[:32])
    session.execute(stmt.on_conflict_do_nothing())


def record_subscribers(session: Session, day: date, feed: str, aggregator: str, n: int) -> None:
    """Keep the highest subscriber count an aggregator reported for a feed on day."""
    table = FeedSubscribers.__table__
    insert = _insert(session)
    stmt = insert(table).values(day=day, feed=feed[:80], aggregator=aggregator[:60],
                                subscribers=max(0, min(int(n), MAX_SUBSCRIBERS)))
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.day, table.c.feed, table.c.aggregator],
        set_={"subscribers": case((stmt.excluded.subscribers > table.c.subscribers, stmt.excluded.subscribers),
                                  else_=table.c.subscribers)})
    session.execute(stmt)


# --------------------------------------------------------------------------- aggregators' User-Agents

# How the common aggregators name themselves (each puts its subscriber count in its User-Agent, except those
# that fetch for one person, such as Tiny Tiny RSS: those count as one client).
KNOWN = (
    (re.compile(r"\bfeedly\b", re.I), "Feedly"),
    (re.compile(r"\binoreader\b", re.I), "Inoreader"),
    (re.compile(r"\bnewsblur\b", re.I), "NewsBlur"),
    (re.compile(r"\bfeedbin\b", re.I), "Feedbin"),
    (re.compile(r"\btheoldreader\b|\bthe old reader\b", re.I), "The Old Reader"),
    (re.compile(r"\btiny tiny rss\b|\btt-rss\b", re.I), "Tiny Tiny RSS"),
    (re.compile(r"\bfeedfetcher-google\b", re.I), "Google Feedfetcher"),
)
COUNT_RE = re.compile(r"(\d{1,9})\s+(?:subscribers?|readers?)\b", re.I)
COMPATIBLE_RE = re.compile(r"compatible;\s*([A-Za-z][\w.\- ]{0,58}?)\s*(?:/[\w.]*)?\s*[;)]")
PRODUCT_RE = re.compile(r"\s*([A-Za-z][\w.\-]{0,58})")


@lru_cache(maxsize=1024)  # a feed's readers send the same few User-Agents all day
def parse_aggregator(user_agent: str | None) -> tuple[str, int | None] | None:
    """(the aggregator's name, the subscribers its User-Agent reports or None) or None for an ordinary client."""
    ua = (user_agent or "")[:512]
    count = COUNT_RE.search(ua)
    n = min(int(count.group(1)), MAX_SUBSCRIBERS) if count else None
    for pattern, name in KNOWN:
        if pattern.search(ua):
            return name, n
    if n is None:
        return None
    # A generic "N subscribers" or "N readers": its product name, or the name after "compatible;".
    named = COMPATIBLE_RE.search(ua) if ua.startswith("Mozilla/") else None
    name = (named or PRODUCT_RE.match(ua))
    return (name.group(1).strip() if name else "other")[:60], n


# --------------------------------------------------------------------------- the daily salt


def daily_salt(session: Session, day: date) -> bytes:
    """This UTC day's salt: the stored one while it is today's, else a new random one replacing it.

    Every worker ends up with the same salt (the replacement is a compare-and-set on the old value, and
    whoever loses reads the winner's), so a client counts once whichever worker answers it. Making a new
    day's salt (replacing the last, or after the poller deleted it) also deletes feed-reader rows older than
    READER_DAYS.
    """
    for _ in range(3):
        row = session.get(SiteSetting, SALT_KEY, populate_existing=True)
        if row is not None:
            stored_day, _, salt = row.value.partition(":")
            if stored_day >= day.isoformat() and salt:
                return bytes.fromhex(salt)
        fresh = f"{day.isoformat()}:{secrets.token_hex(32)}"
        if row is None:
            insert = _insert(session)
            session.execute(insert(SiteSetting.__table__).values(key=SALT_KEY, value=fresh)
                            .on_conflict_do_nothing())
        else:
            session.execute(update(SiteSetting).where(SiteSetting.key == SALT_KEY, SiteSetting.value == row.value)
                            .values(value=fresh).execution_options(synchronize_session=False))
        # Whether it replaced a salt or found none (the poller drops a finished day's: drop_stale_salt), a new day.
        session.execute(delete(FeedReader).where(FeedReader.day < day - timedelta(days=READER_DAYS)))
        session.commit()
    raise RuntimeError("the daily salt kept changing under us")


def drop_stale_salt(session: Session, today: date) -> bool:
    """Delete the stored salt if its UTC day is before today; whether it did. Caller commits.

    daily_salt replaces a salt only at a later day's first feed answer: on a quiet site a finished day's
    salt would stay in the database (and in its backups) until then, and with it the means to recompute that
    day's client hashes from guessed addresses. The poll cycle calls this (feedapp.ingest.poll).
    """
    value = session.scalar(select(SiteSetting.value).where(SiteSetting.key == SALT_KEY))
    if value is None or value.partition(":")[0] >= today.isoformat():
        return False
    # Compare-and-delete, as daily_salt compares-and-sets: a web worker may have just put today's salt in its place.
    result = session.execute(delete(SiteSetting).where(SiteSetting.key == SALT_KEY, SiteSetting.value == value)
                             .execution_options(synchronize_session=False))
    return result.rowcount == 1


def client_hash(salt: bytes, feed: str, address: str, user_agent: str) -> str:
    """The day's pseudonym of a client of one feed: HMAC-SHA256 under the salt of the feed, its address and User-Agent.

    The feed is in the message so one client's rows of different feeds (its private feed, its office's) do
    not share a hash: the rows count readers per feed and cannot be joined into what one client reads.
    """
    message = f"{feed}\n{address}\n{user_agent}".encode("utf-8", "replace")
    return hmac.new(salt, message, hashlib.sha256).hexdigest()[:32]
