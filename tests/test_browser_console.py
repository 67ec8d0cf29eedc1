"""The console's post moderation in a real headless Chromium at phone size: hide, pin with an end date,
an office editor kept to their office, and a reader's saved pages losing a hidden post.

Like tests/test_browser_auth.py: Debian's Chromium driven by Playwright, the demo company on its own
SQLite copy served on 127.0.0.1, every context sealed off the network.
"""

from __future__ import annotations

from datetime import date, timedelta

import feedparser
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from feedapp.db import sessions
from feedapp.models import Pin, Post, Source
from tests.browser import PHONE, PageOpener, demo_app, fits, serve, watch
from tests.test_browser_auth import PASSWORD, _user, sign_in
from tests.test_pwa import open_saved, run, until, wait_for_worker


@pytest.fixture
def site(tmp_path, sqlite_template):
    """Demo data, an admin and a Lyon editor; served."""
    app = demo_app(tmp_path, sqlite_template)
    with sessions(app)() as s:
        _user(s, "harbourmaster", admin=True)
        lyon_editor = _user(s, "lyoneditor", office="lyon")
        lyon_editor.role = "editor"
        s.commit()
    with serve(app) as url:
        yield app, url
    sessions(app).kw["bind"].dispose()


@pytest.fixture
def new_page(chromium, site):
    opener = PageOpener(chromium, site[1], [])
    yield opener
    opener.close()


def newest(app, username: str) -> int:
    with sessions(app)() as s:
        return s.scalar(select(Post.id).join(Source).where(Source.username == username, Post.repost_of_id.is_(None),
                                                            Post.reply_to_id.is_(None)).order_by(Post.id.desc()))


def test_an_editor_hides_a_post_from_a_phone_and_it_leaves_the_page_and_the_feed(new_page, site):
    app, _ = site
    post_id = newest(app, "HarborPineNews")
    page = new_page()
    errors = watch(page)
    sign_in(page, "harbourmaster")
    page.goto("/")
    expect(page.locator(f"#p{post_id}")).to_be_visible()
    page.goto("/admin/posts")
    assert fits(page, PHONE["viewport"]["width"])
    card = page.locator(f"article.mod#p{post_id}")
    card.get_by_text("Hide…").click()
    card.get_by_label("Reason (optional, kept in the audit log)").fill("Wrong date in the post")
    card.get_by_role("button", name="Hide from every page and feed").click()
    expect(page.get_by_text("Post hidden everywhere.")).to_be_visible()
    page.goto("/")
    expect(page.locator("article.post").first).to_be_visible()
    assert page.locator(f"#p{post_id}").count() == 0
    feed = feedparser.parse(page.request.get("/feed.atom").body())
    assert feed.entries and not any(e.id.endswith(str(post_id)) for e in feed.entries)
    assert page.request.get(f"/posts/{post_id}").status == 404
    page.goto("/admin/posts?state=hidden")
    expect(page.locator(f"article.mod#p{post_id}")).to_contain_text("Reason: Wrong date in the post")
    page.locator(f"article.mod#p{post_id}").get_by_role("button", name="Show again").click()
    page.goto("/")
    expect(page.locator(f"#p{post_id}")).to_be_visible()
    assert errors == []


def test_a_pin_with_an_end_date_set_in_the_console_heads_the_office_page(new_page, site):
    app, _ = site
    post_id = newest(app, "HPL_Lyon")
    page = new_page()
    sign_in(page, "lyoneditor")
    page.goto("/admin/posts")
    card = page.locator(f"article.mod#p{post_id}")
    card.get_by_text("Pin…").click()
    assert card.get_by_label("Pin on").locator("option").all_text_contents() == ["Lyon Saint-Priest Hub"]  # nothing else is theirs
    end = date.today() + timedelta(days=3)
    card.get_by_label("Until (optional)").fill(end.isoformat())
    card.get_by_role("button", name="Pin", exact=True).click()
    expect(page.get_by_text("Post pinned.")).to_be_visible()
    page.goto("/offices/lyon")
    first = page.locator("article.post").first
    expect(first).to_have_attribute("id", f"p{post_id}")
    expect(first.locator(".bpin")).to_be_visible()
    with sessions(app)() as s:
        (pin,) = s.scalars(select(Pin)).all()
        assert pin.ends_at.date() == end + timedelta(days=1) and pin.pinned_by == "lyoneditor"


def test_an_office_editor_sees_only_their_office_and_a_forged_form_is_refused(new_page, site):
    app, _ = site
    company = newest(app, "HarborPineNews")
    page = new_page()
    sign_in(page, "lyoneditor")
    page.goto("/admin/posts")
    expect(page.locator("article.mod").first).to_be_visible()
    assert page.locator(f"article.mod#p{company}").count() == 0
    # The Lyon post's own hide form, re-aimed at a company post: the server refuses it.
    card = page.locator("article.mod").first
    card.locator("summary", has_text="Hide…").click()
    form = card.locator("form[action$='/hide']")
    form.evaluate("(f, id) => f.action = '/admin/posts/' + id + '/hide'", str(company))
    with page.expect_response(lambda r: r.url.endswith(f"/{company}/hide")) as answer:
        form.locator("button").click()
    assert answer.value.status == 403
    expect(page.get_by_text("That is outside what your account may change.")).to_be_visible()
    with sessions(app)() as s:
        assert s.get(Post, company).hidden_at is None
    assert page.request.get("/admin/users").status == 403


SAVED_WITH_POST_JS = """async (id) => { for (const name of ['pages-public', 'pages-staff']) {
    const c = await caches.open(name);
    for (const k of await c.keys()) {
      if (k.url.endsWith('/posts/' + id)) return true;
      if ((await (await c.match(k)).text()).includes('id="p' + id + '"')) return true;
    } }
    return false; }"""


def test_a_readers_saved_pages_drop_a_hidden_post_at_the_next_visit(new_page, site):
    app, _ = site
    post_id = newest(app, "HarborPineSafe")
    page = new_page(service_workers="allow")
    page.goto("/")
    wait_for_worker(page)
    open_saved(page, "/")
    open_saved(page, f"/posts/{post_id}")
    assert run(page, SAVED_WITH_POST_JS, str(post_id))
    admin = new_page()
    sign_in(admin, "harbourmaster")
    admin.goto("/admin/posts")
    card = admin.locator(f"article.mod#p{post_id}")
    card.get_by_text("Hide…").click()
    card.get_by_role("button", name="Hide from every page and feed").click()
    expect(admin.get_by_text("Post hidden everywhere.")).to_be_visible()
    page.goto("/offices")  # any visit online: the worker learns what was hidden
    until(page, f"async () => !(await ({SAVED_WITH_POST_JS})('{post_id}'))", what="saved pages without the post")


def test_the_console_works_from_the_keyboard_alone(new_page, site):
    """Tab to a post's "Hide…", open it, type a reason, submit: no mouse, and the focus is always visible."""
    app, _ = site
    page = new_page()
    sign_in(page, "harbourmaster")
    page.goto("/admin/posts")
    first = page.locator("article.mod").first
    post_id = first.get_attribute("id")[1:]
    for _ in range(80):  # the header, the menu, the tabs, then the first post's controls
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => { const e = document.activeElement;
            return {text: e.textContent.trim(), visible: getComputedStyle(e).outlineStyle !== 'none'
                    || getComputedStyle(e).boxShadow !== 'none'} }""")
        assert focused["visible"], focused  # :focus-visible draws an outline on every control
        if focused["text"] == "Hide…":
            break
    else:
        raise AssertionError("Tab never reached the first post's Hide… control")
    page.keyboard.press("Enter")  # opens the <details>
    page.keyboard.press("Tab")
    page.keyboard.type("Posted twice")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Hide from every page and feed"
    page.keyboard.press("Enter")
    expect(page.get_by_text("Post hidden everywhere.")).to_be_visible()
    with sessions(app)() as s:
        assert s.get(Post, int(post_id)).hidden_reason == "Posted twice"
