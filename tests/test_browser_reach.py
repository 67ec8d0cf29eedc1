"""The readership beacon in a real headless Chromium at phone size (static/feed.js, POST /reach).

Time on the page is Playwright's fake clock (page.clock): the one-second wait is advanced explicitly, and
what is on screen is confirmed through an IntersectionObserver of the test's own, so nothing depends on how
fast the machine is.
"""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import date

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from feedapp.db import sessions
from feedapp import readership
from feedapp.models import Office, Post, ReadCount
from tests.browser import PATIENCE, PageOpener, demo_app, fits, serve, watch
from tests.test_browser_auth import _user, sign_in

# Resolves once the element with this id is (or is not) at least half on screen, as an IntersectionObserver sees
# it: observers are told in creation order in one task, so the page's own has been told by then.
ON_SCREEN_JS = """([id, wanted]) => new Promise(done => {
  const io = new IntersectionObserver(entries => {
    const e = entries[entries.length - 1];
    if ((e.isIntersecting && e.intersectionRatio >= 0.5) === wanted) { io.disconnect(); done(true); }
  }, {threshold: [0, 0.5, 1]});
  io.observe(document.getElementById(id));
})"""
HALF_VISIBLE_JS = """() => [...document.querySelectorAll('main article[id^=p]')].filter(a => {
  const r = a.getBoundingClientRect(), seen = Math.min(r.bottom, innerHeight) - Math.max(r.top, 0);
  return seen >= r.height / 2 || seen >= innerHeight / 2;
}).map(a => a.id.slice(1))"""


@pytest.fixture
def site(tmp_path, sqlite_template):
    app = demo_app(tmp_path, sqlite_template)
    with sessions(app)() as s:
        _user(s, "harbourmaster", admin=True)
        s.commit()
    recorder = Recorder(app)
    with serve(recorder) as url:
        yield app, url, recorder
    sessions(app).kw["bind"].dispose()


class Recorder:
    """WSGI wrapper that notes each POST /reach as the server got it: body, Cookie header, status, Set-Cookie.

    Playwright does not report a keepalive request that a page sends while it unloads, so the server side tells.
    """

    def __init__(self, app):
        self.app, self.seen, self.lock = app, [], threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != "/reach":
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        answer = {}

        def noting(status, headers, exc_info=None):
            answer.update(status=status[:3], set_cookie=[v for k, v in headers if k.lower() == "set-cookie"])
            return start_response(status, headers, exc_info)

        result = self.app(environ, noting)
        with self.lock:
            self.seen.append({"body": json.loads(body), "cookie": environ.get("HTTP_COOKIE"), **answer})
        return result

    def wait(self, page, count: int) -> list[dict]:
        """The first `count` beacons, once the server has answered them.

        Polls while letting Playwright run: the context's routes (tests.browser.Seal) are served by the sync API
        only inside its calls, so a blocked test thread would hold the request in the browser for ever.
        """
        until(page, lambda: len(self.seen) >= count, lambda: self.seen)
        return self.seen[:count]


def until(page, condition, detail) -> None:
    """Return once condition() holds, letting Playwright's event loop run; fail after PATIENCE seconds."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, detail()
        page.wait_for_timeout(25)  # the poll interval of a condition, not a timing assertion


@pytest.fixture
def new_page(chromium, site):
    opener = PageOpener(chromium, site[1], [])
    yield opener
    opener.close()


# The page's own pagehide listener, as the browser calls it when the reader leaves. (A keepalive request sent while
# a page unloads under Playwright did not reliably reach the server, so the tests fire the event themselves.)
PAGEHIDE_JS = "() => window.dispatchEvent(new PageTransitionEvent('pagehide', {persisted: false}))"


def test_a_post_half_on_screen_for_a_second_is_counted_and_one_scrolled_past_is_not(new_page, site):
    app, url, recorder = site
    page = new_page()
    problems = watch(page)
    # The office cookie a reader gets by choosing an office: the beacon must not carry it.
    page.context.add_cookies([{"name": "office", "value": "lyon", "url": url}])
    page.clock.install()
    page.goto("/")
    expect(page.locator("main")).to_have_attribute("data-office", "lyon")
    cards = page.evaluate("() => [...document.querySelectorAll('main article[id^=p]')].map(a => a.id)")
    first, far = cards[0], cards[-1]
    assert page.evaluate(ON_SCREEN_JS, [first, True])
    visible = page.evaluate(HALF_VISIBLE_JS)
    assert visible and far[1:] not in visible
    page.clock.run_for(1500)  # the ones on screen: a second and a half
    # A post scrolled into view and out again before its second is up is not counted.
    page.locator(f"#{far}").scroll_into_view_if_needed()
    assert page.evaluate(ON_SCREEN_JS, [far, True])
    page.evaluate("() => window.scrollTo(0, 0)")
    assert page.evaluate(ON_SCREEN_JS, [far, False])
    page.clock.run_for(5000)
    page.evaluate(PAGEHIDE_JS)  # leaving the page sends the batch
    beacon, = recorder.wait(page, 1)
    assert beacon["body"] == {"office": "lyon", "views": visible, "opens": []}
    assert beacon["cookie"] is None  # the office cookie stayed home
    assert beacon["status"] == "204" and beacon["set_cookie"] == []
    wait_for_counts(page, app, "view", {int(i): 1 for i in visible})
    assert problems == []


def wait_for_counts(page, app, kind: str, expected: dict) -> None:
    """Until the stored counts of kind equal expected."""
    def found():
        with sessions(app)() as s:
            return {r.post_id: r.count for r in s.scalars(select(ReadCount).where(ReadCount.kind == kind))}

    until(page, lambda: found() == expected, found)


def test_posts_never_on_screen_are_not_sent(new_page, site):
    app, _, recorder = site
    page = new_page()
    page.clock.install()
    page.goto("/offices/lyon")
    cards = page.evaluate("() => [...document.querySelectorAll('main article[id^=p]')].map(a => a.id.slice(1))")
    assert page.evaluate(ON_SCREEN_JS, ["p" + cards[0], True])
    page.clock.run_for(1500)
    visible = page.evaluate(HALF_VISIBLE_JS)
    page.evaluate(PAGEHIDE_JS)
    beacon, = recorder.wait(page, 1)
    assert beacon["body"]["views"] == visible and len(cards) > len(visible) + 5
    wait_for_counts(page, app, "view", {int(i): 1 for i in visible})


def test_a_post_page_counts_one_open(new_page, site):
    app, _, recorder = site
    with sessions(app)() as s:
        post = s.scalar(select(Post.id).order_by(Post.id.desc()))
    page = new_page()
    page.goto(f"/posts/{post}")
    beacon, = recorder.wait(page, 1)
    assert beacon["body"] == {"office": None, "views": [], "opens": [str(post)]} and beacon["cookie"] is None
    wait_for_counts(page, app, "open", {post: 1})
    page.reload()
    assert len(recorder.wait(page, 2)) == 2  # once per page load
    wait_for_counts(page, app, "open", {post: 2})


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_reach_console_fits_a_phone(new_page, site, scheme, tmp_path):
    app = site[0]
    with sessions(app)() as s:  # enough to fill every table: offices over and under 5, a feed and an aggregator
        posts = list(s.scalars(select(Post.id).order_by(Post.id.desc()).limit(12)))
        lyon = s.scalar(select(Office.id).where(Office.slug == "lyon"))
        today = date.today()
        for n, post in enumerate(posts):
            for office, times in ((0, 5 + n), (lyon, n)):
                for _ in range(times):
                    readership.record_views(s, today, office, [post], "view")
            readership.record_views(s, today, 0, [post], "open")
        for n in range(7):
            readership.record_feed_reader(s, today, "office:lyon", f"c{n}")
        readership.record_subscribers(s, today, "office:lyon", "Feedly", 42)
        s.commit()
    page = new_page(viewport={"width": 390, "height": 844}, color_scheme=scheme)
    problems = watch(page)
    sign_in(page, "harbourmaster")
    page.goto("/offices/lyon")
    page.goto("/admin/reach")
    expect(page.get_by_role("heading", level=1)).to_have_text("Reach")
    assert fits(page, 390)
    page.screenshot(path=str(tmp_path / f"reach-{scheme}.png"), full_page=True)
    assert problems == []
