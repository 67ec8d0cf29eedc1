"""Answer repeat conditional GETs of anonymous readers with 304 before Flask runs.

Feed readers poll every few minutes with If-None-Match. Once a response has
been served, its validators are remembered under every input an anonymous
response can depend on (path, query, host, scheme, cookies, Accept-Language).
While the content version is unchanged, a request with a matching ETag gets
the same 304 headers Flask would send, without routing or hooks. Only
`Cache-Control: public` answers are remembered; requests with a session or
remember-me cookie always go through Flask.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from .state import StateCache

VERSION_KEY = "feedapp.cache_version"  # set by cached_response in the WSGI environ
KEPT = {"etag", "cache-control", "vary", "last-modified", "content-security-policy", "x-content-type-options",
        "referrer-policy", "x-frame-options", "x-feedapp-audience", "x-feedapp-offline"}


@dataclass(frozen=True)
class Entry:
    version: int
    etag: str
    headers: list[tuple[str, str]]


class NotModifiedFastPath:
    """WSGI middleware: remembered validators → 304 without entering Flask."""

    def __init__(self, wsgi_app, state: StateCache, private_cookies: tuple[str, ...], max_entries: int = 4096):
        self.wsgi_app, self.state, self.max_entries = wsgi_app, state, max_entries
        self.private_cookies = tuple(f"{name}=" for name in private_cookies)
        self.entries: OrderedDict[tuple, Entry] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = 0

    def __call__(self, environ, start_response):
        key = self._key(environ)
        if key is None:
            return self.wsgi_app(environ, start_response)
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        if if_none_match:
            with self.lock:
                entry = self.entries.get(key)
            if entry and entry.version == self.state.get().version and _matches(if_none_match, entry.etag):
                self.hits += 1
                start_response("304 NOT MODIFIED", list(entry.headers))
                return []
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return start_response(status, headers, exc_info)

        result = self.wsgi_app(environ, capture)
        version = environ.get(VERSION_KEY)
        if version is not None and captured.get("status", "")[:3] in ("200", "304"):
            headers = [(k, v) for k, v in captured["headers"] if k.lower() in KEPT]
            if not any(k.lower() == "cache-control" and v.startswith("public") for k, v in headers):
                return result  # private answers (a feed token's, a reader's) are checked by Flask every time
            etag = next((v for k, v in headers if k.lower() == "etag"), None)
            if etag:
                with self.lock:
                    self.entries[key] = Entry(version, etag, headers)
                    self.entries.move_to_end(key)
                    while len(self.entries) > self.max_entries:
                        self.entries.popitem(last=False)
        return result

    def _key(self, environ) -> tuple | None:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return None
        cookies = environ.get("HTTP_COOKIE", "")
        if any(name in cookies for name in self.private_cookies):
            return None  # a signed-in reader: Flask decides
        return (environ.get("PATH_INFO"), environ.get("QUERY_STRING"), environ.get("HTTP_HOST"),
                environ.get("wsgi.url_scheme"), environ.get("SCRIPT_NAME"), cookies,
                environ.get("HTTP_ACCEPT_LANGUAGE"))


def _matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2): W/"x" matches "x" and W/"x"."""
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))
