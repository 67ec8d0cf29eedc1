"""A break-room screen in real Chromium at 1920×1080 and 1080×1920: rotation, layout that never overflows, QR codes
that decode to the post's page, offline and revoked screens, a deploy's reload, framing, motion, and flat memory."""

from __future__ import annotations

import io
import re
import shutil
from contextlib import ExitStack, contextmanager

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from feedapp import create_app, screens
from feedapp.db import sessions
from feedapp.ingest.store import bump_content_version
from feedapp.models import Office, Post, Screen
from feedapp.roles import Actor
from tests.browser import PATIENCE, Seal, patient, serve, watch

SIZES = {"landscape": {"width": 1920, "height": 1080}, "portrait": {"width": 1080, "height": 1920}}
LONG = " ".join(f"Sentence number {i} about the new rota and the canteen hours, read it carefully." for i in range(40))
# Everything inside the viewport, the text inside its box, its size, the QR code's size, whether it was cut, the
# photo's box, the author, handle and time, the brand and the clock.
LAYOUT_JS = """() => {
  const text = document.getElementById('text'), qr = document.getElementById('qr').getBoundingClientRect();
  const photo = document.getElementById('photo'), box = photo.getBoundingClientRect();
  const brand = document.querySelector('.brand').getBoundingClientRect();
  const outside = [...document.querySelectorAll('#screen *')].filter(e => {
    const r = e.getBoundingClientRect();
    return r.width && (r.right > innerWidth + 0.5 || r.bottom > innerHeight + 0.5 || r.left < -0.5 || r.top < -0.5);
  }).map(e => e.id || e.className || e.tagName);
  return {post: document.getElementById('screen').dataset.post, font: parseFloat(getComputedStyle(text).fontSize),
          overflow: text.scrollHeight > text.clientHeight + 1, outside, qr: Math.min(qr.width, qr.height),
          more: !document.getElementById('more').hidden, text: text.textContent,
          scroll: [document.documentElement.scrollWidth, document.documentElement.scrollHeight],
          photo: photo.hidden ? null : {area: box.width * box.height,
                                        src: document.getElementById('photo-img').getAttribute('src')},
          by: ['author', 'handle', 'when'].map(id => document.getElementById(id).textContent.trim()),
          brand: brand.height > 0 && !!document.querySelector('.site').textContent.trim(),
          clock: document.getElementById('clock').textContent};
}"""


def make_app(tmp_path, sqlite_template, **overrides):
    """The demo company on its own SQLite copy, one post made very long; settings overridden."""
    db = tmp_path / "screens.db"
    shutil.copy(sqlite_template, db)
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"),
                      "FEEDAPP_DATABASE_URL": f"sqlite:///{db}", "FEEDAPP_STATE_TTL": 0, **overrides})
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    return app


def add_screen(app, name="Break room", office=None, staff_only=True) -> str:
    """A screen through feedapp.screens; its path."""
    with sessions(app)() as s:
        row = s.scalar(select(Office).where(Office.slug == office)) if office else None
        _, token = screens.add_screen(s, Actor.cli(), name, row, staff_only)
        s.commit()
    return f"/screen/{token}"


def lengthen_newest(app) -> int:
    """Make the newest company-wide post without media very long; its id."""
    with sessions(app)() as s:
        post = next(p for p in s.scalars(select(Post).where(Post.repost_of_id.is_(None)).order_by(Post.id.desc()))
                    if not p.media and p.source.office_id is None)
        post.text, post.links = LONG, []
        bump_content_version(s, ["site"])
        s.commit()
        return post.id


# A player with no service worker at all, as many have (and as Playwright's service_workers="block" is not: it warns in
# the console). The page must work the same without one.
NO_WORKER_JS = "delete Navigator.prototype.serviceWorker;"


@contextmanager
def opened(chromium, url, orientation="landscape", clock=False, worker=False, **options):
    """A page of a fresh context at that size, sealed off the network (the app's origin only); worker: with service
    workers (the screen's registers itself), else a player that has none."""
    context = patient(chromium.new_context(viewport=SIZES[orientation], locale="en-US", timezone_id="UTC",
                                           **options))
    if not worker:
        context.add_init_script(NO_WORKER_JS)
    origin = re.match(r"^https?://[^/]+", url)[0]
    seal = Seal(origin)
    # Only other origins' requests come to Python: a screen rotating every few milliseconds asks the app for a
    # photo and a QR code each time, and on a loaded machine a round trip through this process for each fell
    # behind, piling up requests until the page crawled (minutes instead of seconds).
    context.route(re.compile(rf"^(?!{re.escape(origin)}/)"), seal)
    page = context.new_page()
    problems = watch(page)
    if clock:
        page.clock.install()
    try:
        yield page, problems
    finally:
        # A screen polls until the end: a route handler still running as the context closes must not fail the test.
        context.unroute_all(behavior="ignoreErrors")
        context.close()
    assert not seal.blocked, seal.blocked


def new_version(route) -> None:
    """Answer posts.json as a deploy would: the same posts, another asset version (so the screen reloads)."""
    response = route.fetch(headers={k: v for k, v in route.request.headers.items() if k.lower() != "if-none-match"})
    route.fulfill(response=response, body=re.sub(r'"v":"[0-9a-f]+"', '"v":"deployed"', response.text()))


def switched(page, pattern, handler) -> list[bool]:
    """Route pattern to handler while the returned flag's [0] is true, then to the context's route.

    Never unroute() in these tests: a request in flight while its route is removed is handed on to the
    context's route after this one answered it (Playwright: "Route is already handled"), failing the test.
    """
    on = [True]
    page.route(pattern, lambda route: handler(route) if on[0] else route.fallback())
    return on


def rotations(page) -> int:
    return int(page.get_attribute("#screen", "data-rotations") or 0)


def decode_qr(page) -> str:
    """The text of the QR code on screen, decoded from a screenshot of its element."""
    image = Image.open(io.BytesIO(page.locator("#qr").screenshot()))
    found = zxingcpp.read_barcodes(image)
    assert len(found) == 1, "no QR code found in the screenshot"
    return found[0].text


@pytest.mark.parametrize("orientation", SIZES)
def test_every_post_fits_with_large_text_and_a_qr_code_of_its_page(chromium, tmp_path, sqlite_template, orientation):
    app = make_app(tmp_path, sqlite_template)
    long_id = lengthen_newest(app)
    path = add_screen(app)
    with serve(app) as base, opened(chromium, base + path, orientation, clock=True) as (page, problems):
        response = page.goto(base + path)
        assert "set-cookie" not in response.headers and response.headers.get("x-frame-options") is None
        assert page.evaluate("() => document.cookie") == ""
        assert page.evaluate("() => navigator.serviceWorker ? navigator.serviceWorker.controller : null") is None
        seen = {}
        for _ in range(200):  # one round and then some: every post, the long one included
            layout = page.evaluate(LAYOUT_JS)
            seen.setdefault(layout["post"], layout)
            if len(seen) >= 21 or (rotations(page) > 40 and str(long_id) in seen):
                break
            page.clock.run_for(13_000)  # past FEEDAPP_SCREEN_SECONDS (12) and the long post's extra
        assert str(long_id) in seen and len(seen) >= 10, sorted(seen)
        for post_id, layout in seen.items():
            assert not layout["overflow"] and layout["outside"] == [], (post_id, layout)
            assert layout["font"] >= 42, (post_id, layout["font"])  # 1vmin is 10.8 px either way round
            assert layout["qr"] >= 240, (post_id, layout["qr"])
            assert layout["scroll"] == [SIZES[orientation]["width"], SIZES[orientation]["height"]]
            assert all(layout["by"]) and layout["brand"] and re.match(r"^\d\d:\d\d", layout["clock"]), layout
        photos = [layout["photo"] for layout in seen.values() if layout["photo"]]
        # The photo large: a third of the wall at least (the demo's one photo, pinned or not).
        assert photos and all(p["src"] and p["area"] >= 1920 * 1080 / 3 for p in photos), photos
        long = seen[str(long_id)]
        assert long["more"] and len(long["text"]) < len(LONG)
        assert long["text"].endswith("carefully.")  # cut at a sentence
        # The QR code on screen opens the post's page.
        for _ in range(3):
            post_id = page.get_attribute("#screen", "data-post")
            page.wait_for_function("() => document.getElementById('qr').complete")
            assert decode_qr(page) == f"{base}/posts/{post_id}"
            page.clock.run_for(13_000)
        assert problems == []


@pytest.mark.parametrize("staff_only", [False, True])
def test_staff_only_posts_show_on_staff_only_screens_only(chromium, tmp_path, sqlite_template, staff_only):
    app = make_app(tmp_path, sqlite_template, FEEDAPP_SCREEN_SECONDS=1.0)
    path = add_screen(app, office="lyon", staff_only=staff_only)
    with serve(app) as base, opened(chromium, base + path, clock=True) as (page, problems):
        page.goto(base + path)
        shown = set()
        while rotations(page) < 25:  # more than one round (20 posts at most)
            shown.add(page.locator("#handle").text_content())
            page.clock.run_for(2_100)  # past the longest stay at 1 s a post (twice that for a long one)
        assert "@HPL_Lyon" in shown and "@HPL_Columbus" not in shown
        assert ("@HPL_AllHands" in shown) is staff_only  # the demo's protected, staff-only account
        assert problems == []


def test_a_post_hidden_by_an_editor_leaves_the_screen_at_the_next_check(chromium, tmp_path, sqlite_template):
    from feedapp import moderation

    app = make_app(tmp_path, sqlite_template, FEEDAPP_SCREEN_SECONDS=3600.0, FEEDAPP_SCREEN_REFRESH=0.3)
    path = add_screen(app)
    with serve(app) as base, opened(chromium, base + path) as (page, problems):
        page.goto(base + path)
        shown = page.get_attribute("#screen", "data-post")
        assert shown
        with sessions(app)() as s:
            moderation.hide(s, Actor.cli(), int(shown), "wrong rota")
            s.commit()
        # Each post stays an hour here: only the hide can move the screen on.
        expect(page.locator("#screen")).not_to_have_attribute("data-post", shown)
        assert problems == []


def test_the_clock_keeps_the_offices_time_zone_whatever_the_players(chromium, tmp_path, sqlite_template):
    from datetime import datetime, timezone

    app = make_app(tmp_path, sqlite_template)
    with sessions(app)() as s:
        s.scalar(select(Office).where(Office.slug == "lyon")).time_zone = "Europe/Paris"
        s.commit()
    path = add_screen(app, office="lyon")
    with serve(app) as base, opened(chromium, base + path) as (page, problems):  # the player's zone: UTC
        page.clock.install(time=datetime(2026, 7, 1, 10, 0, tzinfo=timezone.utc))
        page.goto(base + path)
        expect(page.locator("#clock")).to_have_text(re.compile(r"^12:00"))  # Paris, summer time
        assert problems == []


def test_posts_rotate_by_themselves_at_the_configured_pace(chromium, tmp_path, sqlite_template):
    app = make_app(tmp_path, sqlite_template, FEEDAPP_SCREEN_SECONDS=1.0)
    path = add_screen(app)
    with serve(app) as base, opened(chromium, base + path) as (page, problems):
        page.goto(base + path)
        first = page.get_attribute("#screen", "data-post")
        page.wait_for_function("() => +document.getElementById('screen').dataset.rotations >= 3")
        assert page.get_attribute("#screen", "data-post") != first or rotations(page) >= 3
        expect(page.locator("#clock")).to_have_text(re.compile(r"^\d\d:\d\d( [AP]M)?$"))
        assert problems == []


def test_each_post_stays_twelve_seconds_by_default_and_longer_when_long(chromium, tmp_path, sqlite_template):
    from datetime import datetime, timezone

    app = make_app(tmp_path, sqlite_template)  # FEEDAPP_SCREEN_SECONDS left at its default
    long_id = str(lengthen_newest(app))
    path = add_screen(app)
    start = datetime(2026, 7, 1, 10, 0, tzinfo=timezone.utc)
    with serve(app) as base, opened(chromium, base + path) as (page, problems):
        page.clock.install(time=start)
        page.goto(base + path)
        page.clock.pause_at(datetime(2026, 7, 1, 10, 0, 5, tzinfo=timezone.utc))  # before the first post's turn ends
        stays = {}  # post id → seconds on screen, counted in whole seconds of the paused clock
        shown, since = rotations(page), None
        for second in range(1, 600):
            page.clock.run_for(1_000)
            if rotations(page) != shown:
                if since is not None:  # the first post's start was not seen: from the second on
                    stays[current] = second - since
                shown, since, current = rotations(page), second, page.get_attribute("#screen", "data-post")
                if long_id in stays and len(stays) >= 4:
                    break
        assert long_id in stays, stays
        # Each as long as the server said (12 s, a second more per 20 words), the long one twice the default (the cap).
        said = {post["id"]: post["seconds"] for post in app.test_client().get(path + "/posts.json").json["posts"]}
        assert stays == {post_id: said[post_id] for post_id in stays}
        assert min(stays.values()) == 12 and stays[long_id] == 24, stays
        assert problems == []


def test_offline_keeps_the_last_posts_with_a_mark_and_recovers(chromium, tmp_path, sqlite_template):
    app = make_app(tmp_path, sqlite_template, FEEDAPP_SCREEN_SECONDS=1.0, FEEDAPP_SCREEN_REFRESH=0.3)
    path = add_screen(app)
    with serve(app) as base, opened(chromium, base + path) as (page, _problems):
        page.goto(base + path)
        page.wait_for_function("() => +document.getElementById('screen').dataset.rotations >= 1")
        offline = switched(page, "**/posts.json", lambda route: route.abort("internetdisconnected"))
        expect(page.locator("#offline")).to_be_visible()
        expect(page.locator("#offline")).to_have_text(re.compile(r"^Offline since \d\d:\d\d"))
        before = rotations(page)
        page.wait_for_function(f"() => +document.getElementById('screen').dataset.rotations >= {before + 2}")
        expect(page.locator("#post")).to_be_visible()
        assert page.locator("#text").text_content().strip()
        offline[0] = False
        expect(page.locator("#offline")).to_be_hidden()


def test_a_server_restart_leaves_the_screen_showing_its_posts_without_a_reload(chromium, tmp_path, sqlite_template):
    settings = {"FEEDAPP_SCREEN_SECONDS": 1.0, "FEEDAPP_SCREEN_REFRESH": 0.3}
    app = make_app(tmp_path, sqlite_template, **settings)
    path = add_screen(app)
    first = ExitStack()
    base = first.enter_context(serve(app))
    with first, opened(chromium, base + path) as (page, _problems):
        loads = []
        page.on("load", lambda: loads.append(page.url))
        page.goto(base + path)
        page.wait_for_function("() => +document.getElementById('screen').dataset.rotations >= 1")
        first.close()  # the server stops: connections refused
        expect(page.locator("#offline")).to_be_visible()
        before = rotations(page)
        page.wait_for_function(f"() => +document.getElementById('screen').dataset.rotations >= {before + 2}")
        # Started again, a new process's app on the same database and port, as after a crash or a host's reboot.
        again = create_app({"TESTING": True, "INSTANCE_PATH": app.instance_path, "FEEDAPP_STATE_TTL": 0,
                            "FEEDAPP_DATABASE_URL": app.config["FEEDAPP_DATABASE_URL"], **settings})
        with serve(again, port=int(base.rsplit(":", 1)[1])):
            expect(page.locator("#offline")).to_be_hidden()
            shown = rotations(page)
            page.wait_for_function(f"() => +document.getElementById('screen').dataset.rotations >= {shown + 2}")
            expect(page.locator("#post")).to_be_visible()
            assert loads == [base + path] and page.url == base + path  # no reload, no other page
        sessions(again).kw["bind"].dispose()


def test_a_removed_screen_clears_itself_and_its_url_answers_404(chromium, tmp_path, sqlite_template):
    app = make_app(tmp_path, sqlite_template, FEEDAPP_SCREEN_SECONDS=1.0, FEEDAPP_SCREEN_REFRESH=0.3)
    path = add_screen(app)
    with serve(app) as base, opened(chromium, base + path) as (page, _problems):
        page.goto(base + path)
        page.wait_for_function("() => +document.getElementById('screen').dataset.rotations >= 1")
        for _ in range(3):  # answered 304 meanwhile: online, nothing to say
            page.wait_for_event("request", predicate=lambda request: "posts.json" in request.url)
        expect(page.locator("#offline")).to_be_hidden()
        with sessions(app)() as s:
            screens.remove_screen(s, Actor.cli(), s.scalars(select(Screen)).one())
            s.commit()
        expect(page.locator("#removed")).to_be_visible()
        expect(page.locator("#post")).to_be_hidden()
        assert page.locator("#text").text_content() == "" and page.get_attribute("#qr", "src") is None
        stopped = rotations(page)
        for _ in range(3):  # it keeps asking (in case the 404s were a mistake), and shows nothing meanwhile
            page.wait_for_event("request", predicate=lambda request: "posts.json" in request.url)
        assert rotations(page) == stopped
        assert page.url == base + path  # never sent anywhere (no login page)
        assert page.goto(base + path).status == 404


@pytest.mark.parametrize("worker", [False, True], ids=["no-worker", "worker"])
def test_a_new_asset_version_reloads_the_page_once(chromium, tmp_path, sqlite_template, worker):
    app = make_app(tmp_path, sqlite_template, FEEDAPP_SCREEN_REFRESH=0.3)
    path = add_screen(app)
    with serve(app) as base, opened(chromium, base + path, worker=worker) as (page, _problems):
        loads = []
        page.on("load", lambda: loads.append(page.url))
        page.goto(base + path)
        if worker:  # its fetches are the worker's: only the context's routes see them
            page.wait_for_function(CONTROLLED_JS)
        (page.context if worker else page).route("**/posts.json", new_version)
        page.wait_for_url(re.compile(r"\?r=deployed$"))
        # The reloaded page still sees a version other than its own, and stays: a few more polls, no reload.
        page.wait_for_function("() => performance.getEntriesByType('resource')"
                               ".filter(e => e.name.includes('posts.json')).length >= 3")
        assert loads == [base + path, base + path + "?r=deployed"]


def test_the_reload_waits_until_the_page_itself_answers(chromium, tmp_path, sqlite_template):
    app = make_app(tmp_path, sqlite_template, FEEDAPP_SCREEN_REFRESH=0.3)
    path = add_screen(app)
    reloaded = re.compile(r"\?r=deployed$")
    with serve(app) as base, opened(chromium, base + path) as (page, _problems):
        page.goto(base + path)
        down = switched(page, reloaded, lambda route: route.abort("connectionrefused"))  # the page does not answer
        page.route("**/posts.json", new_version)
        for _ in range(2):  # it tries, and tries again at the next poll
            page.wait_for_event("request", predicate=lambda request: bool(reloaded.search(request.url)))
        assert page.url == base + path
        expect(page.locator("#post")).to_be_visible()  # still showing its posts, not an error page
        down[0] = False
        page.wait_for_url(reloaded)


def test_only_the_screen_may_be_framed_by_another_origin(chromium, tmp_path, sqlite_template):
    app = make_app(tmp_path, sqlite_template)
    path = add_screen(app, staff_only=False)
    with serve(app) as base:
        def player(environ, start_response):
            body = (f'<!doctype html><title>player</title><iframe id="screen" src="{base}{path}" width="960" '
                    f'height="540"></iframe><iframe id="feed" src="{base}/" width="400" height="300"></iframe>')
            start_response("200 OK", [("Content-Type", "text/html")])
            return [body.encode()]

        with serve(player) as other:
            assert other != base  # another port: another origin
            context = patient(chromium.new_context())
            # Only other origins' requests come to Python (aborted): the screen's own polls, still going as the
            # context closes, never wait on a route handler that closing would fail.
            context.route(re.compile(rf"^(?!({re.escape(base)}|{re.escape(other)})/)"), lambda route: route.abort())
            page = context.new_page()
            page.goto(other + "/")
            screen = page.frame_locator("#screen")
            expect(screen.locator("#screen")).to_have_attribute("data-rotations", re.compile(r"^[1-9]"))
            # Refused: Chromium puts its own error page in the frame instead of the feed.
            feed = page.frame(name="feed")
            feed.wait_for_load_state()
            assert feed.url == "chrome-error://chromewebdata/"
            assert page.frame(name="screen").url == base + path
            context.unroute_all(behavior="ignoreErrors")
            context.close()


@pytest.mark.parametrize("motion, animation", [("reduce", "none"), ("no-preference", "enter")])
def test_motion_follows_prefers_reduced_motion(chromium, tmp_path, sqlite_template, motion, animation):
    app = make_app(tmp_path, sqlite_template)
    path = add_screen(app)
    with serve(app) as base, opened(chromium, base + path, reduced_motion=motion) as (page, _problems):
        page.goto(base + path)
        page.wait_for_function("() => +document.getElementById('screen').dataset.rotations >= 1")
        assert page.evaluate("() => getComputedStyle(document.getElementById('post')).animationName") == animation


def test_memory_stays_flat_over_a_thousand_rotations(chromium, tmp_path, sqlite_template):
    # Polls every 50 ms too (304s, and the JSON again once the scope changes): fetching must not grow memory either.
    app = make_app(tmp_path, sqlite_template, FEEDAPP_SCREEN_SECONDS=0.002, FEEDAPP_SCREEN_REFRESH=0.05)
    lengthen_newest(app)  # the fitting (several layouts, cuts) runs too
    path = add_screen(app)
    with serve(app) as base, opened(chromium, base + path) as (page, problems):
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")

        def measure() -> dict:
            # Several passes: DOM nodes (and their listeners) die in Blink's own collector once V8 drops their
            # wrappers, so one pass can leave the last rotations' garbage counted.
            for _ in range(3):
                cdp.send("HeapProfiler.collectGarbage")
            heap = cdp.send("Runtime.getHeapUsage")
            metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
            elements = page.evaluate("() => document.getElementsByTagName('*').length")
            return {"heap": heap["usedSize"], "nodes": metrics["Nodes"], "listeners": metrics["JSEventListeners"],
                    "elements": elements}

        page.goto(base + path)
        # Warmed up first: every post, photo and QR code seen many times, the polls' first answers in, and
        # whatever the engine sets up once (compiled code, ICU data, the image cache) in place.
        page.wait_for_function("() => +document.getElementById('screen').dataset.rotations >= 1000", polling=250,
                               timeout=PATIENCE * 4 * 1000)
        # The count first: Playwright's selector engine, injected into the page on its first use (some 700 KB and a
        # dozen listeners of its own), must be in place before the first measurement, not counted as the page's.
        start = rotations(page)

        def settled(at: int) -> dict:
            """The lowest of three measurements 50 rotations apart, from `at` on: the floor, not a moment's peak."""
            found = []
            for step in range(3):
                page.wait_for_function(f"() => +document.getElementById('screen').dataset.rotations >= {at + 50 * step}",
                                       polling=250, timeout=PATIENCE * 4 * 1000)
                found.append(measure())
            return {key: min(m[key] for m in found) for key in found[0]}

        before = settled(start)
        after = settled(start + 1000)
        assert after["elements"] == before["elements"], (before, after)  # the same elements, reused
        # All nodes, the QR codes' SVG image documents included, which the image cache keeps and drops by the
        # hundred (hence the floors): a node kept per rotation would add a thousand.
        assert after["nodes"] < before["nodes"] + 500, (before, after)
        assert after["listeners"] <= before["listeners"], (before, after)
        # Keeping as little as a small object per rotation (~100 bytes) would add 100 KB.
        assert after["heap"] - before["heap"] < 64 * 1024, (before, after)
        assert problems == []


@pytest.mark.parametrize("body", ["{}", '{"error": "gateway"}', "[]", "null", '{"posts": [{"id": "1"}], "order": [0]}',
                                  '{"posts": [], "order": [5]}'])
def test_an_answer_that_is_json_but_not_the_screens_keeps_the_last_posts(chromium, tmp_path, sqlite_template, body):
    # A proxy or captive portal answering 200 with some JSON of its own is no news of the posts: the last good
    # ones stay on screen, rotating at their pace, marked offline (not an empty screen, nor a timer spinning at 0 ms).
    app = make_app(tmp_path, sqlite_template, FEEDAPP_SCREEN_SECONDS=1.0, FEEDAPP_SCREEN_REFRESH=0.3)
    path = add_screen(app)
    with serve(app) as base, opened(chromium, base + path) as (page, _problems):
        page.goto(base + path)
        page.wait_for_function("() => +document.getElementById('screen').dataset.rotations >= 1")
        offline = switched(page, "**/posts.json",
                           lambda route: route.fulfill(status=200, content_type="application/json", body=body))
        expect(page.locator("#offline")).to_be_visible()
        before = rotations(page)
        for _ in range(3):
            page.wait_for_event("request", predicate=lambda request: "posts.json" in request.url)
        expect(page.locator("#post")).to_be_visible()
        assert page.locator("#text").text_content().strip()
        assert rotations(page) <= before + 3  # the posts' own pace (1 s each), not a spin
        offline[0] = False
        expect(page.locator("#offline")).to_be_hidden()


def test_a_reload_answered_by_another_page_is_not_followed(chromium, tmp_path, sqlite_template):
    # A captive portal answering 200 with its own page when the screen reloads for a deploy would leave the
    # player there for good (no script of ours to come back): only the screen's own page is reloaded into.
    app = make_app(tmp_path, sqlite_template, FEEDAPP_SCREEN_REFRESH=0.3)
    path = add_screen(app)
    reloaded = re.compile(r"\?r=deployed$")
    with serve(app) as base, opened(chromium, base + path) as (page, _problems):
        page.goto(base + path)
        down = switched(page, reloaded, lambda route: route.fulfill(
            status=200, content_type="text/html", body="<!doctype html><title>Wi-Fi</title><p>Accept the terms"))
        page.route("**/posts.json", new_version)
        for _ in range(2):
            page.wait_for_event("request", predicate=lambda request: bool(reloaded.search(request.url)))
        assert page.url == base + path
        expect(page.locator("#post")).to_be_visible()
        down[0] = False
        page.wait_for_url(reloaded)


def test_a_404_that_is_not_the_apps_is_only_an_outage(chromium, tmp_path, sqlite_template):
    # A proxy's or portal's own 404 page (nginx before the app is back, a maintenance page) says nothing about the
    # screen: it keeps its posts, marked offline, instead of clearing itself as removed.
    app = make_app(tmp_path, sqlite_template, FEEDAPP_SCREEN_SECONDS=1.0, FEEDAPP_SCREEN_REFRESH=0.3)
    path = add_screen(app)
    with serve(app) as base, opened(chromium, base + path) as (page, _problems):
        page.goto(base + path)
        page.wait_for_function("() => +document.getElementById('screen').dataset.rotations >= 1")
        offline = switched(page, "**/posts.json", lambda route: route.fulfill(
            status=404, content_type="text/html", body="<html><body><h1>404 Not Found</h1><hr>nginx"))
        for _ in range(5):
            page.wait_for_event("request", predicate=lambda request: "posts.json" in request.url)
        expect(page.locator("#offline")).to_be_visible()
        expect(page.locator("#removed")).to_be_hidden()
        expect(page.locator("#post")).to_be_visible()
        offline[0] = False
        expect(page.locator("#offline")).to_be_hidden()


CONTROLLED_JS = "() => !!navigator.serviceWorker.controller"
# The screen's saved copies in the worker's caches (templates/screen_sw.js): which of its page and posts.json.
SAVED_JS = """async (token) => {
  const cache = await caches.open('screen-saved-' + token);
  return (await cache.keys()).map(r => new URL(r.url).pathname.split('/').slice(3).join('/') || 'page').sort();
}"""


def until(page, check_js: str, arg=None) -> None:
    """Wait until the async function check_js(arg) is true in the page (wait_for_function does not await a promise)."""
    found = page.evaluate(f"""async (arg) => {{
      const check = {check_js}, end = Date.now() + {PATIENCE * 1000};
      while (!(await check(arg))) {{
        if (Date.now() > end) return false;
        await new Promise(done => setTimeout(done, 20));
      }}
      return true;
    }}""", arg)
    assert found, f"not true within {PATIENCE} s: {check_js}"


def worker_ready(page, path: str, *parts: str) -> None:
    """Wait until the screen's worker controls the page and has saved these of it ("page", "posts.json")."""
    page.wait_for_function(CONTROLLED_JS)
    until(page, f"async (parts) => ({SAVED_JS})({path.rsplit('/', 1)[1]!r})"
                f".then(saved => parts.every(part => saved.includes(part)))", list(parts))


def seen_posts_js() -> str:
    """Records every post the page shows from now on (the one on screen included) in window.seenPosts."""
    return """() => {
      const root = document.getElementById('screen');
      window.seenPosts = new Set([root.dataset.post]);
      new MutationObserver(() => window.seenPosts.add(root.dataset.post))
        .observe(root, {attributes: true, attributeFilter: ['data-post']});
    }"""



@contextmanager
def screen_with_worker(chromium, tmp_path, sqlite_template):
    """A fast screen on a served app, opened with its service worker in control of the page.

    Yields (app, path, page, problems, server, first): first is the post shown at load; server.close() stops
    the app's server (the player then meets refused connections).
    """
    app = make_app(tmp_path, sqlite_template, FEEDAPP_SCREEN_SECONDS=0.3, FEEDAPP_SCREEN_REFRESH=0.3)
    path = add_screen(app)
    server = ExitStack()
    base = server.enter_context(serve(app))
    with server, opened(chromium, base + path, worker=True) as (page, problems):
        page.goto(base + path)
        first = page.get_attribute("#screen", "data-post")
        worker_ready(page, path, "page")
        yield app, path, page, problems, server, first


def test_with_a_service_worker_a_reload_while_the_server_is_down_shows_the_last_posts_offline(
        chromium, tmp_path, sqlite_template):
    from datetime import datetime, timedelta, timezone

    from feedapp import moderation

    with screen_with_worker(chromium, tmp_path, sqlite_template) as (app, path, page, problems, server, first):
        # The post the saved page shows first is hidden: the last good posts.json, not the page, must be what returns.
        with sessions(app)() as s:
            moderation.hide(s, Actor.cli(), int(first), "wrong rota")
            s.commit()
        until(page, """async ([token, hidden]) => {
          const saved = await (await caches.open('screen-saved-' + token)).match('/screen/' + token + '/posts.json');
          return !!saved && !(await saved.text()).includes('"id":"' + hidden + '"');
        }""", [path.rsplit("/", 1)[1], first])  # the posts.json of after the hide, kept
        count = len(app.test_client().get(path + "/posts.json").json["posts"])
        server.close()  # the server stops: connections refused
        expect(page.locator("#offline")).to_be_visible()
        mark = page.locator("#offline").text_content()
        assert re.match(r"^Offline since \d\d:\d\d [AP]M$", mark), mark  # en-US

        page.reload()  # a reboot of the player, the server still down: its saved page, not an error page
        expect(page.locator("#offline")).to_have_text(mark)  # since the outage began, not since the reload
        expect(page.locator("#post")).to_be_visible()
        page.evaluate(seen_posts_js())
        page.wait_for_function(f"() => +document.getElementById('screen').dataset.rotations >= {count + 2}")
        seen = page.evaluate("() => [...window.seenPosts]")
        assert first not in seen and len(seen) == count, (first, seen)
        assert page.locator("#text").text_content().strip()

        # The mark's time comes from the player's storage: an outage that began hours before the reboot says so.
        earlier = datetime.now(timezone.utc) - timedelta(hours=3)
        page.evaluate("""([key, since]) => localStorage.setItem(key, JSON.stringify({since}))""",
                      [f"feedapp.screen {path}/posts.json", int(earlier.timestamp() * 1000)])
        page.reload()
        expect(page.locator("#offline")).to_have_text(f"Offline since {earlier:%I:%M %p}")
        expect(page.locator("#post")).to_be_visible()
        # Only the down server's refused requests (the browser logs each): no script error, no CSP refusal.
        assert [p for p in problems if "Failed to load resource" not in p] == [], problems


def test_with_a_service_worker_a_removed_screen_never_comes_back_from_its_cache(chromium, tmp_path, sqlite_template):
    from playwright.sync_api import Error

    with screen_with_worker(chromium, tmp_path, sqlite_template) as (app, path, page, _problems, server, _first):
        token = path.rsplit("/", 1)[1]
        page.wait_for_function("() => +document.getElementById('screen').dataset.rotations >= 1")
        until(page, f"async () => (await caches.keys()).includes('screen-images-{token}')")  # a QR code
        with sessions(app)() as s:
            screens.remove_screen(s, Actor.cli(), s.scalars(select(Screen)).one())
            s.commit()
        expect(page.locator("#removed")).to_be_visible()
        # Everything of it went from the worker's caches (and from storage) at the app's first "gone".
        assert page.evaluate("async () => (await caches.keys()).filter(n => !n.startsWith('screen-assets-'))") == []
        assert page.evaluate("() => Object.keys(localStorage)") == []
        assert page.reload().status == 404  # the server up: its 404, as for any unknown URL
        expect(page.locator("#post")).to_have_count(0)
        server.close()
        with pytest.raises(Error):  # the server down: the browser's error page, nothing saved to show instead
            page.reload()
        expect(page.locator("#post")).to_have_count(0)
        assert page.evaluate("() => document.body.innerText").find("Offline since") < 0


def test_with_a_service_worker_a_proxys_page_never_replaces_the_saved_screen(chromium, tmp_path, sqlite_template):
    # A filtering proxy or captive portal answering the screen's address with a page of its own, status 200 (as
    # corporate networks do): the reboot after it, the server down, must show the screen's posts, not that page.
    with screen_with_worker(chromium, tmp_path, sqlite_template) as (_app, path, page, _problems, server, _first):
        proxy = switched(page.context, f"**{path}", lambda route: route.fulfill(
            status=200, content_type="text/html", body="<!doctype html><title>Blocked</title><p>Access denied</p>"))
        page.reload()  # the worker's fetch of the page meets the proxy
        expect(page.locator("body")).to_have_text("Access denied")
        proxy[0] = False
        server.close()
        page.reload()
        expect(page.locator("#post")).to_be_visible()
        expect(page.locator("#offline")).to_be_visible()
