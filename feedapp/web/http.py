"""HTTP caching for pages and feeds: validators, 304s, a render cache and compression.

ETag and Last-Modified come from the versions of the content scopes a response
shows (read once a second per worker) and the response's Variant, so a
conditional GET is answered before any post is queried or rendered, and a write
changes the validators of the responses that show it only.
"""

from __future__ import annotations

import gzip
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import brotli
from flask import Flask, Response, current_app, request, session
from flask_babel import force_locale

from .fastpath import CACHED_KEY, Cached, choose_encoding
from .state import content_state
from .variant import Variant

COMPRESSIBLE = ("text/", "application/json", "application/feed+json", "application/rss+xml",
                "application/atom+xml", "application/xml", "text/x-opml", "application/manifest+json",
                "application/javascript")
MIN_COMPRESS = 512  # below this, headers cost more than compression saves
STREAM_FRESHNESS = 10  # seconds: with X's filtered stream a post is stored seconds after it is published


def content_max_age(config) -> int:
    """Seconds a public feed or feed page may be reused: the poll interval, or seconds when the stream is on."""
    interval = int(config["FEEDAPP_POLL_INTERVAL"])
    return min(interval, STREAM_FRESHNESS) if config["FEEDAPP_STREAM"] else interval


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

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._items.clear()

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
            try:
                rendered = build()
            except BaseException:
                with self._lock:  # a failed build (a database outage) must not leave its lock behind
                    self._key_locks.pop(key, None)
                raise
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


def cached_response(variant: Variant, build: Callable[[], bytes], *, content_type: str, cache_control: str,
                    vary: tuple[str, ...] = (), fresh: bool = False) -> Response:
    """Answer from validators (304), the render cache, or by building the body once.

    The render-cache key and the ETag are the versions of the content scopes the
    response shows plus the variant (feedapp.web.variant): nothing else may change
    the body. The scopes follow from the variant: site, the company-wide posts
    (unless not Variant.company), its office's (Variant.office; EVERY_OFFICE for a
    response that may show any office's posts, like a post's own page), and the
    staff-only ones of those when Variant.staff. Last-Modified is the newest change
    among them. What is not a page
    is built in the default language, so the reader's cannot leak in.

    fresh: the body holds something of this browser's session (a form's CSRF token, which another
    browser of the same person could not use): built for this response only, never stored.
    """
    valid = content_state().validators(variant.office, variant.staff, variant.company)
    etag = variant.etag(valid.versions)
    headers = {
        "ETag": etag,  # weak: one ETag for every content-coding of the same content (RFC 9110 §8.8.1)
        "Last-Modified": valid.last_modified,
        "Cache-Control": cache_control,
        "Vary": ", ".join(("Accept-Encoding", *vary)),  # pages add Cookie and Accept-Language
    }
    if variant.locale is None:
        build = _in_default_language(build)
    if fresh or session.get("_flashes"):
        # A one-time message or a session's token for this reader only: render it fresh, never store or share it.
        response = Response(build(), content_type=content_type, headers=headers)
        response.headers["Cache-Control"] = "private, no-store"
        del response.headers["ETag"]
        return response
    if _not_modified(etag, valid.changed_at):
        # The 200's content type (Werkzeug leaves it out of the 304 itself), so that after-request
        # hooks treat both answers alike.
        return Response(status=304, headers=headers, content_type=content_type)
    rendered = render_cache().get((valid.versions, variant), lambda: Rendered(build(), content_type))
    # Lets the fast path answer repeats of this request while these scopes keep these versions.
    request.environ[CACHED_KEY] = Cached(valid.scopes, valid.versions, rendered)
    encoding = negotiate_encoding()
    response = Response(rendered.encoded(encoding), content_type=rendered.content_type, headers=headers)
    if encoding != "identity":
        response.headers["Content-Encoding"] = encoding
    return response


def _in_default_language(build: Callable[[], bytes]) -> Callable[[], bytes]:
    def build_in_default() -> bytes:
        with force_locale(current_app.config.get("BABEL_DEFAULT_LOCALE", "en")):
            return build()
    return build_in_default


def _not_modified(etag: str, changed_at) -> bool:
    # RFC 9110 §13.2.2: If-None-Match wins; If-Modified-Since only when it is absent.
    if request.if_none_match:
        return request.if_none_match.contains_weak(etag.removeprefix("W/").strip('"'))
    since = request.if_modified_since
    return since is not None and changed_at.replace(microsecond=0) <= since


def negotiate_encoding() -> str:
    """br, else gzip, else identity, by the client's Accept-Encoding (the fast path decides alike)."""
    return choose_encoding(request.headers.get("Accept-Encoding", ""))


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
