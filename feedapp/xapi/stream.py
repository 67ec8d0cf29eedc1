"""X's filtered stream through tweepy: our rules, and one connection read line by line.

Nothing here imports Flask or touches the database, and nothing here waits between
connections: reconnecting (X's back-off rules) is the caller's job, so a test can drive
its clock. One connection attempt raises, when it ends, what ended it.
X API v2 docs: "Filtered stream" (GET /2/tweets/search/stream, GET/POST .../stream/rules)
and "Handling disconnections".
"""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import requests
import tweepy
from requests.adapters import HTTPAdapter

from .client import EXPANSIONS, MEDIA_FIELDS, TWEET_FIELDS, USER_FIELDS, RewritingSession, http_error
from .errors import AuthError, MalformedResponse, RateLimited, TransientError, XError
from .limits import rate_info

log = logging.getLogger(__name__)

TAG = "feedapp"  # our rules carry this tag; rules with any other tag (or none) are someone else's: left alone
RULE_MAX = 512  # characters per rule on X's self-serve plans (Pro allows 1,024): packing fits every plan
RULES_MAX = 1000  # rules per app on the pay-per-use plan
STREAM_PARAMS = dict(tweet_fields=TWEET_FIELDS, expansions=EXPANSIONS, media_fields=MEDIA_FIELDS,
                     user_fields=USER_FIELDS)  # the timeline's: a streamed post normalizes like a polled one
FROM_RE = re.compile(r"(?<![\w:])from:([A-Za-z0-9_]{1,15})\b")
NO_REPOSTS = " -is:retweet"
CREDENTIAL = "FEEDAPP_X_BEARER_TOKEN"


@dataclass(frozen=True)
class Rule:
    """One filtered-stream rule as X lists it."""

    id: str
    value: str
    tag: str | None = None

    @property
    def ours(self) -> bool:
        return (self.tag or "").startswith(TAG)

    @property
    def usernames(self) -> frozenset[str]:
        """The accounts a rule of ours follows, lower-cased."""
        return frozenset(name.lower() for name in FROM_RE.findall(self.value))

    @property
    def no_reposts(self) -> bool:
        return self.value.endswith(NO_REPOSTS)


@dataclass
class RulesSync:
    """What a sync left on X: the accounts our rules now follow, and what X refused."""

    following: dict[str, bool] = field(default_factory=dict)  # lower-cased username -> rule leaves reposts out
    added: int = 0
    deleted: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StreamedPost:
    """One post X delivered, in the shape normalize_page reads, with what it cost."""

    body: dict  # {"data": [tweet], "includes": {...}}
    author_id: str
    rule_tags: tuple[str, ...]
    post_ids: tuple[str, ...]  # billable post objects: the post and the posts it includes
    user_ids: tuple[str, ...]

    @property
    def id(self) -> int:
        return int(self.body["data"][0]["id"])


class StreamRefused(AuthError):
    """401/403 on connecting: the token is wrong, or the app's plan does not include the filtered stream."""


class StreamHTTPError(XError):
    """Any other HTTP error on connecting (429 included): back off exponentially."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class StreamDisconnected(TransientError):
    """The connection ended after it was made: a network error, a stall, or X closing it."""


def rule_values(usernames: Iterable[str], *, no_reposts: bool = False, max_length: int = RULE_MAX) -> list[str]:
    """`from:a OR from:b …` rules holding every username, as few as max_length allows (sorted, so stable)."""
    extra = len("() -is:retweet") if no_reposts else 0
    values, current = [], []
    for name in sorted(set(usernames), key=str.lower):
        term = f"from:{name}"
        if current and len(" OR ".join([*current, term])) + extra > max_length:
            values.append(current)
            current = []
        current.append(term)
    if current:
        values.append(current)
    if no_reposts:
        return [f"({' OR '.join(terms)}){NO_REPOSTS}" for terms in values]
    return [" OR ".join(terms) for terms in values]


def plan_rules(existing: list[Rule], wanted: dict[str, bool], max_length: int = RULE_MAX
               ) -> tuple[list[str], list[str]]:
    """(values to add, ids to delete) that make our rules follow exactly `wanted` (username -> no reposts).

    Rules already right are kept, so adding one source adds one short rule (or none when it fits
    nowhere) instead of rewriting every rule: X applies rule changes to the open connection at once,
    and a rule deleted before its replacement exists would drop posts in between.
    """
    spelled = {name.lower(): name for name in wanted}  # rules are case-insensitive; keep names readable
    wanted = {name.lower(): flag for name, flag in wanted.items()}
    keep_names: set[str] = set()
    delete = []
    for rule in sorted((r for r in existing if r.ours), key=lambda r: r.id):
        names = rule.usernames
        ours_shape = rule_values(FROM_RE.findall(rule.value), no_reposts=rule.no_reposts, max_length=10**6)
        right = (names and len(rule.value) <= max_length and not names & keep_names and ours_shape == [rule.value]
                 and all(wanted.get(n) == rule.no_reposts for n in names))
        if right:
            keep_names |= names
        else:
            delete.append(rule.id)
    missing = [n for n in wanted if n not in keep_names]
    add = (rule_values([spelled[n] for n in missing if not wanted[n]], max_length=max_length)
           + rule_values([spelled[n] for n in missing if wanted[n]], no_reposts=True, max_length=max_length))
    return add, delete


class XStream:
    """The filtered stream of one X app (its bearer token): rules, and one connection at a time."""

    def __init__(self, settings, *, stall: float = 90.0):
        if not settings.has_app_auth:
            raise AuthError("the filtered stream needs app-only auth: set FEEDAPP_X_BEARER_TOKEN")
        self.settings = settings
        self.stall = stall
        self._client = _StreamingClient(settings, stall)  # one session for the rules, one for the connection

    def rules(self) -> list[Rule]:
        """Every rule of the app, ours and others' (GET /2/tweets/search/stream/rules; the keeper's thread)."""
        body = self._call(self._client.get_rules)
        return [Rule(str(r["id"]), str(r["value"]), r.get("tag")) for r in body.get("data") or []]

    def sync_rules(self, wanted: dict[str, bool], max_length: int = RULE_MAX) -> RulesSync:
        """Make our rules follow exactly `wanted` (username -> leave reposts out); others' rules stay."""
        result = RulesSync()
        add, delete = plan_rules(self.rules(), wanted, max_length)
        if add:  # first: an account moving between rules is never unfollowed, even for a moment
            body = self._call(self._client.add_rules, [tweepy.StreamRule(value, tag=TAG) for value in add])
            result.added = len(body.get("data") or [])
            result.problems += [_rule_problem(p) for p in body.get("errors") or []]
        if delete:
            body = self._call(self._client.delete_rules, delete)
            result.deleted = int(((body.get("meta") or {}).get("summary") or {}).get("deleted") or 0)
            result.problems += [_rule_problem(p) for p in body.get("errors") or []]
        for rule in self.rules():  # what X now holds is the truth, whatever it refused above
            if rule.ours:
                for name in rule.usernames:
                    result.following[name] = rule.no_reposts
        return result

    def read(self, on_connect: Callable[[], None], on_post: Callable[[StreamedPost], None],
             on_keep_alive: Callable[[], None] = lambda: None) -> None:
        """Connect and hand over each post until the connection ends; always raises what ended it."""
        self._client.handlers = (on_connect, on_post, on_keep_alive)
        self._client.filter(**STREAM_PARAMS)  # tweepy builds the query; our _connect makes one attempt
        raise self._client.ended or StreamDisconnected("the stream ended")

    def disconnect(self) -> None:
        """End the open connection from another thread (the reader raises StreamDisconnected)."""
        self._client.hang_up()

    def close(self) -> None:
        """Close the HTTP sessions."""
        self._client.hang_up()
        self._client.session.close()
        self._client.stream_session.close()

    def _call(self, method, *args) -> dict:
        try:
            response = method(*args)
        except tweepy.TooManyRequests as exc:
            info = rate_info(exc.response.headers, refused=True)
            raise RateLimited(info.reset_at, "filtered stream rules", called=True) from None
        except tweepy.HTTPException as exc:
            raise http_error(exc, CREDENTIAL) from None
        except requests.Timeout:
            raise TransientError(f"X API timed out after {self.settings.timeout:g} s") from None
        except requests.RequestException as exc:
            raise TransientError(f"cannot reach the X API: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            raise MalformedResponse("X API answered with a body that is not JSON") from None
        if not isinstance(body, dict):
            raise MalformedResponse("X API answered with JSON that is not an object")
        return body


class _StreamingClient(tweepy.StreamingClient):
    """tweepy's StreamingClient (its rules calls, and filter()'s query), making one connection per filter().

    tweepy's own loop reconnects with time.sleep, which no test can drive and no caller can stop;
    _connect here makes one attempt and records what ended it.
    """

    def __init__(self, settings, stall: float):
        super().__init__(settings.bearer_token, return_type=requests.Response, wait_on_rate_limit=False)
        self.session = RewritingSession(settings.api_url, settings.timeout)  # the rules calls (the keeper's thread)
        # The connection has its own session (the reader's thread): requests sessions are not thread-safe, and
        # hang_up() must find the socket of this connection, not of a rules call.
        self.stream_session = RewritingSession(settings.api_url, settings.timeout)
        self._adapter = _SocketAdapter()
        self.stream_session.mount("http://", self._adapter)
        self.stream_session.mount("https://", self._adapter)
        self.connect_timeout = settings.timeout
        self.stall = stall
        self.handlers = (lambda: None, lambda post: None, lambda: None)
        self.ended: XError | None = None
        self._response: requests.Response | None = None

    def _connect(self, method, endpoint, params=None, **_):
        self.running, self.ended = True, None
        url = f"https://api.twitter.com/2/tweets/{endpoint}/stream"
        on_connect, on_post, on_keep_alive = self.handlers
        try:
            # (connect, read) timeouts: a read that waits `stall` seconds for a byte is a dead connection
            # (X: keep-alive every 20 s; "if you don't receive data for 90 s, reconnect").
            with self.stream_session.request(method, url, params=params, stream=True,
                                             headers={"Authorization": f"Bearer {self.bearer_token}"},
                                             timeout=(self.connect_timeout, self.stall)) as response:
                self._response = response
                if response.status_code != 200:
                    self.ended = _connect_error(response)
                    return
                on_connect()
                for line in response.iter_lines(chunk_size=512):
                    if not self.running:
                        break
                    if not line.strip():
                        on_keep_alive()  # X's keep-alive: a bare \r\n
                        continue
                    post = _message(line)
                    if post is not None:
                        on_post(post)
                self.ended = StreamDisconnected("the stream was closed" if not self.running
                                                else "X closed the stream")
        except StreamDisconnected as exc:
            self.ended = exc
        except requests.exceptions.ConnectionError as exc:
            stalled = "Read timed out" in str(exc)
            self.ended = StreamDisconnected(f"no data for {self.stall:g} s: the connection is dead" if stalled
                                            else f"connection lost ({type(exc).__name__})")
        except requests.Timeout:
            self.ended = StreamDisconnected(f"X did not answer within {self.connect_timeout:g} s")
        except requests.RequestException as exc:
            self.ended = StreamDisconnected(f"cannot reach the X API: {type(exc).__name__}")
        finally:
            self._response = None
            self.running = False

    def hang_up(self) -> None:
        """Stop reading; shut the socket so a read waiting for X's next byte (or its answer) returns now."""
        self.running = False
        # The response's connection while it streams (through a proxy too); before X answered, the adapter's.
        connection = getattr(getattr(self._response, "raw", None), "_connection", None) or self._adapter.connection
        sock = getattr(connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _SocketAdapter(HTTPAdapter):
    """An adapter that remembers the connection its last request took, so another thread can shut its socket."""

    def __init__(self):
        super().__init__()
        self.connection = None

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        adapter = self

        def recording(pool_cls):
            class Recording(pool_cls):
                def _get_conn(self, timeout=None):
                    adapter.connection = super()._get_conn(timeout)
                    return adapter.connection
            return Recording

        manager = self.poolmanager  # a dict of its own: urllib3's default is shared by every PoolManager
        manager.pool_classes_by_scheme = {scheme: recording(cls) for scheme, cls in manager.pool_classes_by_scheme.items()}


def _connect_error(response: requests.Response) -> XError:
    """What a refused connection means, from its status and X's problem body."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    detail = str(body.get("detail") or body.get("title") or response.reason or "no detail")[:300]
    if status in (401, 403):
        why = body.get("reason") or body.get("title") or ("Unauthorized" if status == 401 else "Forbidden")
        return StreamRefused(f"X refused the filtered stream ({status} {why}): {detail}")
    if status == 429:
        return StreamHTTPError(f"X answered 429 to the stream connection: {detail}", status)
    return StreamHTTPError(f"X answered {status} to the stream connection: {detail}", status)


def _message(line: bytes) -> StreamedPost | None:
    """One line of the stream as a post; None for a line that holds none (logged)."""
    try:
        message = json.loads(line)
    except ValueError:
        log.warning("stream: a line that is not JSON (%d bytes), skipped", len(line))
        return None
    if not isinstance(message, dict):
        log.warning("stream: a line that is not a JSON object, skipped")
        return None
    data = message.get("data")
    if not isinstance(data, dict):
        problems = message.get("errors") or []
        for problem in problems if isinstance(problems, list) else []:
            ptype = str((problem or {}).get("type") or "")
            if ptype.endswith("/operational-disconnect") or (problem or {}).get("disconnect_type"):
                # X says why it is about to close the connection: reconnect as after any disconnect.
                raise StreamDisconnected(f"X disconnected the stream: {problem.get('detail') or ptype}")
        log.warning("stream: a message without a post: %s", str(problems)[:300])
        return None
    includes = message.get("includes") if isinstance(message.get("includes"), dict) else {}
    # X's includes are lists of objects; anything else is dropped here rather than crash the read below.
    includes = {key: [item for item in value if isinstance(item, dict)]
                for key, value in includes.items() if isinstance(value, list)}
    rules = message.get("matching_rules") if isinstance(message.get("matching_rules"), list) else []
    post_ids = [str(data.get("id"))] + [str(t.get("id")) for t in includes.get("tweets", [])]
    user_ids = [str(u.get("id")) for u in includes.get("users", [])]
    if not str(data.get("id", "")).isdigit():
        log.warning("stream: a post without a numeric id, skipped")
        return None
    return StreamedPost(body={"data": [data], "includes": includes}, author_id=str(data.get("author_id") or ""),
                        rule_tags=tuple(str(r.get("tag") or "") for r in rules if isinstance(r, dict)),
                        post_ids=tuple(post_ids), user_ids=tuple(user_ids))


def _rule_problem(problem: dict) -> str:
    """X's word on one refused rule, for the operator."""
    title = problem.get("title") or "problem"
    details = "; ".join(str(d) for d in problem.get("details") or []) or problem.get("detail") or ""
    value = problem.get("value") or problem.get("id") or ""
    return f"{title}: {value} {details}".strip()[:300]
