"""Helpers for the headless Chromium tests: a real HTTP server, a sealed browser, colour maths.

Chromium is Debian's package (`make browser` installs it); Playwright only drives
it, so `playwright install` is never needed. Nothing the browser asks for leaves
127.0.0.1: every context routes other hosts to a stub (see Seal), and the launch
flags send whatever a route cannot see to a closed local port.
"""

from __future__ import annotations

import base64
import os
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from playwright.sync_api import expect
from sqlalchemy import select
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from feedapp.db import sessions
from feedapp.ingest.store import store_posts
from feedapp.models import Source
from feedapp.xapi.types import Link, XPost, XUser
from tests.loopback import StopsAtOnce

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",  # CI containers often have a tiny /dev/shm
    # Belt and braces: traffic no route sees (Chromium's own) goes to a closed local port, never out.
    "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1",
]
# How long a browser test waits for something that should happen (a page to load, a worker to take over, an
# element to show): only a guard against hanging for ever, never a speed requirement. Generous, because a loaded
# 2-core machine running two suites at once is slow; a passing test never waits for it.
PATIENCE = 60.0
expect.set_options(timeout=PATIENCE * 1000)  # every browser test module imports this one; Playwright's default: 5 s
# A phone: 360×740 CSS pixels at 2x, touch, mobile viewport rules; fixed locale and zone.
PHONE = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "en-US",
    "timezone_id": "UTC",
}
# A valid 1×1 PNG, served in place of every remote image (pbs.twimg.com is unreachable here).
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
# The server-rendered form of a <time>: "5 Mar 2030, 09:15 UTC".
SERVER_TIME_RE = re.compile(r"^\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC$")
# Page widths, and the first elements that stick out past the layout viewport, for failure messages.
# On a mobile viewport innerWidth grows to fit content that is too wide (the page is zoomed out),
# so scrollWidth <= innerWidth alone would pass; clientWidth stays at the device width.
WIDTHS_JS = """() => {
  const edge = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > edge + 0.5).slice(0, 5)
    .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
              + ' right=' + Math.round(e.getBoundingClientRect().right));
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, clientWidth: edge, wide};
}"""


# Where serve() keeps the app's response body in the WSGI environ, for QuietHandler.connection_dropped.
BODY_KEY = "tests.browser.body"
# How long serve() waits, on the way out, for requests the browser started to finish: only a guard against
# hanging for ever; they end as soon as their browser context is closed.
DRAIN_TIMEOUT = 60.0


class QuietHandler(WSGIRequestHandler):
    """Werkzeug request handler that does not log every request and always closes the app's response."""

    def log_request(self, *args, **kwargs) -> None:
        pass

    def run_wsgi(self) -> None:
        """Serve one request, counted as in flight until its response is closed."""
        self.server.requests.started()
        try:
            super().run_wsgi()
        finally:
            self.server.requests.finished()

    def connection_dropped(self, error: BaseException, environ: dict | None = None) -> None:
        """The browser went away (it does when a context closes mid-load): close the response anyway.

        Werkzeug's run_wsgi closes the response only after draining the request socket, and that
        read raises when the browser resets the connection; a WhiteNoise file would stay open (a
        ResourceWarning, an error under pytest.ini) and an app's close callbacks would never run.
        """
        body = (environ or {}).get(BODY_KEY)
        if body is not None:
            body.close()


class Body:
    """The app's response body, closed exactly once whichever of werkzeug and QuietHandler gets there first."""

    def __init__(self, body: Iterable[bytes]):
        self.body, self.closed = body, False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        """Close the app's body (PEP 3333: the server must, however the request ended)."""
        if not self.closed:
            self.closed = True
            if hasattr(self.body, "close"):
                self.body.close()


class InFlight:
    """How many requests a server is answering; wait() returns once none is."""

    def __init__(self):
        self.count, self.changed = 0, threading.Condition()

    def started(self) -> None:
        with self.changed:
            self.count += 1

    def finished(self) -> None:
        with self.changed:
            self.count -= 1
            self.changed.notify_all()

    def wait(self, timeout: float) -> bool:
        """True once no request is in flight; False if some still are after timeout seconds."""
        with self.changed:
            return self.changed.wait_for(lambda: self.count == 0, timeout)


class QuietServer(StopsAtOnce, ThreadedWSGIServer):
    """Werkzeug's threaded server that counts the requests it is answering."""

    def __init__(self, app, port: int = 0):
        def keep_body(environ, start_response):
            environ[BODY_KEY] = Body(app(environ, start_response))
            return environ[BODY_KEY]

        # Port 0: the kernel picks a free port as it binds; server_port reads it back (no race with other tests).
        # A given port: a server started again where a test's pages expect it (a restart).
        super().__init__("127.0.0.1", port, keep_body, handler=QuietHandler)
        self.requests = InFlight()


@contextmanager
def serve(app, port: int = 0) -> Iterator[str]:
    """Serve app on a free 127.0.0.1 port (or that port) from a thread; yield its base URL.

    On the way out, wait for requests still in flight (a browser context closing mid-load leaves
    some), so none runs on into the next test or outlives the app's database.
    """
    server = QuietServer(app, port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        drained = server.requests.wait(DRAIN_TIMEOUT)
        server.server_close()
        assert drained, f"{server.requests.count} request(s) still running {DRAIN_TIMEOUT:.0f} s after the test"


MEDIA_HOSTS = {"pbs.twimg.com", "abs.twimg.com"}


@dataclass
class Seal:
    """Route handler: the test server passes, remote images get PIXEL, anything else is aborted."""

    origin: str
    stubbed: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def __call__(self, route) -> None:
        """Decide one request; it never reaches another host."""
        url = route.request.url
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" == self.origin:
            route.continue_()
        elif route.request.resource_type == "image" or parts.netloc in MEDIA_HOSTS:
            # The service worker fetches images itself (resource type "fetch"), for its offline cache.
            self.stubbed.append(url)
            route.fulfill(status=200, content_type="image/png", body=PIXEL)
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")


def watch(page) -> list[str]:
    """Collect the page's console errors and warnings and its uncaught exceptions into a list."""
    problems: list[str] = []

    def on_console(msg) -> None:
        if msg.type in ("error", "warning"):
            problems.append(f"console.{msg.type}: {msg.text} ({msg.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    return problems


# Each image in turn scrolled into view (lazy ones load only near the viewport), then awaited until it has loaded or
# failed; the deadline only keeps a stuck image from hanging the test, and reports it as broken.
LOAD_ALL_IMAGES_JS = """async (deadlineMs) => {
  const settled = (img) => new Promise(done => {
    if (img.complete) return done();
    img.addEventListener('load', done, {once: true});
    img.addEventListener('error', done, {once: true});
    setTimeout(done, deadlineMs);
  });
  for (const img of document.images) {
    img.scrollIntoView();
    await settled(img);
  }
  window.scrollTo(0, 0);
  return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.currentSrc || i.src);
}"""


def load_all_images(page) -> None:
    """Scroll each image into view in turn and check that every one (lazy ones too) has loaded."""
    broken = page.evaluate(LOAD_ALL_IMAGES_JS, PATIENCE * 1000)
    assert broken == [], f"{page.url}: images that did not load: {broken}"


def widths(page) -> dict:
    """scrollWidth, innerWidth and clientWidth of the page, and elements wider than clientWidth."""
    return page.evaluate(WIDTHS_JS)


def fits(page, width: int) -> bool:
    """True when the page does not scroll sideways and is not zoomed out at a viewport width CSS pixels wide."""
    w = widths(page)
    return w["scrollWidth"] <= w["innerWidth"] == w["clientWidth"] == width


def store_post(app, post_id: int, text: str, links: tuple[Link, ...] = (), username: str = "HarborPineNews",
               lang: str | None = "en") -> datetime:
    """Store one post of a company-wide demo source, five minutes old, through the real store path; its time."""
    post = XPost(id=str(post_id), author=XUser(id="", username="", name=""), text=text, links=links, media=(),
                created_at=datetime.now(timezone.utc) - timedelta(minutes=5), lang=lang)
    with sessions(app)() as s:
        source = s.scalars(select(Source).where(Source.username == username)).one()
        store_posts(s, source, [post])
        s.commit()
    return post.created_at


def rgb(css: str) -> tuple[float, float, float]:
    """The red, green and blue (0-255) of a computed CSS colour like "rgb(16, 18, 20)"."""
    numbers = re.findall(r"[\d.]+", css)
    assert css.startswith("rgb") and len(numbers) >= 3, f"unexpected colour {css!r}"
    return float(numbers[0]), float(numbers[1]), float(numbers[2])


def luminance(css: str) -> float:
    """WCAG relative luminance of a computed CSS colour: 0 is black, 1 is white."""
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb(css))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two computed CSS colours (1 to 21)."""
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def patient(context):
    """Give a browser context's actions and navigations the generous PATIENCE deadline (Playwright: 30 s)."""
    context.set_default_timeout(PATIENCE * 1000)
    context.set_default_navigation_timeout(PATIENCE * 1000)
    return context


@contextmanager
def launch_chromium() -> Iterator:
    """One headless Debian Chromium driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def demo_app(tmp_path, sqlite_template):
    """The app with the demo company on its own SQLite copy; every write is visible at once."""
    import shutil

    from feedapp import create_app

    db = tmp_path / "browser.db"
    shutil.copy(sqlite_template, db)
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"),
                      "FEEDAPP_DATABASE_URL": f"sqlite:///{db}", "FEEDAPP_STATE_TTL": 0})
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    return app


class PageOpener:
    """Fresh phone contexts on one site, each sealed off the network; close() checks nothing leaked."""

    def __init__(self, browser, url: str, seals: list):
        self.browser, self.url, self.seals, self.contexts = browser, url, seals, []

    def __call__(self, **options):
        """A new page in a new context; keyword options override PHONE."""
        context = patient(self.browser.new_context(**{**PHONE, "base_url": self.url, **options}))
        self.contexts.append(context)
        seal = Seal(self.url)
        self.seals.append(seal)
        context.route("**/*", seal)
        return context.new_page()

    def close(self) -> None:
        """Close every context, then fail if a page asked for a non-image resource elsewhere."""
        for context in self.contexts:
            context.close()
        blocked = [url for seal in self.seals for url in seal.blocked]
        assert not blocked, f"the page asked for non-image resources on other hosts: {blocked}"
