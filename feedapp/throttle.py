"""Attempt counters that every worker and node shares: the sign-in and password-check throttles.

No Flask here. An attempt takes a slot under each of its limits *before* the
password is checked, in one atomic step per counter, so concurrent guesses
cannot all slip in under the limit; one that is refused, or that succeeds
where a limit counts failures only, gives its slots back. Windows are fixed
and start at the first counted attempt (5 per 15 minutes means: once 5 are
counted, nothing more until 15 minutes after the first).

Storage is the app's own database by default (one `INSERT … ON CONFLICT DO
UPDATE … RETURNING` per counter: SQLite 3.35+ and PostgreSQL), so all workers
of a box and all nodes on one PostgreSQL count together with no extra service;
or Redis (`redis://…`, one Lua script per counter) when many nodes share it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import case, delete, update
from sqlalchemy.engine import Engine

from .models import ThrottleCount

log = logging.getLogger(__name__)

MAX_KEY = 200  # the column's width; longer keys are hashed
PURGE_EVERY = 200  # hits between deletions of finished windows (per process)


@dataclass(frozen=True)
class Limit:
    """At most `count` counted attempts per `seconds` under each subject of one name."""

    name: str
    count: int
    seconds: int
    failures_only: bool = True  # a successful attempt gives its slot back


@dataclass(frozen=True)
class Slot:
    """One counted attempt: which counter, and which window of it (a later window is not touched)."""

    key: str
    window: str
    expires_at: float


class Storage(Protocol):
    """Where counters live; every method is one atomic step."""

    def hit(self, key: str, seconds: int, now: float) -> tuple[int, Slot]:
        """Count one attempt under key; the count in the current window, and the slot taken."""

    def give_back(self, slot: Slot) -> None:
        """Uncount an attempt, if its window is still the current one."""


@dataclass
class Attempt:
    """The outcome of asking to try: allowed (slots held), or refused by one limit for retry_after seconds."""

    throttle: Throttle
    slots: list[tuple[Limit, Slot]] = field(default_factory=list)
    refused_by: Limit | None = None
    retry_after: int = 0

    @property
    def allowed(self) -> bool:
        return self.refused_by is None

    def succeeded(self) -> None:
        """The password was right: give back the slots of limits that count failures only."""
        self.throttle._give_back([slot for limit, slot in self.slots if limit.failures_only])
        self.slots = [(limit, slot) for limit, slot in self.slots if not limit.failures_only]


class Throttle:
    """Counts attempts in a Storage; `attempt()` is the one entry point."""

    def __init__(self, storage: Storage, clock: Callable[[], float] = time.time):
        self.storage, self.clock = storage, clock

    def attempt(self, checks: Iterable[tuple[Limit, str]]) -> Attempt:
        """Take a slot under each (limit, subject) in order; over any limit, give all back and refuse."""
        attempt = Attempt(self)
        for limit, subject in checks:
            now = self.clock()
            count, slot = self.storage.hit(counter_key(limit, subject), limit.seconds, now)
            attempt.slots.append((limit, slot))
            if count > limit.count:
                # A refused attempt never reaches the password check, so it counts against nothing.
                self._give_back([s for _, s in attempt.slots])
                attempt.slots = []
                attempt.refused_by = limit
                attempt.retry_after = max(1, math.ceil(slot.expires_at - now))
                break
        return attempt

    def _give_back(self, slots: list[Slot]) -> None:
        for slot in slots:
            self.storage.give_back(slot)


def counter_key(limit: Limit, subject: str) -> str:
    """The storage key of one subject's counter under limit (hashed when it would not fit)."""
    key = f"{limit.name}:{subject}"
    if len(key) > MAX_KEY:
        key = f"{limit.name}:sha256:{hashlib.sha256(subject.encode()).hexdigest()}"
    return key


# --------------------------------------------------------------------------- the database


class DatabaseStorage:
    """Counters in the app's database table throttle_counts: one upsert per hit, in its own transaction."""

    def __init__(self, engine: Engine, purge_every: int = PURGE_EVERY):
        self.engine, self.purge_every = engine, purge_every
        self._hits = 0
        self._lock = threading.Lock()

    def hit(self, key: str, seconds: int, now: float) -> tuple[int, Slot]:
        table = ThrottleCount.__table__
        insert = _insert_for(self.engine.dialect.name)
        stmt = insert(table).values(key=key, count=1, expires_at=now + seconds)
        finished = table.c.expires_at <= now
        # SET expressions see the row as it was (SQL: all right-hand sides use the old values).
        stmt = stmt.on_conflict_do_update(index_elements=[table.c.key], set_={
            "count": case((finished, 1), else_=table.c.count + 1),
            "expires_at": case((finished, stmt.excluded.expires_at), else_=table.c.expires_at),
        }).returning(table.c.count, table.c.expires_at)
        with self.engine.begin() as conn:
            count, expires_at = conn.execute(stmt).one()
        self._maybe_purge(now)
        return count, Slot(key, repr(expires_at), expires_at)

    def give_back(self, slot: Slot) -> None:
        table = ThrottleCount.__table__
        with self.engine.begin() as conn:
            conn.execute(update(table)
                         .where(table.c.key == slot.key, table.c.expires_at == slot.expires_at, table.c.count > 0)
                         .values(count=table.c.count - 1))

    def _maybe_purge(self, now: float) -> None:
        with self._lock:
            self._hits += 1
            due = self._hits % self.purge_every == 1  # the first hit of a process, then every purge_every
        if due:
            self.purge(now)

    def purge(self, now: float) -> int:
        """Delete counters whose window has ended; returns how many."""
        with self.engine.begin() as conn:
            return conn.execute(delete(ThrottleCount).where(ThrottleCount.expires_at <= now)).rowcount or 0


def _insert_for(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise RuntimeError(f"the database throttle needs SQLite or PostgreSQL, not {dialect}; "
                           "set FEEDAPP_RATELIMIT_STORAGE_URL=redis://…")
    return insert


# --------------------------------------------------------------------------- Redis

# A hash per counter: n (the count) and e (when the window ends, ms). HINCRBY is Redis's INCR for a
# hash field; the key expires with its window (PEXPIREAT), so Redis tidies up by itself. One script:
# atomic, and a key can never be left without its expiry.
HIT_SCRIPT = """
local e = redis.call('HGET', KEYS[1], 'e')
if (not e) or tonumber(e) <= tonumber(ARGV[2]) then
  e = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', e, 'n', 1)
  redis.call('PEXPIREAT', KEYS[1], e)
  return {1, e}
end
return {redis.call('HINCRBY', KEYS[1], 'n', 1), e}
"""
GIVE_BACK_SCRIPT = """
if redis.call('HGET', KEYS[1], 'e') == ARGV[1] and tonumber(redis.call('HGET', KEYS[1], 'n')) > 0 then
  redis.call('HINCRBY', KEYS[1], 'n', -1)
end
return 0
"""
DEFAULT_PREFIX = "feedapp:throttle:"


class RedisStorage:
    """Counters in Redis, for many nodes; `?prefix=NAME` in the URL names this site's keys (feedapp:throttle:)."""

    def __init__(self, url: str):
        import redis

        url, self.prefix = split_prefix(url)
        # Connects on first use: building the app does no I/O.
        self.client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._hit = self.client.register_script(HIT_SCRIPT)
        self._give_back = self.client.register_script(GIVE_BACK_SCRIPT)

    def hit(self, key: str, seconds: int, now: float) -> tuple[int, Slot]:
        now_ms = int(now * 1000)
        count, window = self._hit(keys=[self.prefix + key], args=[now_ms + seconds * 1000, now_ms])
        window = window.decode() if isinstance(window, bytes) else str(window)
        return int(count), Slot(self.prefix + key, window, int(window) / 1000)

    def give_back(self, slot: Slot) -> None:
        self._give_back(keys=[slot.key], args=[slot.window])


def split_prefix(url: str) -> tuple[str, str]:
    """(the Redis URL without our `prefix` parameter, the key prefix)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "prefix"), DEFAULT_PREFIX)
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


def storage_for(url: str | None, engine: Engine) -> Storage:
    """The storage FEEDAPP_RATELIMIT_STORAGE_URL names: unset or "database" → the app's database; redis://… → Redis."""
    url = (url or "").strip()
    if url in ("", "database"):
        return DatabaseStorage(engine)
    if url.startswith("memory://"):
        # The old default counted per worker process (5 failures became 5 × workers): the database replaces it.
        log.warning("FEEDAPP_RATELIMIT_STORAGE_URL=memory:// is no longer used: sign-in attempts are counted in "
                    "the database so that every worker counts together; remove the setting")
        return DatabaseStorage(engine)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStorage(url)
    raise RuntimeError(f"FEEDAPP_RATELIMIT_STORAGE_URL={url!r} is not valid: leave it unset (the database) "
                       "or give a Redis URL such as redis://127.0.0.1:6379/0")
