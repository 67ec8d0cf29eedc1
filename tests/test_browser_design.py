"""The visual design in a real headless Chromium: avatars that fail, colours, header, footer, layout stability.

The demo company served on 127.0.0.1, each page in a fresh phone context sealed off the network (tests/browser.py).
"""

from __future__ import annotations

import re
import struct
import time
import zlib

import pytest
from playwright.sync_api import expect

from tests.browser import PATIENCE, PHONE, contrast, fits, widths
from tests.test_browser import new_page, site  # noqa: F401  (fixtures)

PAGES = ["/", "/offices/lyon", "/offices", "/login", "/offline", "/posts/1"]

# Load every image now (a lazy one made eager starts at once, wherever it is: scrolling to it left the start to the
# browser's timing, and under load a lazy image could stay unrequested) and wait until each has loaded or failed;
# feed.js replaces a failed one, so the list is taken once, before, and settles on either event or on removal.
# The 60 s guard only turns a hang into a failure further on.
SETTLE_IMAGES_JS = """async () => {
  const settled = (img) => new Promise(done => {
    if (img.complete || !img.isConnected) return done();
    img.addEventListener('load', done, {once: true});
    img.addEventListener('error', () => setTimeout(done, 0), {once: true});
    setTimeout(done, 60000);
  });
  const images = [...document.images];
  for (const img of images) img.loading = 'eager';
  for (const img of images) {
    if (img.isConnected) img.scrollIntoView();
    await settled(img);
  }
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  window.scrollTo(0, 0);
}"""

# Images a reader would see as broken: in the page, rendered, yet with no picture.
BROKEN_JS = """() => [...document.images].filter(i => i.complete && i.naturalWidth === 0
    && i.checkVisibility({opacityProperty: true, visibilityProperty: true})).map(i => i.src)"""

# The colour actually behind an element: the first ancestor (itself included) with an opaque background.
BACKGROUND_JS = """(e) => {
  for (let n = e; n; n = n.parentElement) {
    const c = getComputedStyle(n).backgroundColor;
    if (c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return c;
  }
  return getComputedStyle(document.body).backgroundColor;
}"""


def png(width: int, height: int) -> bytes:
    """A plain grey PNG of width x height pixels: a picture of the size the page says it has."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = (b"\x00" + b"\x9c" * width) * height
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


NEAR_VIEW_SETTLED_JS = """() => [...document.images].filter(i => {
  const r = i.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight;  // in view: surely asked for
}).every(i => i.complete)"""


def until(page, condition, what: str) -> None:
    """Poll condition (letting Playwright deliver route events between polls) until true, at most PATIENCE."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"waited {PATIENCE} s for {what}"
        page.wait_for_timeout(50)


def older_lyon_page(page, wait_until: str = "load") -> None:
    """Open the Lyon feed's second page: the demo's photos, video, quote and repost are there."""
    page.goto("/offices/lyon")
    page.goto("/offices/lyon" + page.locator(".pager a[rel=next]").get_attribute("href"), wait_until=wait_until)


def fail_remote_images(page, pattern: str) -> None:
    """Make the images whose URL matches fail as an unreachable host does (asked before the context's seal)."""
    page.context.route(pattern, lambda route: route.abort("internetdisconnected"))


def test_failed_avatars_show_initials_and_no_broken_image(new_page):
    page = new_page()
    fail_remote_images(page, "**/media/avatar/**")
    page.goto("/")
    page.evaluate(SETTLE_IMAGES_JS)
    # A failed image is `complete` before its error event runs feed.js's handler: wait for the handler.
    page.wait_for_function("() => !document.querySelector('article .avatar img')")
    avatars = page.evaluate("""() => [...document.querySelectorAll('article .avatar')].map(a => {
        const r = a.getBoundingClientRect(), s = getComputedStyle(a);
        return {text: a.textContent.trim(), img: !!a.querySelector('img'), w: r.width, h: r.height,
                colour: s.color, background: s.backgroundColor, cls: a.className};
    })""")
    assert len(avatars) >= 10, avatars
    for a in avatars:
        assert re.fullmatch(r"[A-Z0-9À-Ý?]{1,2}", a["text"]) and not a["img"], a
        assert a["w"] == a["h"] == 40, a
        assert contrast(a["colour"], a["background"]) >= 4.5, a
    assert len({a["cls"] for a in avatars}) > 1, "every account has the same colour"
    assert len({a["text"] for a in avatars}) > 1, "every account has the same initials"
    assert page.evaluate(BROKEN_JS) == []


def test_failed_photos_keep_their_box_and_description(new_page):
    page = new_page()
    held = []  # photo requests, held until the boxes are measured, then failed
    page.context.route("**/media/photo/**", lambda route: held.append(route))
    older_lyon_page(page, wait_until="domcontentloaded")  # held photos hold the load event back
    wanted = page.evaluate("""() => [...document.querySelectorAll('.media img')].map(i => ({
        alt: i.alt, ratio: i.getAttribute('width') / i.getAttribute('height'), width: i.getBoundingClientRect().width,
        height: i.getBoundingClientRect().height}))""")
    assert wanted, "the Lyon demo feed should show photos"
    page.context.unroute("**/media/photo/**")
    fail_remote_images(page, "**/media/photo/**")
    for route in held:
        route.abort("internetdisconnected")
    page.evaluate(SETTLE_IMAGES_JS)
    # A failed image is `complete` before its error event runs feed.js's handler: wait for the handlers.
    page.wait_for_function("n => document.querySelectorAll('.media .gone').length >= n", arg=len(wanted))
    assert page.evaluate(BROKEN_JS) == []
    boxes = page.evaluate("""() => [...document.querySelectorAll('.media .gone')].map(b => ({
        alt: b.getAttribute('aria-label'), role: b.getAttribute('role'), width: b.getBoundingClientRect().width,
        height: b.getBoundingClientRect().height}))""")
    assert len(boxes) == len(wanted), (boxes, wanted)
    for want, box in zip(wanted, boxes):
        assert box["role"] == "img" and box["alt"] == want["alt"], (want, box)
        # The same size as the photo's reserved box: nothing below it moves.
        assert abs(box["width"] - want["width"]) < 1 and abs(box["height"] - want["height"]) < 1, (want, box)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_colours_meet_wcag_aa(new_page, scheme):
    page = new_page(color_scheme=scheme)
    checked = []
    selectors = {
        "/": [".brand a", ".logo", ".top nav a", ".top nav .office", "h1", ".scope", ".scope a", "article .name",
              "article .un", "article .when", "article .tx", "article .pos", ".acts a", ".pager a",
              ".feeds p", ".feeds a", ".langs a", ".langs span", ".thread .ph2"],
        "older": ["article .ctx", ".q .name", ".q .tx", ".q time", ".end"],
        "/offices": ["legend", "label", "button"],
        "/login": [".field label", "input[type=text]", "button"],
        "/offline": [".offline h1", ".offline p", ".offline a"],
    }
    for url, sels in selectors.items():
        older_lyon_page(page) if url == "older" else page.goto(url)
        for sel in sels:
            items = page.locator(sel)
            assert items.count(), (url, sel)
            for i in range(min(items.count(), 5)):
                element = items.nth(i)
                fg = element.evaluate("e => getComputedStyle(e).color")
                bg = element.evaluate(BACKGROUND_JS)
                ratio = contrast(fg, bg)
                checked.append((url, sel, fg, bg, round(ratio, 2)))
                assert ratio >= 4.5, (url, sel, fg, bg, ratio)
    assert len(checked) > 50


def test_dark_scheme_changes_the_cards_too(new_page):
    colours = {}
    for scheme in ("light", "dark"):
        page = new_page(color_scheme=scheme)
        page.goto("/")
        colours[scheme] = page.evaluate("""() => ['body', 'article.post', '.top', '.logo'].map(
            s => getComputedStyle(document.querySelector(s)).backgroundColor)""")
    assert all(a != b for a, b in zip(colours["light"], colours["dark"])), colours


def test_no_page_scrolls_sideways_on_a_phone(new_page, site):
    page = new_page()
    width = PHONE["viewport"]["width"]
    page.goto("/")
    thread = page.locator("article.post:has(ol.thread) .ph .at").first.get_attribute("href")
    for lang in ("en", "fr"):
        page.goto(f"/language/{lang}?next=/")
        for url in PAGES + [thread]:
            page.goto(url)
            assert page.locator("html").get_attribute("lang") == lang
            assert fits(page, width), (url, lang, widths(page))


@pytest.mark.parametrize(("url", "office"), [("/", "Company-wide only"), ("/offices/lyon", "Lyon Saint-Priest Hub"),
                                             ("/offices/columbus", "Columbus Depot (Ohio)")])
def test_header_names_the_site_and_the_office_shown(new_page, url, office):
    page = new_page()
    page.goto(url)
    expect(page.locator("header.top .brand").get_by_role("link", name="Staff news", exact=True)).to_be_visible()
    switcher = page.locator("header.top nav .office")
    expect(switcher).to_contain_text(office)
    assert switcher.get_attribute("href") == "/offices"
    expect(page.get_by_role("link", name=re.compile(f"^Office: {re.escape(office)}"))).to_be_visible()


def test_header_names_the_chosen_office_on_the_front_page(new_page):
    page = new_page()
    page.goto("/offices")
    page.get_by_label("Lyon Saint-Priest Hub").check()
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/$"))
    expect(page.locator("header.top nav .office")).to_have_text("Lyon Saint-Priest Hub")


def test_site_name_comes_from_the_setting(new_page, site):
    site.app.config["FEEDAPP_SITE_NAME"] = "Harbor & Pine news"
    page = new_page()
    page.goto("/login")
    brand = page.locator("header.top .brand")
    expect(brand.get_by_role("link", name="Harbor & Pine news", exact=True)).to_be_visible()
    expect(brand.locator(".logo")).to_have_text("HN")


@pytest.mark.parametrize(("url", "expected"), [
    ("/offices/lyon", ["/feed.rss", "/offices/lyon/feed.rss", "/offices/lyon/feed.atom", "/offices/lyon/feed.json",
                       "/feeds.opml"]),
    ("/", ["/feed.rss", "/feed.atom", "/feed.json", "/feeds.opml"]),
    ("/login", ["/feed.rss", "/feeds.opml"]),
])
def test_footer_links_the_feeds_and_each_answers(new_page, url, expected):
    page = new_page()
    page.goto(url)
    hrefs = page.locator("footer .feeds a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert hrefs == expected
    for href in hrefs:
        response = page.request.get(href)
        kind = response.headers["content-type"]
        assert response.status == 200 and re.search(r"xml|json|opml", kind), (href, response.status, kind)
        body = response.text().lstrip()
        assert body.startswith("<?xml") or body.startswith("{"), (href, body[:80])
    langs = page.locator("footer .langs")
    expect(langs.get_by_role("link", name="Français")).to_be_visible()


def test_photos_in_a_grid_keep_their_own_shape(new_page):
    """Two photos side by side (one landscape, one portrait) are shown whole: each box has its photo's ratio."""
    page = new_page()
    older_lyon_page(page)
    page.evaluate(SETTLE_IMAGES_JS)
    photos = page.evaluate("""() => [...document.querySelectorAll('.media.n2 img, .media.n3 img, .media.n4 img')]
        .map(i => ({ratio: i.getAttribute('width') / i.getAttribute('height'), fit: getComputedStyle(i).objectFit,
                    w: i.getBoundingClientRect().width, h: i.getBoundingClientRect().height, loaded: i.naturalWidth}))""")
    assert len(photos) >= 2, "the Lyon demo feed has a post with two photos"
    assert len({round(p["ratio"], 2) for p in photos}) > 1, photos  # a landscape and a portrait one
    for photo in photos:
        assert photo["loaded"] > 0 and photo["fit"] != "cover", photo
        assert abs(photo["w"] / photo["h"] - photo["ratio"]) < 0.02, photo


def test_no_layout_shift_when_images_arrive_late(new_page):
    """Photos, video posters and avatars answered seconds after the page shows (avatars failing): nothing moves.

    Each picture arrives at the size its width and height attributes state, as a real one does (a picture whose
    real shape differs from what X said would take its own shape once loaded: that is the media route's to avoid).
    """
    page = new_page()
    held = []
    page.goto("/offices/lyon")
    href = "/offices/lyon" + page.locator(".pager a[rel=next]").get_attribute("href")
    page.context.route("**/media/**", lambda route: held.append(route))  # answered later, below
    page.goto(href, wait_until="domcontentloaded")
    sizes = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('img[width], video[width]')]
        .map(e => [e.poster || e.src, [+e.getAttribute('width'), +e.getAttribute('height')]]))""")
    page.evaluate("""() => { window.__shifts = []; new PerformanceObserver(list => {
        for (const e of list.getEntries()) if (!e.hadRecentInput) window.__shifts.push(
            [e.value, e.sources.map(s => s.node && (s.node.className || s.node.nodeName))]);
    }).observe({type: 'layout-shift', buffered: true}); }""")
    answered = 0

    def answer_held() -> None:
        nonlocal answered
        while held:
            route = held.pop()
            answered += 1
            if "/media/avatar/" in route.request.url and answered % 2:
                route.abort("internetdisconnected")  # some avatars fail: the initials stay, nothing moves
            else:
                route.fulfill(status=200, content_type="image/png", body=png(*sizes.get(route.request.url, (48, 48))))

    at_end = False
    while not at_end:  # lazy images are asked for as the page scrolls to them
        # Until every picture in view has arrived (answering each as the page asks for it).
        until(page, lambda: answer_held() or page.evaluate(NEAR_VIEW_SETTLED_JS), "the pictures in view")
        at_end = page.evaluate("""() => { const end = scrollY + innerHeight >= document.documentElement.scrollHeight - 1;
            window.scrollBy(0, innerHeight); return end }""")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    assert answered > 5 and page.locator(".media img").count() > 0
    assert page.evaluate("() => window.__shifts") == []


TARGETS_JS = """() => [...document.querySelectorAll(
    'header.top a, .foot a, .pager a, .acts a, button, .links a, .field input:not([type=checkbox]), fieldset label, .check label')]
  .filter(e => e.checkVisibility())
  .map(e => { const r = e.getBoundingClientRect(); return {text: e.textContent.trim().slice(0, 30), w: r.width,
              h: r.height}; })"""


@pytest.mark.parametrize("url", ["/", "/offices/lyon", "/offices", "/login", "/offline"])
def test_tap_targets_are_at_least_44_px(new_page, url):
    """Controls and navigation links (not links inside a sentence, which WCAG 2.5.8 exempts) are 44 px or more."""
    page = new_page()
    page.goto(url)
    targets = page.evaluate(TARGETS_JS)
    assert targets
    small = [t for t in targets if t["h"] < 44 or t["w"] < 44]
    assert small == [], small
