"""Answer repeat GETs of anonymous readers from the render cache before Flask runs.

Feed readers poll every few minutes and most page views are of the same few
pages. Once Flask has served a cached body (feedapp.web.http.cached_response),
the response is remembered under every request input an anonymous response
can depend on: path, query string, host, scheme, script root, the whole Cookie
header and Accept-Language (the raw inputs the Variant is resolved from, so
two requests with equal inputs always resolve to the same Variant), with the
content scopes it shows and their versions. While those versions are unchanged
(writes to other scopes do not count), a request with the same inputs gets the
same answer without routing or hooks: 304 when its validators match, else the
body in the content-coding it accepts. Only `Cache-Control: public` answers
are remembered; requests with a session or remember-me cookie (signed-in
readers, one-time messages) always go through Flask.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from .state import ContentState, StateCache

CACHED_KEY = "feedapp.cached"  # set by cached_response in the WSGI environ
# Never copied from a remembered answer: they describe one message, not the resource.
PER_MESSAGE = {"content-length", "content-encoding", "set-cookie", "date", "server", "connection",
               "transfer-encoding"}
# What a 304 carries: the fields RFC 9110 §15.4.5 lists (those that update the stored response). The
# browser shows the stored response, its own CSP, X-Frame-Options and other headers included, so
# repeating them in every 304 costs bytes and nothing else. Flask's 304s are cut to the same set here.
NOT_MODIFIED_KEPT = {"etag", "cache-control", "vary", "expires", "content-location", "date"}


@dataclass(frozen=True)
class Cached:
    """What cached_response leaves in the environ: the scopes the body shows, their versions, the body."""

    scopes: tuple[str, ...]
    versions: tuple[int, ...]
    rendered: object  # feedapp.web.http.Rendered


@dataclass(eq=False, slots=True)
class Entry:
    scopes: tuple[str, ...]
    versions: tuple[int, ...]  # of scopes when the answer was made
    etag: str
    last_modified: str | None
    rendered: object  # feedapp.web.http.Rendered
    headers: list[tuple[str, str]]  # of the 200, without per-message fields
    not_modified: list[tuple[str, str]]
    checked: object = None  # the ContentState these versions were last found current in

    def current(self, state: ContentState) -> bool:
        """True while the scopes still have the versions the answer was made at.

        StateCache makes a new state only when a version changed, so the common case is
        one identity check; after a change each entry compares its own versions once.
        """
        if self.checked is state:
            return True
        if state.versions_of(self.scopes) != self.versions:
            return False
        self.checked = state  # a plain attribute write: threads racing here write equal values
        return True


class FastPath:
    """WSGI middleware: remembered answers for repeat anonymous GETs, without entering Flask."""

    def __init__(self, wsgi_app, state: StateCache, private_cookies: tuple[str, ...], max_entries: int = 4096):
        self.wsgi_app, self.state, self.max_entries = wsgi_app, state, max_entries
        self.private_cookies = tuple(f"{name}=" for name in private_cookies)
        self.entries: OrderedDict[tuple, Entry] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = 0
        self._encodings: dict[str, str] = {}  # Accept-Encoding header -> chosen coding

    def clear(self) -> None:
        """Forget every remembered answer."""
        with self.lock:
            self.entries.clear()

    def __call__(self, environ, start_response):
        key = self._key(environ)
        if key is None:
            return self.wsgi_app(environ, _trim_304(start_response))
        entry = self.entries.get(key)  # a dict read is atomic; the lock guards writes
        if entry is not None and entry.current(self.state.get()):
            return self._answer(entry, environ, start_response)
        captured = {}
        trimmed = _trim_304(start_response)

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return trimmed(status, headers, exc_info)

        result = self.wsgi_app(environ, capture)
        cached = environ.get(CACHED_KEY)
        if cached is not None and captured.get("status", "")[:3] == "200":
            self._remember(key, cached, captured["headers"])
        return result

    def _answer(self, entry: Entry, environ, start_response):
        with self.lock:
            self.hits += 1
        if _not_modified(environ, entry):
            start_response("304 NOT MODIFIED", list(entry.not_modified))
            return []
        accept = environ.get("HTTP_ACCEPT_ENCODING", "")
        encoding = self._encodings.get(accept)
        if encoding is None:
            encoding = self._encodings[accept] = choose_encoding(accept) if len(self._encodings) < 256 else "identity"
        body = entry.rendered.encoded(encoding)
        headers = list(entry.headers)
        if encoding != "identity":
            headers.append(("Content-Encoding", encoding))
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    def _remember(self, key: tuple, cached: Cached, headers: list[tuple[str, str]]) -> None:
        names = {k.lower(): v for k, v in headers}
        if not names.get("cache-control", "").startswith("public") or "set-cookie" in names:
            return  # private answers (a feed token's, a reader's) are checked by Flask every time
        entry = Entry(
            scopes=cached.scopes, versions=cached.versions, etag=names.get("etag", ""),
            last_modified=names.get("last-modified"),
            rendered=cached.rendered,
            headers=[(k, v) for k, v in headers if k.lower() not in PER_MESSAGE],
            not_modified=[(k, v) for k, v in headers if k.lower() in NOT_MODIFIED_KEPT],
        )
        with self.lock:
            self.entries[key] = entry
            self.entries.move_to_end(key)
            while len(self.entries) > self.max_entries:
                self.entries.popitem(last=False)

    def _key(self, environ) -> tuple | None:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return None
        cookies = environ.get("HTTP_COOKIE", "")
        if any(name in cookies for name in self.private_cookies):
            return None  # a signed-in reader, or a message waiting in the session: Flask decides
        return (environ.get("PATH_INFO"), environ.get("QUERY_STRING"), environ.get("HTTP_HOST"),
                environ.get("wsgi.url_scheme"), environ.get("SCRIPT_NAME"), cookies,
                environ.get("HTTP_ACCEPT_LANGUAGE"))


def _trim_304(start_response):
    """start_response that sends a 304 with only the NOT_MODIFIED_KEPT headers."""
    def trimmed(status, headers, exc_info=None):
        if status[:3] == "304":
            headers = [(k, v) for k, v in headers if k.lower() in NOT_MODIFIED_KEPT]
        return start_response(status, headers, exc_info)
    return trimmed


def _not_modified(environ, entry: Entry) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present; else If-Modified-Since."""
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match:
        return _matches(if_none_match, entry.etag)
    since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if not since or not entry.last_modified:
        return False
    try:
        return parsedate_to_datetime(entry.last_modified) <= parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False  # an unparsable date is ignored (RFC 9110 §13.1.3)


def _matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2): W/"x" matches "x" and W/"x"."""
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


def choose_encoding(accept_encoding: str) -> str:
    """br, else gzip, else identity, by an Accept-Encoding header (q=0 refuses a coding)."""
    offered = {}
    for part in accept_encoding.split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        offered[name.strip().lower()] = q
    for encoding in ("br", "gzip"):
        if offered.get(encoding, offered.get("*", 0.0)) > 0:
            return encoding
    return "identity"
