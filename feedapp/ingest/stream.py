"""The filtered stream worker: rules in step with the sources, one connection, every gap filled by a poll.

Two threads, run by `poll --loop` while it holds the poller lease (so one process holds the stream):
- the reader keeps the connection, stores each post it delivers through store_posts, and reconnects
  as X asks ("Handling disconnections": linear back-off from 250 ms to 16 s after network errors,
  exponential from 5 s to 320 s after HTTP errors, from 1 minute after a 429);
- the keeper, every couple of seconds, keeps our rules in step with the sources (public, not paused),
  fills the gap of each source the current connection does not cover yet with one timeline poll
  (from its newest stored id up to the first post the stream delivered, so no post is read twice),
  and writes the status row.
Nothing is lost across a disconnect or a restart: coverage ends with the connection, and the
next connection fills every gap again; until then the poll cycle polls those sources as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import false, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from feedapp.models import Source, utcnow
from feedapp.xapi import AuthError, MalformedResponse, RateLimited, XClient, XError, XSettings, XUser
from feedapp.xapi.normalize import normalize_page
from feedapp.xapi.stream import RULE_MAX, StreamDisconnected, StreamedPost, StreamHTTPError, StreamRefused, XStream

from . import stream_status
from .coverage import Coverage
from .fetch import is_reply_to_other
from .poll import PollJob, PollSettings, ThreadClients, poll_source
from .ratelimits import DbRateLimits
from .store import record_reads, store_posts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamSettings:
    """How the stream worker waits and watches."""

    stall: float = 90.0  # seconds without a byte: a dead connection (X: keep-alive every 20 s, reconnect after 90)
    tick: float = 2.0  # seconds between the keeper's checks of sources, rules and gaps
    rules_recheck: float = 900.0  # seconds between reads of X's rules even when no source changed
    refused_retry: float = 3600.0  # seconds before trying again a stream X refused (a plan may be upgraded)
    rule_max: int = RULE_MAX

    @classmethod
    def from_config(cls, config) -> StreamSettings:
        """Settings from a mapping holding the FEEDAPP_* keys."""
        return cls(stall=float(config["FEEDAPP_STREAM_STALL"]))


class Reconnect:
    """X's back-off between connection attempts (filtered stream, "Handling disconnections")."""

    NETWORK_STEP, NETWORK_MAX = 0.25, 16.0  # TCP/IP errors, stalls, closed connections: linear
    HTTP_START, RATE_START, HTTP_MAX = 5.0, 60.0, 320.0  # HTTP errors: exponential; 429 starts at a minute

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """A connection delivered data: the next failure starts from the shortest wait again."""
        self._network = 0.0
        self._http = 0.0

    def after_network_error(self) -> float:
        """Seconds to wait after a network error: 0.25, 0.5, … up to 16."""
        self._network = min(self._network + self.NETWORK_STEP, self.NETWORK_MAX)
        return self._network

    def after_http_error(self, status: int) -> float:
        """Seconds to wait after an HTTP error: 5, 10, 20, … up to 320 (429: 60, 120, 240, 320)."""
        start = self.RATE_START if status == 429 else self.HTTP_START
        self._http = start if self._http < start else min(self._http * 2, self.HTTP_MAX)
        return self._http


@dataclass(frozen=True)
class Streamed:
    """A source the rules follow: where its posts go."""

    source_id: int
    username: str


class StreamWorker:
    """The filtered stream for one deployment: start() while holding the poller lease, stop() when done."""

    def __init__(self, sessions: sessionmaker[Session], x_settings: XSettings, poll: PollSettings,
                 settings: StreamSettings | None = None, *, wait: Callable[[threading.Event, float], bool] | None = None,
                 lost: threading.Event | None = None):
        self.sessions = sessions
        self.x_settings = x_settings
        self.poll = poll
        self.settings = settings or StreamSettings()
        self.coverage = Coverage()
        # How the reader waits between attempts: Event.wait, or a test's recorder.
        self._wait = wait or (lambda event, seconds: event.wait(seconds))
        self._stop = threading.Event()
        self._lost = lost  # the poller lease's `lost`: set, the stream is another process's to hold
        self._threads: list[threading.Thread] = []
        self._stream: XStream | None = None
        self._authors: dict[str, Streamed] = {}  # X user id -> source, for the accounts our rules follow
        self._synced: dict[str, bool] | None = None  # what the rules were last made to follow
        self._synced_at = 0.0
        self._rules_retry_at = 0.0
        self._attempted: dict[int, int] = {}  # source id -> generation of its last failed gap fill
        self._state, self._detail = stream_status.CONNECTING, None
        self._status_written = (None, None, -1, -1)
        self._status_at = 0.0
        self._status_lock = threading.Lock()  # the reader and the keeper both report
        self.delivered = 0  # posts delivered on the current connection
        self.refused: str | None = None
        self.waits: deque[tuple[str, float]] = deque(maxlen=100)  # (why, seconds) of recent back-offs, newest last

    # ------------------------------------------------------------------ life cycle
    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def start(self) -> None:
        """Connect and keep connected from two threads, until stop()."""
        if self.running:
            return
        self._stop.clear()
        self._stream = XStream(self.x_settings, stall=self.settings.stall)
        self._synced, self._synced_at = None, 0.0
        self._threads = [threading.Thread(target=self._read_forever, name="stream-reader", daemon=True),
                         threading.Thread(target=self._keep_forever, name="stream-keeper", daemon=True)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Hang up, stop both threads and say so in the status row."""
        self._stop.set()
        if self._stream is not None:
            self._stream.disconnect()
        for thread in self._threads:
            thread.join()
        self._threads = []
        self.coverage.closed()
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self._lost is None or not self._lost.is_set():  # else the row is the new holder's to write
            self._set_state(stream_status.STOPPED, None)
            self._write_status(force=True)

    def covers(self, source_id: int) -> bool:
        """Whether this source's posts arrive by the stream now (the poll cycle leaves it out)."""
        return self.coverage.covers(source_id)

    # ------------------------------------------------------------------ the reader
    def _read_forever(self) -> None:
        backoff = Reconnect()
        while not self._stop.is_set():
            if self._synced is None and not self._wait_for(lambda: self._synced is not None or self.refused):
                return  # stopped before the first rules sync: nothing to connect for yet
            if self.refused:
                self._set_state(stream_status.REFUSED, self.refused)
                if self._pause("refused", self.settings.refused_retry):
                    return
                self.refused = None
                continue
            self.delivered = 0
            heard = threading.Event()
            try:
                self._stream.read(on_connect=self._opened,
                                  on_post=lambda post: (heard.set(), self._store(post)),
                                  on_keep_alive=heard.set)
            except StreamRefused as exc:
                self.refused = str(exc)
                log.error("filtered stream refused: %s; polling covers every source", exc)
                continue
            except StreamHTTPError as exc:
                seconds, why = backoff.after_http_error(exc.status), str(exc)
            except StreamDisconnected as exc:
                if heard.is_set():
                    backoff.reset()
                seconds, why = backoff.after_network_error(), str(exc)
            except Exception as exc:  # noqa: BLE001 - a post we could not store: reconnect, the gap fill recovers it
                log.exception("filtered stream: storing a post failed; reconnecting")
                seconds, why = backoff.after_network_error(), f"a post could not be stored ({type(exc).__name__})"
            finally:
                self.coverage.closed()
            if self._stop.is_set():
                return
            log.warning("filtered stream: %s; reconnecting in %g s", why, seconds)
            self._set_state(stream_status.RECONNECTING, f"{why}; next try in {seconds:g} s")
            if self._pause(why, seconds):
                return

    def _opened(self) -> None:
        if self._stop.is_set():  # stop() hung up just before this attempt began: don't read on
            raise StreamDisconnected("the stream was closed")
        generation = self.coverage.opened()
        log.info("filtered stream connected (connection %d)", generation)
        self._set_state(stream_status.LIVE, None)

    def _store(self, post: StreamedPost) -> None:
        """Store one delivered post (and bill its objects) in one transaction; raises on a database error."""
        streamed = self._authors.get(post.author_id)
        post_id = post.id
        generation, live = (self.coverage.delivered(streamed.source_id, post_id) if streamed
                            else (self.coverage.generation, False))
        with self.sessions() as session:
            record_reads(session, "post", list(post.post_ids))  # X bills what it delivered, ours or not
            record_reads(session, "user", list(post.user_ids))
            source = session.get(Source, streamed.source_id) if streamed else None
            page = None
            if source is not None and not source.paused:
                owner = XUser(id=source.x_id, username=source.username, name=source.display_name,
                              avatar_url=source.avatar_url, protected=source.protected)
                try:
                    page = normalize_page(post.body, source_user=owner)
                except MalformedResponse as exc:
                    # The timeline has it whole: end this source's coverage so a gap fill reads it (and the
                    # posts after it stop moving since_id past it meanwhile).
                    log.warning("filtered stream: post %s unreadable (%s); its source's gap is filled again",
                                post_id, exc)
                    self.coverage.drop([source.id])
                    page = None
                if page is not None:
                    kept = [p for p in page.posts if not (source.no_replies and is_reply_to_other(p))
                            and not (source.no_reposts and p.repost_of_id)]
                    store_posts(session, source, kept)
                    if live:  # covered: a later poll (after a disconnect) starts after this post
                        session.execute(update(Source).where(
                            Source.id == source.id, or_(Source.since_id.is_(None), Source.since_id < post_id)
                        ).values(since_id=post_id))
            session.commit()
        self.delivered += 1
        if streamed and page is not None:  # a gap fill's end moves past stored posts only
            self.coverage.stored(generation, streamed.source_id, post_id)

    def _pause(self, why: str, seconds: float) -> bool:
        """Wait before the next attempt; True when stopped meanwhile."""
        self.waits.append((why, seconds))
        self._wait(self._stop, seconds)
        return self._stop.is_set()

    def _wait_for(self, ready: Callable[[], object]) -> bool:
        while not ready():
            if self._stop.wait(0.05):
                return False
        return True

    # ------------------------------------------------------------------ the keeper
    def _keep_forever(self) -> None:
        template = XClient(self.x_settings, DbRateLimits(self.sessions))
        clients = ThreadClients(template)  # one HTTP session per gap-fill thread, kept for the worker's life
        pool = ThreadPoolExecutor(max_workers=self.poll.concurrency, thread_name_prefix="stream-gap")
        try:
            while True:
                if self._lost is not None and self._lost.is_set():
                    # Hang up within a tick, not at the poller's next wake: the new holder's connection would
                    # otherwise be refused (one connection per app) and back off for a minute.
                    log.error("filtered stream: the poller lease was lost; hanging up")
                    self._stop.set()
                    self._stream.disconnect()
                    return
                try:
                    self._sync_rules()
                    self._fill_gaps(pool, clients)
                    self._write_status()
                except Exception:  # noqa: BLE001 - the database or a bug: log, try again next tick
                    log.exception("filtered stream keeper failed; retrying")
                if self._stop.wait(self.settings.tick):
                    return
        finally:
            pool.shutdown(wait=True)
            clients.close()
            template.close()

    def _wanted(self, session: Session) -> list[tuple[int, str, str, bool]]:
        """(id, X id, username, leave reposts out) of every source the stream should follow."""
        rows = session.execute(select(Source.id, Source.x_id, Source.username, Source.no_reposts)
                               .where(Source.protected == false(), Source.paused == false())
                               .order_by(Source.id)).all()
        return [tuple(row) for row in rows]

    def _sync_rules(self) -> None:
        """Rules in step with the sources: when a source changed, and every rules_recheck seconds anyway."""
        if self.refused or time.monotonic() < self._rules_retry_at:
            return
        with self.sessions() as session:
            rows = self._wanted(session)
        wanted = {username: no_reposts for _, _, username, no_reposts in rows}
        fresh = time.monotonic() - self._synced_at < self.settings.rules_recheck
        if self._synced is not None and wanted == self._synced and fresh:
            return
        try:
            result = self._stream.sync_rules(wanted, self.settings.rule_max)
        except StreamRefused as exc:
            self.refused = str(exc)
            return
        except RateLimited as exc:
            self._rules_retry_at = time.monotonic() + max(1.0, (exc.reset_at - utcnow()).total_seconds())
            log.warning("filtered stream rules: %s", exc)
            return
        except AuthError as exc:  # 401/403: the token, or an app or plan without the filtered stream
            self.refused = str(exc)
            return
        except XError as exc:
            self._rules_retry_at = time.monotonic() + 30.0
            log.warning("filtered stream rules not synced: %s", exc)
            return
        for problem in result.problems:
            log.warning("filtered stream rule refused: %s", problem)
        authors = {x_id: Streamed(source_id, username) for source_id, x_id, username, _ in rows
                   if username.lower() in result.following}
        gone = {s.source_id for s in self._authors.values()} - {s.source_id for s in authors.values()}
        # A source renamed on X: `from:old` matched nothing since the rename, so its gap is filled again.
        gone |= {s.source_id for x_id, s in authors.items()
                 if x_id in self._authors and self._authors[x_id].username.lower() != s.username.lower()}
        self._authors = authors
        self.coverage.drop(gone)
        self._synced, self._synced_at = wanted, time.monotonic()
        if result.added or result.deleted:
            log.info("filtered stream rules: %d added, %d deleted; %d accounts followed",
                     result.added, result.deleted, len(result.following))

    def _fill_gaps(self, pool: ThreadPoolExecutor, clients: ThreadClients) -> None:
        """One timeline poll of each followed source the current connection does not cover yet."""
        coverage = self.coverage
        with coverage.lock:
            if not coverage.connected:
                return
            generation = coverage.generation
            todo = [s.source_id for s in self._authors.values() if s.source_id not in coverage.live]
        if not todo:
            return
        now = utcnow()
        with self.sessions() as session:
            due = dict(session.execute(select(Source.id, Source.next_check_at).where(Source.id.in_(todo))).all())
        # A fill that failed waits for the source's back-off, like a poll would; a new connection tries at once.
        todo = [i for i in todo if i in due and (self._attempted.get(i) != generation
                                                  or due[i] is None or due[i] <= now)]
        if not todo:
            return

        def fill(source_id: int) -> None:
            if self._stop.is_set() or not coverage.claim(source_id):
                return
            try:
                self._attempted.pop(source_id, None)  # only a failed fill waits for the source's back-off
                with coverage.lock:
                    until = coverage.oldest.get(source_id) if generation == coverage.generation else None
                result = poll_source(PollJob(self.sessions, clients.mine(), self.poll, now), source_id, until)
                if result.error or result.skipped:
                    self._attempted[source_id] = generation
                    log.warning("filtered stream: gap of %s not filled: %s", result.username,
                                result.error or result.skipped)
                    return
                made, newest = coverage.make_live(generation, source_id)
                if made and newest is not None:
                    with self.sessions() as session:
                        session.execute(update(Source).where(
                            Source.id == source_id, or_(Source.since_id.is_(None), Source.since_id < newest)
                        ).values(since_id=newest))
                        session.commit()
            finally:
                coverage.release(source_id)

        list(pool.map(fill, todo))

    # ------------------------------------------------------------------ status
    def _set_state(self, state: str, detail: str | None) -> None:
        self._state, self._detail = state, detail
        self._write_status()

    def _write_status(self, force: bool = False) -> None:
        """The status row, when something changed or the heartbeat is due (never on every post)."""
        with self._status_lock:
            self._write_status_locked(force)

    def _write_status_locked(self, force: bool) -> None:
        streamed = len(self.coverage.live)
        now_key = (self._state, self._detail, streamed, min(self.delivered, 1))
        due = time.monotonic() - self._status_at >= stream_status.HEARTBEAT.total_seconds() / 2
        if not force and now_key == self._status_written and not due:
            return
        try:
            with self.sessions() as session:
                stream_status.write_status(session, self._state, self._detail, streamed_sources=streamed,
                                           delivered=self.delivered)
                session.commit()
        except Exception:  # noqa: BLE001 - the status is a report; the stream goes on without it
            log.warning("filtered stream status not written", exc_info=True)
            return
        self._status_written, self._status_at = now_key, time.monotonic()
