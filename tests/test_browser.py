"""The feed in a real headless Chromium at phone size, served over HTTP on 127.0.0.1.

One browser per module, a fresh context (cookies, cache) per page, a fresh
SQLite database with the demo data per test. See tests/browser.py for how the
browser is kept off the network.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from feedapp.db import sessions
from feedapp.xapi.types import Link
from tests.browser import (PHONE, SERVER_TIME_RE, PageOpener, Seal, contrast, demo_app, fits,
                           load_all_images, luminance, serve, store_post, watch, widths)

CARD_TIMES = ":is(.ph, .ph2) time"  # each card's own time (not a quoted post's or a reply parent's)
# Every post card, a thread's later parts (shown inside their first post's card) included: 20 a page.
ARTICLE_IDS_JS = "() => [...document.querySelectorAll('article.post, article.part')].map(a => a.id)"


@dataclass
class Site:
    """The app under test, the URL it is served at, and the network seal of every context opened on it."""

    app: object
    url: str
    seals: list[Seal]


@pytest.fixture
def site(tmp_path, sqlite_template):
    """The app with the demo data on its own SQLite copy, served on 127.0.0.1."""
    app = demo_app(tmp_path, sqlite_template)
    with serve(app) as url:
        yield Site(app, url, [])
    sessions(app).kw["bind"].dispose()


@pytest.fixture
def new_page(chromium, site):
    """Open a page in a fresh phone context (keyword options override PHONE), sealed off the network."""
    opener = PageOpener(chromium, site.url, site.seals)
    yield opener
    opener.close()


def test_posts_render_and_older_posts_leads_to_different_posts(new_page):
    page = new_page()
    page.goto("/")
    first = page.evaluate(ARTICLE_IDS_JS)
    assert len(first) == 20
    page.get_by_role("link", name="Older posts").click()
    page.wait_for_url(re.compile(r"/\?before=\d+$"))
    second = page.evaluate(ARTICLE_IDS_JS)
    assert second and not set(second) & set(first)


def test_images_have_alt_text_and_photos_reserve_their_space(new_page):
    page = new_page()
    seen = []
    for url in ("/", "/offices/lyon", "/offices/columbus"):
        page.goto(url)
        seen += page.evaluate("""() => [...document.querySelectorAll('article img')].map(i => ({
            src: i.getAttribute('src'), avatar: i.classList.contains('av'), alt: i.getAttribute('alt'),
            media: !!i.closest('.media'), width: i.getAttribute('width'), height: i.getAttribute('height'),
            loading: i.getAttribute('loading')}))""")
    avatars = [i for i in seen if i["avatar"]]
    photos = [i for i in seen if i["media"]]
    assert avatars and photos, "the demo data should show both avatars and photos"
    assert all(i["alt"] == "" for i in avatars), [i for i in avatars if i["alt"] != ""]
    others = [i for i in seen if not i["avatar"]]
    assert all(i["alt"] and i["alt"].strip() for i in others), [i for i in others if not (i["alt"] or "").strip()]
    assert all(i["width"] and i["height"] and i["loading"] == "lazy" for i in photos), photos


def test_no_console_errors_or_page_errors(new_page, site):
    page = new_page()
    problems = watch(page)
    page.goto("/")
    older = page.get_by_role("link", name="Older posts").get_attribute("href")
    for url in ("/", f"/{older}", "/offices", "/offices/lyon", "/offices/columbus"):
        page.goto(url)
        load_all_images(page)
    assert problems == []
    # The demo's pictures come from our own /media/ route: no image was asked of another host.
    stubbed = [url for seal in site.seals for url in seal.stubbed]
    assert stubbed == [], stubbed


def test_demo_pages_show_every_picture_from_our_own_origin_while_sealed(new_page, site):
    """No broken image with the browser sealed to loopback: the demo's pictures are bundled and served by /media/."""
    page = new_page()
    for url in ("/", "/offices/lyon", "/offices/columbus"):
        page.goto(url)
        load_all_images(page)  # every img, lazy ones too, has naturalWidth > 0
        images = page.evaluate("() => [...document.images].map(i => ({src: i.currentSrc, width: i.naturalWidth, "
                               "avatar: i.classList.contains('av')}))")
        assert images and all(i["src"].startswith(site.url + "/media/") for i in images), images
        assert all(i["width"] == 80 for i in images if i["avatar"]), images  # 40 CSS px at 2x
    assert [url for seal in site.seals for url in seal.stubbed + seal.blocked] == []


def test_the_media_proxys_tight_csp_lets_every_demo_picture_load(new_page, site):
    """With the proxy on, img-src is 'self' alone; every picture, the video's poster too, loads without a violation."""
    client = site.app.test_client()
    older = re.search(r'rel="next" href="([^"]+)"', client.get("/offices/lyon").get_data(as_text=True))[1]
    lyon_older = "/offices/lyon" + older.replace("&amp;", "&")
    poster = re.search(r'<video[^>]* poster="([^"]+)"', client.get(lyon_older).get_data(as_text=True))[1]
    page = new_page()
    problems = watch(page)  # Chromium reports each CSP violation as a console error
    with page.expect_response(lambda r: r.url == site.url + poster) as poster_response:
        response = page.goto(lyon_older)
    assert poster_response.value.status == 200
    assert "; img-src 'self'; media-src https://video.twimg.com;" in response.headers["content-security-policy"]
    load_all_images(page)
    assert problems == []


def test_no_horizontal_scroll_even_with_a_huge_post(new_page, site):
    page = new_page()
    width = PHONE["viewport"]["width"]
    for url in ("/", "/offices/lyon", "/offices"):
        page.goto(url)
        assert fits(page, width), (url, widths(page))

    long_url = "https://harborpine.example/" + "very-long-path-segment-" * 20 + "?token=" + "x" * 300
    long_word = "Donaudampfschifffahrtsgesellschaftskapitän" * 20
    head = f"Notice: {long_url} and {long_word} "
    text = (head + "Shift rota update for every depot. " * 800)[:25_000]
    start = text.index(long_url)
    store_post(site.app, 2900000000000000100, text,
               links=(Link(start, start + len(long_url), "url", long_url, long_url),))
    page.goto("/")
    body = page.locator("#p2900000000000000100 .tx")
    expect(body.get_by_role("link", name=long_url[:40])).to_be_visible()
    assert len(body.inner_text()) >= 24_000
    assert fits(page, width), ("long post", widths(page))


def test_the_width_check_catches_a_slightly_too_wide_element(new_page):
    """Guards the check above: on a phone, innerWidth grows to fit wide content, so it alone is not enough."""
    page = new_page()
    page.goto("/")
    page.evaluate("""() => new Promise(done => {
        const d = document.createElement('div');
        d.style.width = '500px';
        d.textContent = 'wide';
        document.querySelector('main').append(d);
        requestAnimationFrame(() => requestAnimationFrame(done));
    })""")
    assert not fits(page, PHONE["viewport"]["width"]), widths(page)


def test_hostile_post_text_shows_literally_and_never_runs(new_page, site):
    store_post(site.app, 2900000000000000200,
               '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">')
    page = new_page()
    problems = watch(page)
    page.goto("/")
    expect(page.get_by_text("<script>window.__pwned=1</script>", exact=False)).to_be_visible()
    expect(page.get_by_text('<img src=x onerror="window.__pwned=2">', exact=False)).to_be_visible()
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    assert page.locator("article img[src=x]").count() == 0
    assert problems == []


def minutes_since(when: datetime) -> int:
    """Whole minutes since `when`, rounded as the page's Intl.RelativeTimeFormat label is (Math.round)."""
    return math.floor((datetime.now(timezone.utc) - when).total_seconds() / 60 + 0.5)


def test_works_without_javascript_and_javascript_makes_times_relative(new_page, site):
    posted = store_post(site.app, 2900000000000000300, "Depot reopens at noon.")
    plain = new_page(java_script_enabled=False)
    plain.goto("/")
    assert plain.locator("article.post, article.part").count() == 20
    server_times = plain.locator(CARD_TIMES).all_inner_texts()
    assert len(server_times) == 20 and all(SERVER_TIME_RE.match(t) for t in server_times), server_times

    page = new_page()
    ages = [minutes_since(posted)]
    page.goto("/")
    times = page.locator(CARD_TIMES).all_inner_texts()
    ages.append(minutes_since(posted - timedelta(seconds=1)))  # the page may see the time cut to whole seconds
    assert len(times) == 20
    for before, after in zip(server_times, times):
        assert after != before and re.search(r"ago|yesterday|today|now|\d{4}", after), (before, after)
    # "5 minutes ago", or later on a machine slow enough to take half a minute to get here.
    assert times[0] in {f"{n} minutes ago" for n in range(ages[0], ages[1] + 1)}, (times[0], ages)


def test_chosen_office_is_remembered(new_page):
    page = new_page()
    page.goto("/")  # the company-wide front page is now in this browser's cache
    assert page.locator(".post [lang=fr]").count() == 0
    page.goto("/offices")
    page.get_by_label("Lyon Saint-Priest Hub").check()
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/$"))
    assert page.locator(".post [lang=fr]").count() > 0
    page.reload()
    assert page.locator(".post [lang=fr]").count() > 0
    page.goto("/offices")
    expect(page.get_by_label("Lyon Saint-Priest Hub")).to_be_checked()


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_colour_scheme_follows_the_system(new_page, scheme):
    page = new_page(color_scheme=scheme)
    page.goto("/")
    bg, fg = page.evaluate("() => { const s = getComputedStyle(document.body); return [s.backgroundColor, s.color] }")
    if scheme == "dark":
        assert luminance(bg) < 0.2 and luminance(fg) > 0.5, (bg, fg)
    else:
        assert luminance(bg) > 0.8 and luminance(fg) < 0.2, (bg, fg)
    assert contrast(bg, fg) >= 7, (bg, fg)


def test_first_tab_shows_the_skip_link(new_page):
    page = new_page()
    page.goto("/")
    page.keyboard.press("Tab")
    focused = page.evaluate("() => [document.activeElement.textContent, document.activeElement.getAttribute('href')]")
    assert focused == ["Skip to posts", "#main"]
    box = page.locator("a.skip").bounding_box()
    assert box and box["x"] >= 0 and box["y"] >= 0 and box["width"] > 0 and box["height"] > 0
    viewport = PHONE["viewport"]
    assert box["x"] + box["width"] <= viewport["width"] and box["y"] + box["height"] <= viewport["height"], box
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"#main$"))
