"""A fake X API v2 server on 127.0.0.1 for tests and benchmarks.

FakeX runs a real HTTP server (ThreadingHTTPServer in a daemon thread) that
speaks the X API v2 wire format for the endpoints feedapp uses: users lookup,
the user timeline, and the filtered stream with its rules. Tweets are built with ``post()`` the way
X builds them: HTML-escaped text, t.co links, entity indices in code points of
the escaped text, media keys, note tweets, retweets, quotes and replies.
Faults (429, 5xx, slow, malformed JSON, ...) are queued with ``fail()``; "hold" keeps
requests waiting until the test sets an event, and ``wait_for()`` waits until the
fake has received or answered what a test needs (no sleeping in tests).
Posts published while a filtered stream is connected are delivered to it when
its rules match; ``disconnect_stream()`` and ``stall_stream()`` break it on purpose.
Only stdlib + oauthlib; it never talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import bisect
import fnmatch
import hmac
import json
import random
import re
import select
import socket
import string
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit

from oauthlib.oauth1.rfc5849 import signature as oauth_sig

from tests.loopback import StopsAtOnce

UTC = timezone.utc
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TWEPOCH_MS = 1288834974657  # 2010-11-04T01:42:54.657Z
DISPLAY_URL_MAX = 23
WINDOW_S = 15 * 60

TWEET_FIELDS = (
    "article attachments author_id card_uri community_id context_annotations conversation_id created_at "
    "display_text_range edit_controls edit_history_tweet_ids entities geo id in_reply_to_user_id lang "
    "media_metadata non_public_metrics note_tweet organic_metrics possibly_sensitive promoted_metrics "
    "public_metrics referenced_tweets reply_settings scopes source suggested_source_links text withheld"
).split()
USER_FIELDS = (
    "affiliation confirmed_email connection_status created_at description entities id is_identity_verified "
    "location most_recent_tweet_id name parody pinned_tweet_id profile_banner_url profile_image_url protected "
    "public_metrics receives_your_dm subscription subscription_type url username verified "
    "verified_followers_count verified_type withheld"
).split()
MEDIA_FIELDS = (
    "alt_text duration_ms height media_key non_public_metrics organic_metrics preview_image_url "
    "promoted_metrics public_metrics type url variants width"
).split()
TWEET_EXPANSIONS = (
    "article.cover_media article.media_entities attachments.media_keys attachments.media_source_tweet "
    "attachments.poll_ids author_id edit_history_tweet_ids entities.mentions.username geo.place_id "
    "in_reply_to_user_id entities.note.mentions.username referenced_tweets.id "
    "referenced_tweets.id.attachments.media_keys referenced_tweets.id.author_id"
).split()
USER_EXPANSIONS = ["affiliation.user_id", "most_recent_tweet_id", "pinned_tweet_id"]
LIST_PARAMS = {"tweet.fields": TWEET_FIELDS, "user.fields": USER_FIELDS, "media.fields": MEDIA_FIELDS,
               "exclude": ["replies", "retweets"]}
USER_PARAMS = ["expansions", "tweet.fields", "user.fields"]
TIMELINE_PARAMS = ["end_time", "exclude", "expansions", "max_results", "media.fields", "pagination_token",
                   "place.fields", "poll.fields", "since_id", "start_time", "tweet.fields", "until_id",
                   "user.fields"]
STREAM_PATH = "/2/tweets/search/stream"
RULES_PATH = "/2/tweets/search/stream/rules"
# GET /2/tweets/search/stream takes the timeline's fields and expansions, not its paging.
STREAM_PARAMS = ["backfill_minutes", "end_time", "expansions", "media.fields", "place.fields", "poll.fields",
                 "start_time", "tweet.fields", "user.fields"]
RULE_CAP = 1000  # rules per app on Pro (https://docs.x.com/x-api/posts/filtered-stream/introduction)
RULE_TAG_MAX = 128
BUILD_A_RULE = "https://developer.twitter.com/en/docs/twitter-api/tweets/filtered-stream/integrate/build-a-rule"
MEDIA_KEY_PREFIX = {"photo": 3, "video": 7, "animated_gif": 16}
FAULT_KINDS = {"429", "500", "503", "slow", "hold", "malformed", "truncated", "errors", "401", "403", "remaining0"}

USERNAME_RE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
URL_RE = re.compile(r"https?://[^\s<>\"]+")
TCO_RE = re.compile(r"https://t\.co/[A-Za-z0-9]{10}(?![A-Za-z0-9])")
MENTION_RE = re.compile(r"(?<![A-Za-z0-9_@])@([A-Za-z0-9_]{1,15})(?![A-Za-z0-9_@])")
HASHTAG_RE = re.compile(r"(?<![\w#&])#(\w*[^\W\d_]\w*)")
RULE_TOKEN_RE = re.compile(r"\(|\)|[^\s()]+")
# (path, method, rate-limit key, handler); the stream and its rules are app-only (Bearer) endpoints.
ROUTES = [
    (re.compile(r"/2/users"), "GET", "/2/users", "_users_by_ids"),
    (re.compile(r"/2/users/by"), "GET", "/2/users/by", "_users_by"),
    (re.compile(r"/2/users/by/username/([^/]+)"), "GET", "/2/users/by/username/:username", "_user_by_username"),
    (re.compile(r"/2/users/([^/]+)/tweets"), "GET", "/2/users/:id/tweets", "_user_tweets"),
    (re.compile(r"/2/users/([^/]+)"), "GET", "/2/users/:id", "_user_by_id"),
    (re.compile(re.escape(RULES_PATH)), "GET", RULES_PATH, "_rules_lookup"),
    (re.compile(re.escape(RULES_PATH)), "POST", "POST " + RULES_PATH, "_rules_change"),
    (re.compile(re.escape(STREAM_PATH)), "GET", STREAM_PATH, "_stream_open"),
]
APP_ONLY = {RULES_PATH, "POST " + RULES_PATH, STREAM_PATH}


class Req(NamedTuple):
    """One request the fake received."""

    method: str
    path: str
    params: dict
    auth: str  # "bearer" | "oauth1" | "none" (what was presented, valid or not)


def iso(dt: datetime) -> str:
    """Render a datetime the way X does: 2025-03-14T16:05:09.000Z."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def escape(text: str) -> str:
    """HTML-escape exactly the characters X escapes."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def display_url(url: str) -> str:
    """Scheme stripped, cut to DISPLAY_URL_MAX code points plus an ellipsis."""
    shown = re.sub(r"^https?://", "", url)
    return shown if len(shown) <= DISPLAY_URL_MAX else shown[:DISPLAY_URL_MAX] + "…"


def problem(title: str, status: int, detail: str | None = None) -> dict:
    """A generic RFC 7807 body as X sends for 401/404/429/5xx."""
    return {"title": title, "type": "about:blank", "status": status, "detail": detail or title}


def parse_time(value: str) -> datetime:
    """Parse YYYY-MM-DDTHH:mm:ss[.sss]Z (raises ValueError)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


class RuleError(ValueError):
    """A rule the fake's filter language rejects; str() is X's detail text."""


def parse_rule(value: str):
    """Parse a filtered-stream rule into a tree, or raise RuleError with X's detail text.

    The fake knows the part of X's rule language feedapp uses: from:USERNAME,
    is:retweet, negation with a leading -, OR, parentheses, and AND by adjacency
    (AND binds tighter than OR, per X's build-a-rule guide). Anything else is
    refused, so a rule the fake cannot evaluate never passes silently.
    """
    tokens = [(m.group(), m.start() + 1) for m in RULE_TOKEN_RE.finditer(value)]
    pos = 0

    def peek():
        return tokens[pos][0] if pos < len(tokens) else None

    def fail(detail, at):
        raise RuleError(f"{detail} (at position {at})")

    def or_expr():
        nonlocal pos
        parts = [and_expr()]
        while peek() == "OR":
            pos += 1
            parts.append(and_expr())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def and_expr():
        parts = []
        while peek() not in (None, ")", "OR"):
            parts.append(unary())
        if not parts:
            tok, at = tokens[pos] if pos < len(tokens) else ("<EOF>", len(value) + 1)
            fail(f"There were errors processing your request: no viable alternative at input '{tok}'", at)
        return parts[0] if len(parts) == 1 else ("and", parts)

    def unary():
        nonlocal pos
        tok, at = tokens[pos]
        if tok == "-" and pos + 1 < len(tokens) and tokens[pos + 1][0] == "(":
            pos += 1
            return ("not", group())
        if tok.startswith("-") and len(tok) > 1:
            pos += 1
            return ("not", term(tok[1:], at + 1))
        if tok == "(":
            return group()
        pos += 1
        return term(tok, at)

    def group():
        nonlocal pos
        at = tokens[pos][1]
        pos += 1
        inner = or_expr()
        if peek() != ")":
            fail("There were errors processing your request: missing ')'", at)
        pos += 1
        return inner

    def term(tok, at):
        op, colon, arg = tok.partition(":")
        if not colon:
            fail(f"fakex: keyword '{tok}' is not supported; use from:, is:retweet, OR and parentheses", at)
        if op == "from":
            if not USERNAME_RE.match(arg):
                fail(f"Invalid value for operator 'from:{arg}': usernames match ^[A-Za-z0-9_]{{1,15}}$", at)
            return ("from", arg.lower())
        if op == "is" and arg == "retweet":
            return ("retweet",)
        fail(f"Reference to invalid operator '{op}'. Operator is not available in current product or product "
             f"packaging. Please refer to complete available operator list at {BUILD_A_RULE}.", at)

    tree = or_expr()
    if pos < len(tokens):
        tok, at = tokens[pos]
        fail(f"There were errors processing your request: extraneous input '{tok}'", at)
    if not _has_positive(tree):
        fail("Rules must contain a non-negation term", 1)
    return tree


def _has_positive(node) -> bool:
    kind = node[0]
    if kind == "not":
        return False
    if kind in ("or", "and"):
        return any(_has_positive(n) for n in node[1])
    return True


def rule_matches(node, username: str, is_retweet: bool) -> bool:
    """Evaluate a parsed rule against a post by `username` (lower case)."""
    kind = node[0]
    if kind == "or":
        return any(rule_matches(n, username, is_retweet) for n in node[1])
    if kind == "and":
        return all(rule_matches(n, username, is_retweet) for n in node[1])
    if kind == "not":
        return not rule_matches(node[1], username, is_retweet)
    if kind == "from":
        return node[1] == username
    return is_retweet


class _Stream:
    """One open filtered-stream connection: an outbox the publishing thread fills and the handler drains."""

    def __init__(self, sock, params: dict):
        self.sock, self.params = sock, params
        self.outbox: list[tuple[bytes, list[str], str]] = []  # (message, post ids returned, streamed post id)
        self.ending = self.stalled = False
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_w.setblocking(False)

    def wake(self) -> None:
        try:
            self.wake_w.send(b"!")
        except (BlockingIOError, OSError):
            pass  # a wake-up is already pending, or the handler has gone

    def peer_gone(self) -> bool:
        """True when the client closed its end (EOF readable without blocking)."""
        try:
            if not select.select([self.sock], [], [], 0)[0]:
                return False
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


class FakeX:
    """In-process fake of the X API v2 (users lookup, user timeline, filtered stream) over real HTTP."""

    def __init__(self, bearer_token="test-bearer", consumer_key="ck", consumer_secret="cs",
                 access_token="at", access_token_secret="ats", *, seed=1234, start_time=None):
        """Configure credentials; seed makes generated t.co/media names reproducible."""
        self.bearer_token, self.consumer_key, self.consumer_secret = bearer_token, consumer_key, consumer_secret
        self.access_token, self.access_token_secret = access_token, access_token_secret
        self.latency = 0.0
        self.rate_limit = 900  # per endpoint per 15 min window; over it -> real 429
        self.rate_limits: dict[str, int] = {}  # rate-limit key (a ROUTES key) -> its own limit, else rate_limit
        self.keepalive = 20.0  # X sends a bare \r\n every 20 s on an idle stream
        self.rule_max_length = 512  # Pro rule length; Enterprise allows 2048
        self.rule_cap = RULE_CAP
        self.client_id = "28460123"  # the app id X names in its client-forbidden answer
        self.problem_host = "https://api.twitter.com"
        self.requests: list[Req] = []
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # notified when a request arrives or is answered
        self.answered = 0  # responses fully written
        self._rng = random.Random(seed)
        self._users: dict[str, dict] = {}  # id -> live user record
        self._by_name: dict[str, str] = {}  # lower username -> id
        self._tweets: dict[str, dict] = {}  # id -> tweet record (public fields + "_" internals)
        self._timelines: dict[str, list[int]] = {}  # user id -> sorted tweet ids
        self._media: dict[str, dict] = {}
        self._faults: list[dict] = []
        self._windows: dict[str, list] = {}
        self._tcos: set[str] = set()
        self._seq = 0
        self._next_user_id = 1_500_000_000
        self._clock = (start_time or datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
        self._rules: dict[str, dict] = {}  # rule id -> {"id", "value", "tag"?, "_tree"}, in creation order
        self._rule_seq = 0
        self._streams: list[_Stream] = []  # open filtered-stream connections (X allows one per app)
        self.streamed: list[str] = []  # post ids delivered over the stream, in order
        self.stream_connects = 0  # stream connections answered 200
        self.delivered_posts: list[str] = []  # every post object returned anywhere (X bills each one)
        self._garble = None  # garble_streamed()'s change, for the next streamed message
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> "FakeX":
        """Start serving on 127.0.0.1 with a random free port; sets self.url."""
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fakex", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End open streams, stop the server and wait for its thread."""
        with self._lock:
            for conn in self._streams:
                conn.ending = True
                conn.wake()
            # a handler ends its stream in well under a second; don't hang a test on a wedged client
            self._changed.wait_for(lambda: not self._streams, 5.0)
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---------------------------------------------------------------- data setup
    def add_user(self, username, name=None, protected=False, suspended=False, *, verified=False,
                 id=None, **fields) -> dict:
        """Create an account; returns its live record (mutating it changes later answers)."""
        if not USERNAME_RE.match(username):
            raise ValueError(f"X usernames match ^[A-Za-z0-9_]{{1,15}}$: {username!r}")
        with self._lock:
            if username.lower() in self._by_name:
                raise ValueError(f"duplicate username {username!r}")
            if id is None:
                self._next_user_id += self._rng.randint(1, 99_999)
                id = str(self._next_user_id)
            user = {"id": str(id), "name": name or username, "username": username, "protected": protected,
                    "verified": verified, "verified_type": "none", "description": "",
                    "created_at": "2012-06-01T12:00:00.000Z",
                    "profile_image_url": f"https://pbs.twimg.com/profile_images/{self._rng.randint(10**17, 10**18)}"
                                         f"/{self._rand(8)}_normal.jpg",
                    "public_metrics": {"followers_count": 0, "following_count": 0, "tweet_count": 0,
                                       "listed_count": 0, "like_count": 0, "media_count": 0},
                    "suspended": suspended, **fields}
            self._users[user["id"]] = user
            self._by_name[username.lower()] = user["id"]
            self._timelines[user["id"]] = []
            return user

    def user(self, username: str) -> dict:
        """The live record of a user added with add_user (case-insensitive)."""
        return self._users[self._by_name[username.lower()]]

    def tweet(self, tweet_id: str) -> dict:
        """Every public field of a stored tweet, as X would send with all fields requested."""
        return {k: v for k, v in self._tweets[str(tweet_id)].items() if not k.startswith("_")}

    def post(self, username, text="", created_at=None, media=None, reply_to=None, quote_of=None,
             retweet_of=None, long_text=False, *, lang="en", possibly_sensitive=False) -> str:
        """Publish a tweet as X would store it; returns its id."""
        with self._lock:
            author = self.user(username)
            tid, when = self._new_id(created_at)
            links: dict[str, list[dict]] = {}  # t.co -> url entity extras (several for multi-media)
            rec = {"id": tid, "edit_history_tweet_ids": [tid], "author_id": author["id"], "created_at": iso(when),
                   "conversation_id": tid, "lang": lang, "possibly_sensitive": possibly_sensitive,
                   "reply_settings": "everyone",
                   "public_metrics": {"retweet_count": 0, "reply_count": 0, "like_count": 0, "quote_count": 0,
                                      "bookmark_count": 0, "impression_count": 0}}
            refs, tail = [], ""
            if retweet_of is not None:
                orig = self._tweets[str(retweet_of)]
                if orig.get("_retweet_of"):  # retweeting a retweet retweets the original
                    orig = self._tweets[orig["_retweet_of"]]
                body = orig["_plain"]
                body = body[:140] + "…" if len(body) > 140 else body
                plain = f"RT @{self._users[orig['author_id']]['username']}: {body}"
                links = {u: [e for e in ex if "media_key" not in e] for u, ex in orig["_links"].items()}
                refs.append({"type": "retweeted", "id": orig["id"]})
                rec.update(lang=orig["lang"], possibly_sensitive=orig["possibly_sensitive"], _retweet_of=orig["id"])
            else:
                plain = URL_RE.sub(lambda m: self._link_for(m.group(), links), text)
                if quote_of is not None:
                    quoted = self._tweets[str(quote_of)]
                    qurl = f"https://x.com/{self._users[quoted['author_id']]['username']}/status/{quoted['id']}"
                    plain += " " + self._shorten(qurl, links)
                    refs.append({"type": "quoted", "id": quoted["id"]})
                if reply_to is not None:
                    parent = self._tweets[str(reply_to)]
                    refs.append({"type": "replied_to", "id": parent["id"]})
                    rec.update(in_reply_to_user_id=parent["author_id"], conversation_id=parent["conversation_id"])
                if media:
                    tail = " " + self._attach(rec, author, media, links)
            if long_text:
                note_text = escape(plain)
                note_entities = self._entities(note_text, links)
                rec["note_tweet"] = {"text": note_text, **({"entities": note_entities} if note_entities else {})}
                self_link = self._new_tco()  # like X: no entity for the "read more" link
                plain = plain[:280] + "… " + self_link
            rec["text"] = escape(plain + tail)
            entities = self._entities(rec["text"], links)
            if entities:
                rec["entities"] = entities
            if refs:
                rec["referenced_tweets"] = refs
            rec.update(_plain=plain + tail, _links=links)
            self._tweets[tid] = rec
            bisect.insort(self._timelines[author["id"]], int(tid))
            author["public_metrics"]["tweet_count"] += 1
            self._publish(rec, author)
            return tid

    def fail(self, path_glob: str, kind: str, count: int = 1, *, skip: int = 0, **opts) -> None:
        """Queue a fault for `count` requests whose path matches the fnmatch glob, after `skip` of them pass."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
        with self._lock:
            self._faults.append({"glob": path_glob, "kind": kind, "left": count, "skip": skip, "opts": opts})

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()

    def wait_for(self, predicate, timeout: float = 30.0) -> None:
        """Block until predicate(fake) is true (checked on every request received or answered)."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self), timeout):
                raise TimeoutError(f"fakex: condition not met within {timeout} s")

    def reset_requests(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self.requests.clear()

    # ---------------------------------------------------------------- filtered stream controls
    @property
    def rules(self) -> list[dict]:
        """The app's stream rules as GET /2/tweets/search/stream/rules lists them."""
        with self._lock:
            return [self._public_rule(r) for r in self._rules.values()]

    @property
    def stream_connected(self) -> bool:
        """Whether a filtered-stream connection is open (stalled ones included)."""
        with self._lock:
            return bool(self._streams)

    def wait_for_stream(self, timeout: float = 30.0) -> None:
        """Block until a filtered-stream connection is open."""
        self.wait_for(lambda fake: bool(fake._streams), timeout)

    def disconnect_stream(self, message: bool = True) -> None:
        """End the open stream, first sending X's operational-disconnect message when `message`."""
        # https://docs.x.com/x-api/fundamentals/handling-disconnections ("Operational disconnect")
        body = {"errors": [{"title": "operational-disconnect", "disconnect_type": "OperationalDisconnect",
                            "detail": "This stream has been disconnected for operational reasons.",
                            "type": self._ptype("operational-disconnect")}]}
        with self._lock:
            for conn in self._streams:
                if message and not conn.stalled:
                    conn.outbox.append((json.dumps(body).encode() + b"\r\n", [], ""))
                conn.ending = True
                conn.wake()

    def send_stream(self, line: bytes) -> None:
        """Send one raw line (malformed data, odd messages) on the open stream, as X would frame it."""
        with self._lock:
            for conn in self._streams:
                conn.outbox.append((line + b"\r\n", [], ""))
                conn.wake()

    def rename_user(self, username: str, new: str) -> None:
        """The account takes a new username (same id), as when its owner renames it on X."""
        with self._lock:
            user = self.user(username)
            del self._by_name[username.lower()]
            user["username"] = new
            self._by_name[new.lower()] = user["id"]

    def garble_streamed(self, change) -> None:
        """Pass the next streamed message (a dict) through change() before sending it: X sending a broken post."""
        with self._lock:
            self._garble = change

    def stall_stream(self) -> None:
        """Keep the open stream's connection but send nothing more, not even keep-alives."""
        with self._lock:
            for conn in self._streams:
                conn.stalled = True
                conn.outbox.clear()
                conn.wake()

    # ---------------------------------------------------------------- building helpers
    def _rand(self, n: int) -> str:
        return "".join(self._rng.choice(string.ascii_letters + string.digits) for _ in range(n))

    def _new_id(self, created_at):
        if created_at is None:
            self._clock += timedelta(seconds=1)
            when = self._clock
        else:
            when = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
            self._clock = max(self._clock, when.astimezone(UTC).replace(microsecond=0))
        ms = (when - UNIX_EPOCH) // timedelta(milliseconds=1)
        self._seq += 1
        return str(((ms - TWEPOCH_MS) << 22) + (self._seq % (1 << 22))), when

    def _new_tco(self) -> str:
        while (tco := "https://t.co/" + self._rand(10)) in self._tcos:
            pass
        self._tcos.add(tco)
        return tco

    def _shorten(self, url: str, links: dict, **extra) -> str:
        tco = self._new_tco()
        links[tco] = [{"expanded_url": url, "display_url": display_url(url), **extra}]
        return tco

    def _link_for(self, url: str, links: dict) -> str:
        trail = len(url) - len(url.rstrip(".,;:!?)'"))
        url, rest = (url[:-trail], url[-trail:]) if trail else (url, "")
        return self._shorten(url, links, unwound_url=url) + rest

    def _attach(self, rec: dict, author: dict, media: list[dict], links: dict) -> str:
        tco, tid, keys, entries = self._new_tco(), rec["id"], [], []
        for n, spec in enumerate(media, 1):
            kind = spec.get("type", "photo")
            key = f"{MEDIA_KEY_PREFIX[kind]}_{tid}_{n}"
            m = {"media_key": key, "type": kind, "width": spec.get("width", 1280), "height": spec.get("height", 720),
                 **{k: v for k, v in spec.items() if k not in ("type",)}}
            if kind == "photo":
                m.setdefault("url", f"https://pbs.twimg.com/media/{self._rand(15)}.jpg")
            else:
                base = f"https://video.twimg.com/ext_tw_video/{tid}/pu"
                m.setdefault("preview_image_url", f"https://pbs.twimg.com/ext_tw_video_thumb/{tid}/pu/img/{self._rand(16)}.jpg")
                m.setdefault("duration_ms", 10_000 if kind == "video" else 0)
                m.setdefault("variants", [
                    {"content_type": "application/x-mpegURL", "url": f"{base}/pl/{self._rand(16)}.m3u8?tag=12"},
                    {"bit_rate": 832000, "content_type": "video/mp4", "url": f"{base}/vid/avc1/640x360/{self._rand(16)}.mp4?tag=12"},
                    {"bit_rate": 2176000, "content_type": "video/mp4", "url": f"{base}/vid/avc1/1280x720/{self._rand(16)}.mp4?tag=12"},
                ] if kind == "video" else [{"bit_rate": 0, "content_type": "video/mp4",
                                            "url": f"https://video.twimg.com/tweet_video/{self._rand(15)}.mp4"}])
            self._media[key] = m
            keys.append(key)
            what = "photo" if kind == "photo" else "video"
            entries.append({"expanded_url": f"https://x.com/{author['username']}/status/{tid}/{what}/{n}",
                            "display_url": "pic.x.com/" + tco.rsplit("/", 1)[1], "media_key": key})
        links[tco] = entries  # one pic link, one url entity per media (same span), like X
        rec["attachments"] = {"media_keys": keys}
        return tco

    def _entities(self, text: str, links: dict) -> dict:
        """urls/mentions/hashtags with code point indices into the (escaped) text."""
        urls = [{"start": m.start(), "end": m.end(), "url": m.group(), **e}
                for m in TCO_RE.finditer(text) for e in links.get(m.group(), [])]
        mentions = []
        for m in MENTION_RE.finditer(text):
            ent = {"start": m.start(), "end": m.end(), "username": m.group(1)}
            if (uid := self._by_name.get(m.group(1).lower())) is not None:
                ent["id"] = uid
            mentions.append(ent)
        hashtags = [{"start": m.start(), "end": m.end(), "tag": m.group(1)} for m in HASHTAG_RE.finditer(text)]
        return {k: v for k, v in (("hashtags", hashtags), ("mentions", mentions), ("urls", urls)) if v}

    # ---------------------------------------------------------------- HTTP plumbing
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        path, params = split.path, dict(parse_qsl(split.query, keep_blank_values=True))
        payload = b""
        if h.command != "GET" and int(h.headers.get("Content-Length") or 0):
            payload = h.rfile.read(int(h.headers["Content-Length"]))
        kind, ok = self._check_auth(h, path, split.query)
        with self._lock:
            self.requests.append(Req(h.command, path, params, kind))
            self._changed.notify_all()
            fault = next((f for f in self._faults if fnmatch.fnmatchcase(path, f["glob"])), None)
            if fault and fault["skip"] > 0:
                fault["skip"] -= 1
                fault = None
            if fault:
                fault["left"] -= 1
                if fault["left"] <= 0:
                    self._faults.remove(fault)
        matches = [(key, meth, m, verb) for rx, verb, key, meth in ROUTES if (m := rx.fullmatch(path))]
        route = next(((key, meth, m) for key, meth, m, verb in matches if verb == h.command), None)
        limit, remaining, reset, over = self._count(route[0] if route else matches[0][0] if matches else "other")
        time.sleep(self.latency + (fault["opts"].get("delay", 1.0) if fault and fault["kind"] == "slow" else 0))
        if fault and fault["kind"] == "hold":  # answered normally once the test sets the event
            if not fault["opts"]["event"].wait(fault["opts"].get("timeout", 30.0)):
                raise TimeoutError("fakex: a held request was never released")
        status, body, stream = None, None, None
        if fault and fault["kind"] not in ("slow", "hold", "remaining0"):
            status, body, remaining, reset = self._fault_response(fault, path, remaining, reset)
        elif fault and fault["kind"] == "remaining0":
            remaining = 0
        if status is None:
            if not ok:
                status, body = 401, problem("Unauthorized", 401)
            elif route is not None and route[0] in APP_ONLY and kind != "bearer":
                status, body = 403, self._unsupported_auth()
            elif over:
                status, body = 429, problem("Too Many Requests", 429)
            elif route is None:
                status, body = 404, problem("Not Found Error", 404, "Sorry, that page does not exist")
            elif route[1] == "_stream_open":
                with self._lock:
                    status, body, stream = self._stream_open(h, params)
            else:
                with self._lock:
                    extra = {"payload": payload} if h.command == "POST" else {}
                    status, body = getattr(self, route[1])(route[2], params, kind, **extra)
        rate = {"x-rate-limit-limit": limit, "x-rate-limit-remaining": remaining, "x-rate-limit-reset": reset}
        if stream is not None:
            self._serve_stream(h, stream, rate)
        else:
            raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
            h.send_response(status)
            h.send_header("Content-Type", "application/json; charset=utf-8")
            h.send_header("Content-Length", str(len(raw)))
            for name, value in rate.items():
                h.send_header(name, str(value))
            h.end_headers()
            h.wfile.write(raw)
            h.wfile.flush()
        with self._lock:
            self.answered += 1
            self._changed.notify_all()

    def _check_auth(self, h, path: str, query: str) -> tuple[str, bool]:
        header = h.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return "bearer", hmac.compare_digest(header[7:].encode(), self.bearer_token.encode())
        if not header.startswith("OAuth "):
            return "none", False
        try:
            params = oauth_sig.collect_parameters(uri_query=query, headers={"Authorization": header},
                                                  exclude_oauth_signature=False)
            oauth = {k: v for k, v in params if k.startswith("oauth_")}
            signed = [(k, v) for k, v in params if k != "oauth_signature"]
            base = oauth_sig.signature_base_string(h.command, oauth_sig.base_string_uri(self.url + path),
                                                   oauth_sig.normalize_parameters(signed))
            secrets = SimpleNamespace(client_secret=self.consumer_secret,
                                      resource_owner_secret=self.access_token_secret)
            expected = oauth_sig.sign_hmac_sha1_with_client(base, secrets)
        except (ValueError, KeyError, TypeError):
            return "oauth1", False
        return "oauth1", (oauth.get("oauth_consumer_key") == self.consumer_key
                          and oauth.get("oauth_token") == self.access_token
                          and oauth.get("oauth_signature_method") == "HMAC-SHA1"
                          and hmac.compare_digest(expected, oauth.get("oauth_signature", "")))

    def _count(self, key: str):
        with self._lock:
            now = time.time()
            limit = self.rate_limits.get(key, self.rate_limit)
            window = self._windows.get(key)
            if window is None or now >= window[0]:
                window = self._windows[key] = [now + WINDOW_S, 0]
            window[1] += 1
            return limit, max(0, limit - window[1]), int(window[0]), window[1] > limit

    def _fault_response(self, fault, path, remaining, reset):
        kind, opts = fault["kind"], fault["opts"]
        if kind == "429":
            default = self._too_many_connections() if opts.get("connection") else problem("Too Many Requests", 429)
            return 429, opts.get("body", default), 0, int(time.time() + opts.get("reset_in", 60))
        if kind in ("500", "503", "401"):
            title = {"500": "Internal Server Error", "503": "Service Unavailable", "401": "Unauthorized"}[kind]
            return int(kind), opts.get("body", problem(title, int(kind))), remaining, reset
        if kind == "403" and path == STREAM_PATH:
            # What X answers a stream connect from an app whose plan lacks the filtered stream.
            return 403, opts.get("body", {
                "client_id": self.client_id,
                "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens "
                          "from a Twitter developer App that is attached to a Project. You can create a project via "
                          "the developer portal.",
                "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
                "title": "Client Forbidden", "required_enrollment": "Appropriate Level of API Access",
                "reason": "client-not-enrolled", "type": self._ptype("client-forbidden")}), remaining, reset
        if kind == "403":
            return 403, opts.get("body", {
                "title": "Client Forbidden", "type": f"{self.problem_host}/2/problems/client-forbidden",
                "reason": "client-not-enrolled", "registration_url": "https://developer.x.com/en/docs/projects/overview",
                "required_enrollment": "Appropriate Level of API Access",
                "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens "
                          "from a Twitter developer App that is attached to a Project."}), remaining, reset
        if kind == "malformed":
            return 200, b'{"data": [{"id": "1", "text": "cut off', remaining, reset
        if kind == "truncated":
            return 200, {"meta": "x"}, remaining, reset
        # "errors": 200 with an errors array only
        ptype = opts.get("type", "not-authorized-for-resource")
        rid = opts.get("resource_id") or next((s for s in path.split("/") if s.isdigit() and s != "2"), "0")
        title, detail = {
            "not-authorized-for-resource": ("Authorization Error", f"Sorry, you are not authorized to see the user with id: [{rid}]."),
            "resource-not-found": ("Not Found Error", f"Could not find user with id: [{rid}]."),
        }.get(ptype, ("Error", opts.get("detail", f"Problem with user id: [{rid}].")))
        err = {"value": rid, "detail": opts.get("detail", detail), "title": opts.get("title", title),
               "resource_type": "user", "parameter": "id", "resource_id": rid, "type": self._ptype(ptype)}
        if ptype == "not-authorized-for-resource":
            err["section"] = "data"
        return 200, {"errors": [err]}, remaining, reset

    # ---------------------------------------------------------------- responses
    def _ptype(self, name: str) -> str:
        return f"{self.problem_host}/2/problems/{name}"

    def _invalid(self, errors: list[tuple]) -> tuple[int, dict]:
        return 400, {"errors": [{"parameters": {p: [v]}, "message": msg} for p, v, msg in errors],
                     "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
                     "type": self._ptype("invalid-request")}

    def _check_params(self, params: dict, allowed: list, expansions: list) -> list[tuple]:
        errs = [(k, v, f"The query parameter [{k}] is not one of [{','.join(allowed)}]")
                for k, v in params.items() if k not in allowed]
        for name, choices in {**LIST_PARAMS, "expansions": expansions}.items():
            for value in (params[name].split(",") if name in params and name in allowed else []):
                if value not in choices:
                    errs.append((name, value, f"The `{name}` query parameter value [{value}] is not one of "
                                              f"[{','.join(choices)}]"))
        return errs

    def _user_problem(self, value: str, parameter: str, user: dict | None) -> dict:
        what = {"usernames": "usernames", "username": "username"}.get(parameter, "id")
        if user is None:
            title, detail = "Not Found Error", f"Could not find user with {what}: [{value}]."
        else:
            title, detail = "Forbidden", f"User has been suspended: [{value}]."
        return {"value": value, "detail": detail, "title": title, "resource_type": "user", "parameter": parameter,
                "resource_id": value, "type": self._ptype("resource-not-found")}

    def _render_user(self, user: dict, fields: set) -> dict:
        out = {"id": user["id"], "name": user["name"], "username": user["username"]}
        out.update({f: user[f] for f in USER_FIELDS if f in fields and f in user and f not in out})
        return out

    def _lookup(self, users: list[tuple[str, dict | None]], parameter: str, params: dict, single: bool):
        errs = self._check_params(params, USER_PARAMS + ([parameter] if parameter in ("usernames", "ids") else []),
                                  USER_EXPANSIONS)
        if errs:
            return self._invalid(errs)
        fields = set(params.get("user.fields", "").split(","))
        data = [self._render_user(u, fields) for _, u in users if u and not u["suspended"]]
        errors = [self._user_problem(v, parameter, u) for v, u in users if not u or u["suspended"]]
        body = {"data": data[0] if single else data} if data else {}
        return 200, {**body, **({"errors": errors} if errors else {})}

    def _find(self, username: str):
        return self._users.get(self._by_name.get(username.lower(), ""))

    def _users_by(self, m, params, auth):
        names = [n for n in params.get("usernames", "").split(",") if n]
        bad = [(u, f"The `usernames` query parameter value [{u}] does not match ^[A-Za-z0-9_]{{1,15}}$")
               for u in names if not USERNAME_RE.match(u)]
        if not names or len(names) > 100 or bad:
            msg = f"The number of values in the `usernames` query parameter list [{len(names)}] is not between 1 and 100"
            return self._invalid([("usernames", v, t) for v, t in bad] or [("usernames", params.get("usernames", ""), msg)])
        return self._lookup([(n, self._find(n)) for n in names], "usernames", params, single=False)

    def _users_by_ids(self, m, params, auth):
        ids = [i for i in params.get("ids", "").split(",") if i]
        bad = [(i, f"The `ids` query parameter value [{i}] is not valid") for i in ids if not re.fullmatch(r"[0-9]{1,19}", i)]
        if not ids or len(ids) > 100 or bad:
            msg = f"The number of values in the `ids` query parameter list [{len(ids)}] is not between 1 and 100"
            return self._invalid([("ids", v, t) for v, t in bad] or [("ids", params.get("ids", ""), msg)])
        return self._lookup([(i, self._users.get(i)) for i in ids], "ids", params, single=False)

    def _user_by_username(self, m, params, auth):
        name = m.group(1)
        if not USERNAME_RE.match(name):
            return self._invalid([("username", name, f"The `username` query parameter value [{name}] does not match "
                                                     "^[A-Za-z0-9_]{1,15}$")])
        return self._lookup([(name, self._find(name))], "username", params, single=True)

    def _user_by_id(self, m, params, auth):
        uid = m.group(1)
        if not re.fullmatch(r"[0-9]{1,19}", uid):
            return self._invalid([("id", uid, f"The `id` query parameter value [{uid}] is not valid")])
        return self._lookup([(uid, self._users.get(uid))], "id", params, single=True)

    def _user_tweets(self, m, params, auth):
        uid = m.group(1)
        errs = self._check_params(params, TIMELINE_PARAMS, TWEET_EXPANSIONS)
        if not re.fullmatch(r"[0-9]{1,19}", uid):
            errs.append(("id", uid, f"The `id` query parameter value [{uid}] is not valid"))
        for name in ("since_id", "until_id"):
            if name in params and not re.fullmatch(r"[0-9]{1,19}", params[name]):
                errs.append((name, params[name], f"The `{name}` query parameter value [{params[name]}] is not valid"))
        max_results = params.get("max_results", "10")
        if not (max_results.isdigit() and 5 <= int(max_results) <= 100):
            errs.append(("max_results", max_results,
                         f"The `max_results` query parameter value [{max_results}] is not between 5 and 100"))
        before = None
        if "pagination_token" in params:
            token = params["pagination_token"]
            try:
                before = int(token[1:], 36) if token[:1] == "7" else None
            except ValueError:
                pass
            if before is None:
                errs.append(("pagination_token", token, f"The `pagination_token` query parameter value [{token}] is not valid"))
        window = {}
        for name in ("start_time", "end_time"):
            if name in params:
                try:
                    window[name] = iso(parse_time(params[name]))
                except ValueError:
                    errs.append((name, params[name], f"The `{name}` query parameter value [{params[name]}] is not valid"))
        if errs:
            return self._invalid(errs)
        user = self._users.get(uid)
        if user is None or user["suspended"]:
            return 200, {"errors": [self._user_problem(uid, "id", user)]}
        if user["protected"] and auth != "oauth1":
            return 200, {"errors": [{
                "value": uid, "detail": f"Sorry, you are not authorized to see the user with id: [{uid}].",
                "title": "Authorization Error", "resource_type": "user", "parameter": "id", "resource_id": uid,
                "section": "data", "type": self._ptype("not-authorized-for-resource")}]}
        exclude = set(params.get("exclude", "").split(","))
        since, until = int(params.get("since_id", -1)), int(params.get("until_id", 1 << 64))
        if before is not None:
            until = min(until, before)
        tweets = [t for t in (self._tweets[str(i)] for i in reversed(self._timelines[uid]) if since < i < until)
                  if not ("retweets" in exclude and t.get("_retweet_of"))
                  and not ("replies" in exclude and t.get("in_reply_to_user_id"))
                  and window.get("start_time", "") <= t["created_at"] < window.get("end_time", "~")]
        page = tweets[:int(max_results)]
        if not page:
            return 200, {"meta": {"result_count": 0}}
        meta = {"result_count": len(page), "newest_id": page[0]["id"], "oldest_id": page[-1]["id"]}
        if len(tweets) > len(page):
            meta["next_token"] = "7" + _base36(int(page[-1]["id"]))
        payload = self._tweets_payload(page, params)
        self.delivered_posts += [t["id"] for t in payload["data"] + payload.get("includes", {}).get("tweets", [])]
        return 200, {**payload, "meta": meta}

    # ---------------------------------------------------------------- filtered stream rules
    # https://docs.x.com/x-api/posts/filtered-stream/introduction (app-only auth; rules are per app)
    def _unsupported_auth(self) -> dict:
        return {"title": "Unsupported Authentication", "type": self._ptype("unsupported-authentication"),
                "status": 403,
                "detail": "Authenticating with OAuth 1.0a User Context is forbidden for this endpoint.  "
                          "Supported authentication types are [OAuth 2.0 Application-Only]."}

    def _too_many_connections(self) -> dict:
        return {"title": "ConnectionException", "connection_issue": "TooManyConnections",
                "detail": "This stream is currently at the maximum allowed connection limit.",
                "type": self._ptype("streaming-connection")}

    @staticmethod
    def _public_rule(rule: dict) -> dict:
        return {k: v for k, v in rule.items() if not k.startswith("_")}

    @staticmethod
    def _sent() -> str:
        return iso(datetime.now(UTC))

    def _new_rule_id(self) -> str:
        # Rule ids are snowflakes like post ids: 19 digits today.
        self._rule_seq += 1
        return str(((int(time.time() * 1000) - TWEPOCH_MS) << 22) + (self._rule_seq % (1 << 22)))

    def _request_problem(self, message: str) -> tuple[int, dict]:
        return 400, {"errors": [{"parameters": {}, "message": message}], "title": "Invalid Request",
                     "detail": "One or more parameters to your request was invalid.",
                     "type": self._ptype("invalid-request")}

    def _rules_lookup(self, m, params, auth):
        errs = self._check_params(params, ["ids", "max_results", "pagination_token"], [])
        ids = [i for i in params.get("ids", "").split(",") if i]
        errs += [("ids", i, f"The `ids` query parameter value [{i}] does not match ^[0-9]{{1,19}}$")
                 for i in ids if not re.fullmatch(r"[0-9]{1,19}", i)]
        size = params.get("max_results", "1000")
        if not (size.isdigit() and 1 <= int(size) <= 1000):
            errs.append(("max_results", size, f"The `max_results` query parameter value [{size}] is not between 1 and 1000"))
        token = params.get("pagination_token", "0")
        if not token.isdigit():
            errs.append(("pagination_token", token, f"The `pagination_token` query parameter value [{token}] is not valid"))
        if errs:
            return self._invalid(errs)
        rules = [self._public_rule(r) for r in self._rules.values() if not ids or r["id"] in ids]
        start = int(token)
        page = rules[start:start + int(size)]
        meta = {"sent": self._sent(), "result_count": len(page)}
        if start + len(page) < len(rules):
            meta["next_token"] = str(start + len(page))
        return 200, {**({"data": page} if page else {}), "meta": meta}

    def _rules_change(self, m, params, auth, payload=b""):
        errs = self._check_params(params, ["dry_run"], [])
        if params.get("dry_run", "false").lower() not in ("true", "false"):  # tweepy sends dry_run=True
            errs.append(("dry_run", params["dry_run"], f"The `dry_run` query parameter value [{params['dry_run']}] "
                                                       "is not one of [true,false]"))
        if errs:
            return self._invalid(errs)
        try:
            req = json.loads(payload or b"null")
        except ValueError as exc:
            return self._request_problem(f"Request body is not valid JSON: {exc}")
        if not isinstance(req, dict) or ("add" in req) == ("delete" in req) or len(req) != 1:
            return self._request_problem("The request body must have exactly one of `add` or `delete`")
        dry = params.get("dry_run", "").lower() == "true"
        if "add" in req:
            adds = req["add"]
            if (not isinstance(adds, list) or not adds
                    or not all(isinstance(a, dict) and isinstance(a.get("value"), str)
                               and isinstance(a.get("tag", ""), str) and set(a) <= {"value", "tag"} for a in adds)):
                return self._request_problem("`add` must be a non-empty array of {value, tag} objects")
            return self._add_rules(adds, dry)
        dels = req["delete"]
        if (not isinstance(dels, dict) or not dels or not set(dels) <= {"ids", "values"}
                or not all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in dels.values())
                or not all(re.fullmatch(r"[0-9]{1,19}", i) for i in dels.get("ids", []))):
            return self._request_problem("`delete` must hold `ids` (rule ids) and/or `values` (rule values)")
        return self._delete_rules(dels.get("ids", []), dels.get("values", []), dry)

    def _add_rules(self, adds: list[dict], dry: bool) -> tuple[int, dict]:
        # X's answer: one error per refused rule. A rule that does not parse refuses the whole request (none
        # are created); a duplicate of an existing (or earlier) rule is skipped and the others are created.
        by_value = {r["value"]: r["id"] for r in self._rules.values()}
        new, errors, broken = [], [], False
        for a in adds:
            value, tag = a["value"], a.get("tag")
            try:
                if len(value) > self.rule_max_length:
                    raise RuleError(f"Rule must not be longer than {self.rule_max_length} characters")
                if tag is not None and len(tag) > RULE_TAG_MAX:
                    raise RuleError(f"Tag must not be longer than {RULE_TAG_MAX} characters")
                tree = parse_rule(value)
            except RuleError as exc:
                broken = True
                errors.append({"value": value, "details": [str(exc)], "title": "UnprocessableEntity",
                               "type": self._ptype("invalid-rules")})
                continue
            if value in by_value:
                errors.append({"value": value, "id": by_value[value], "title": "DuplicateRule",
                               "type": self._ptype("duplicate-rules")})
                continue
            rule = {"id": self._new_rule_id(), "value": value, **({"tag": tag} if tag is not None else {}),
                    "_tree": tree}
            by_value[value] = rule["id"]
            new.append(rule)
        valid = len(new)
        if not broken and len(self._rules) + len(new) > self.rule_cap:
            errors.append({"title": "RulesCapExceeded", "type": self._ptype("rule-cap"),
                           "detail": f"Rule creation would exceed the maximum of {self.rule_cap} rules."})
            broken = True
        created = [] if broken else new
        if not dry:
            self._rules.update((r["id"], r) for r in created)
        meta = {"sent": self._sent(), "summary": {"created": len(created), "not_created": len(adds) - len(created),
                                                  "valid": valid, "invalid": len(adds) - valid}}
        body = {"data": [self._public_rule(r) for r in created]} if created else {}
        return 200, {**body, "meta": meta, **({"errors": errors} if errors else {})}

    def _delete_rules(self, ids: list[str], values: list[str], dry: bool) -> tuple[int, dict]:
        by_value = {r["value"]: r["id"] for r in self._rules.values()}
        wanted = ids + [by_value.get(v, "") for v in values]
        found = [i for i in dict.fromkeys(wanted) if i in self._rules]
        missing = len(wanted) - len(found)
        if not dry:
            for i in found:
                del self._rules[i]
        meta = {"sent": self._sent(), "summary": {"deleted": len(found), "not_deleted": missing}}
        errors = [{"errors": [{"parameters": {}, "message": "Rule does not exist"}], "title": "Invalid Request",
                   "detail": "One or more parameters to your request was invalid.",
                   "type": self._ptype("invalid-request")}] if missing else []
        return 200, {"meta": meta, **({"errors": errors} if errors else {})}

    # ---------------------------------------------------------------- filtered stream
    def _stream_open(self, h, params) -> tuple[int | None, dict | None, _Stream | None]:
        errs = self._check_params(params, STREAM_PARAMS, TWEET_EXPANSIONS)
        back = params.get("backfill_minutes")
        if back is not None and not (back.isdigit() and 0 <= int(back) <= 5):
            errs.append(("backfill_minutes", back, f"The `backfill_minutes` query parameter value [{back}] is not "
                                                   "between 0 and 5"))
        for name in ("start_time", "end_time"):
            if name in params:
                try:
                    parse_time(params[name])
                except ValueError:
                    errs.append((name, params[name], f"The `{name}` query parameter value [{params[name]}] is not valid"))
        if errs:
            return (*self._invalid(errs), None)
        # A client that hung up (a stall it detected) frees its slot at once, as X sees the TCP close.
        for gone in [c for c in self._streams if c.peer_gone()]:
            self._streams.remove(gone)  # its handler sees the same EOF and ends
        if self._streams:
            return 429, self._too_many_connections(), None
        conn = _Stream(h.connection, params)  # backfill_minutes is accepted; the fake never backfills
        self._streams.append(conn)
        self.stream_connects += 1
        self._changed.notify_all()
        return None, None, conn

    def _serve_stream(self, h, conn: _Stream, rate: dict) -> None:
        # One HTTP chunk per message, each message a JSON object + \r\n; a bare \r\n is a keep-alive
        # (https://docs.x.com/x-api/fundamentals/handling-disconnections).
        def chunk(data: bytes) -> None:
            h.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))

        peer_gone = False
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Transfer-Encoding", "chunked")
            for name, value in rate.items():
                h.send_header(name, str(value))
            h.end_headers()
            while True:
                with self._lock:
                    out, conn.outbox = conn.outbox, []
                    ending, stalled = conn.ending, conn.stalled
                for message, returned, post_id in out:
                    with self._lock:  # counted before the write: a client that has read it may look at once
                        if post_id:
                            self.streamed.append(post_id)
                        self.delivered_posts.extend(returned)
                        self._changed.notify_all()
                    chunk(message)
                if ending:
                    break
                ready = select.select([conn.sock, conn.wake_r], [], [], None if stalled else self.keepalive)[0]
                if conn.wake_r in ready:
                    conn.wake_r.recv(4096)
                if conn.sock in ready and not conn.sock.recv(4096):
                    peer_gone = True
                    break
                if not ready and not stalled:
                    chunk(b"\r\n")
            if not peer_gone:
                h.wfile.write(b"0\r\n\r\n")  # end of the chunked body: X closed the stream
        except OSError:
            pass  # the client hung up mid-write
        finally:
            h.close_connection = True
            with self._lock:
                if conn in self._streams:
                    self._streams.remove(conn)
                self._changed.notify_all()
            conn.wake_r.close()
            conn.wake_w.close()

    def _publish(self, rec: dict, author: dict) -> None:
        """Queue a new post on every open stream whose rules match it (called with the lock held)."""
        if not self._streams or author["protected"]:  # the filtered stream sees public posts only
            return
        matched = [r for r in self._rules.values()
                   if rule_matches(r["_tree"], author["username"].lower(), bool(rec.get("_retweet_of")))]
        if not matched:
            return
        for conn in self._streams:
            if conn.ending or conn.stalled:
                continue
            payload = self._tweets_payload([rec], conn.params)
            message = {"data": payload["data"][0], **({"includes": payload["includes"]} if "includes" in payload else {}),
                       "matching_rules": [{"id": r["id"], **({"tag": r["tag"]} if "tag" in r else {})} for r in matched]}
            returned = [rec["id"]] + [t["id"] for t in payload.get("includes", {}).get("tweets", [])]
            if self._garble is not None:
                message, self._garble = self._garble(message), None
            conn.outbox.append((json.dumps(message, ensure_ascii=False).encode() + b"\r\n", returned, rec["id"]))
            conn.wake()

    def _tweets_payload(self, tweets: list[dict], params: dict) -> dict:
        tf, uf, mf, ex = (set(params.get(k, "").split(",")) for k in ("tweet.fields", "user.fields",
                                                                       "media.fields", "expansions"))
        users, refs, media = {}, {}, {}

        def add_user(uid):
            if uid in self._users and uid not in users:
                users[uid] = self._render_user(self._users[uid], uf)

        def add_media(t):
            for key in t.get("attachments", {}).get("media_keys", []):
                full = self._media[key]
                media.setdefault(key, {k: v for k, v in full.items() if k in ("media_key", "type") or k in mf})

        for t in tweets:
            if "author_id" in ex:
                add_user(t["author_id"])
            if "in_reply_to_user_id" in ex and "in_reply_to_user_id" in t:
                add_user(t["in_reply_to_user_id"])
            if "entities.mentions.username" in ex:
                for mention in t.get("entities", {}).get("mentions", []):
                    add_user(mention.get("id"))
            if "attachments.media_keys" in ex:
                add_media(t)
            for ref in t.get("referenced_tweets", []):
                r = self._tweets.get(ref["id"])
                if r is None:
                    continue
                if "referenced_tweets.id" in ex:
                    refs.setdefault(r["id"], self._render_tweet(r, tf))
                if "referenced_tweets.id.author_id" in ex:
                    add_user(r["author_id"])
                if "referenced_tweets.id.attachments.media_keys" in ex:
                    add_media(r)
        includes = {k: list(v.values()) for k, v in (("media", media), ("users", users), ("tweets", refs)) if v}
        return {"data": [self._render_tweet(t, tf) for t in tweets], **({"includes": includes} if includes else {})}

    @staticmethod
    def _render_tweet(t: dict, fields: set) -> dict:
        out = {"id": t["id"], "text": t["text"], "edit_history_tweet_ids": t["edit_history_tweet_ids"]}
        out.update({k: v for k, v in t.items() if k in fields and not k.startswith("_") and k not in out})
        return out


def _base36(n: int) -> str:
    digits = string.digits + string.ascii_lowercase
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


class _Server(StopsAtOnce, ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 makes concurrent clients wait for a 1 s SYN retry

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up between requests is normal
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API behind requests.Session
    server_version = "fakex"
    disable_nagle_algorithm = True  # headers and body are separate writes; avoid 40 ms delayed-ACK stalls

    def do_GET(self):
        try:
            self.server.fake._handle(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout test): nothing to answer
        except Exception as exc:  # a bug in the fake: answer 500 instead of dropping the connection
            raw = json.dumps(problem("Internal Server Error", 500, f"fakex: {exc!r}")).encode()
            self.send_response(500)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def log_message(self, *args):
        pass
