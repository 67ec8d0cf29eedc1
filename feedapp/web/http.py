"""HTTP caching for pages and feeds: validators, 304s, a render cache and compression.

ETag and Last-Modified come from the content version (one primary-key read),
so a conditional GET is answered before any post is queried or rendered.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import brotli
from flask import Flask, Response, current_app, request, session

from .fastpath import VERSION_KEY
from .i18n import current_locale
from .state import content_state

COMPRESSIBLE = ("text/", "application/json", "application/feed+json", "application/rss+xml",
                "application/atom+xml", "application/xml", "text/x-opml", "application/manifest+json",
                "application/javascript")
MIN_COMPRESS = 512  # below this, headers cost more than compression saves


@dataclass
class Rendered:
    """A rendered body and its compressed forms, each made once."""

    body: bytes
    content_type: str
    _encoded: dict[str, bytes] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def encoded(self, encoding: str) -> bytes:
        if encoding == "identity":
            return self.body
        with self._lock:
            if encoding not in self._encoded:
                self._encoded[encoding] = compress(self.body, encoding)
            return self._encoded[encoding]


class RenderCache:
    """A bounded LRU of rendered responses; concurrent misses of one key render once."""

    def __init__(self, max_entries: int = 512):
        self.max_entries = max_entries
        self._items: OrderedDict[tuple, Rendered] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[tuple, threading.Lock] = {}
        self.renders = 0  # how many times a body was built (tests and benchmarks read it)

    def get(self, key: tuple, build: Callable[[], Rendered]) -> Rendered:
        """The cached entry for key, building it once if missing."""
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # single flight: the other waiters find the entry when it is released
            with self._lock:
                hit = self._items.get(key)
            if hit is not None:
                return hit
            rendered = build()
            with self._lock:
                self.renders += 1
                self._items[key] = rendered
                while len(self._items) > self.max_entries:
                    self._items.popitem(last=False)
                self._key_locks.pop(key, None)
            return rendered


def init_app(app: Flask) -> None:
    """Attach the render cache and compress dynamic responses the cache did not handle."""
    app.extensions["feedapp.render_cache"] = RenderCache()
    app.after_request(_compress_dynamic)


def render_cache(app: Flask | None = None) -> RenderCache:
    """The app's render cache."""
    return (app or current_app).extensions["feedapp.render_cache"]


def cached_response(key: tuple, build: Callable[[], bytes], *, content_type: str, cache_control: str,
                    vary: tuple[str, ...] = ()) -> Response:
    """Answer from validators (304), the render cache, or by building the body once.

    key names everything besides content that changes the body (route, office,
    cursor, format, base URL, language); the content version completes it.
    """
    state = content_state()
    version, changed_at = state.version, state.changed_at
    full_key = (version, *key)
    if content_type.startswith("text/html"):
        full_key += (current_locale(),)  # pages are translated; feeds are not
    etag = hashlib.sha256(repr(full_key).encode()).hexdigest()[:24]
    headers = {
        "ETag": f'W/"{etag}"',  # weak: one ETag for every content-coding of the same content (RFC 9110 §8.8.1)
        "Last-Modified": state.last_modified,
        "Cache-Control": cache_control,
        "Vary": ", ".join(("Accept-Encoding", *vary)),  # pages add Cookie and Accept-Language
    }
    request.environ[VERSION_KEY] = version  # lets the fast path remember these validators
    if session.get("_flashes"):
        # A one-time message for this reader only: render it fresh, never store or share it.
        response = Response(build(), content_type=content_type, headers=headers)
        response.headers["Cache-Control"] = "private, no-store"
        del response.headers["ETag"]
        return response
    if _not_modified(etag, changed_at):
        return Response(status=304, headers=headers)
    rendered = render_cache().get(full_key, lambda: Rendered(build(), content_type))
    encoding = negotiate_encoding()
    response = Response(rendered.encoded(encoding), content_type=rendered.content_type, headers=headers)
    if encoding != "identity":
        response.headers["Content-Encoding"] = encoding
    return response


def _not_modified(etag: str, changed_at) -> bool:
    # RFC 9110 §13.2.2: If-None-Match wins; If-Modified-Since only when it is absent.
    if request.if_none_match:
        return request.if_none_match.contains_weak(etag)
    since = request.if_modified_since
    return since is not None and changed_at.replace(microsecond=0) <= since


def negotiate_encoding() -> str:
    """br, else gzip, else identity, by the client's Accept-Encoding."""
    accepted = request.accept_encodings
    for encoding in ("br", "gzip"):
        if accepted[encoding] > 0:
            return encoding
    return "identity"


def compress(body: bytes, encoding: str) -> bytes:
    """body compressed with br or gzip."""
    if encoding == "br":
        return brotli.compress(body, quality=5)  # 5: most of 11's gain at a small fraction of its cost
    return gzip.compress(body, compresslevel=6, mtime=0)


def _compress_dynamic(response: Response) -> Response:
    if (
        response.direct_passthrough
        or response.status_code != 200
        or "Content-Encoding" in response.headers
        or not (response.mimetype or "").startswith(COMPRESSIBLE)
    ):
        return response
    body = response.get_data()
    if len(body) < MIN_COMPRESS:
        return response
    response.vary.add("Accept-Encoding")
    encoding = negotiate_encoding()
    if encoding != "identity":
        response.set_data(compress(body, encoding))
        response.headers["Content-Encoding"] = encoding
    return response
