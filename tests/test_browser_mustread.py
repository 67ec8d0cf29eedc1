"""Must-read posts in a real headless Chromium at phone size: an editor marks one in the console, a staff
member taps "Got it" and the section leaves their page, light and dark.

Like tests/test_browser_console.py: Debian's Chromium driven by Playwright, the demo company on its own
SQLite copy served on 127.0.0.1, every context sealed off the network.
"""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from feedapp.db import sessions
from tests.browser import PHONE, PageOpener, demo_app, fits, serve, watch
from tests.test_browser_auth import _user, sign_in
from tests.test_browser_console import newest

SHOTS = os.environ.get("FEEDAPP_SHOTS")  # a folder: write screenshots there to look at them


@pytest.fixture
def site(tmp_path, sqlite_template):
    """Demo data, an admin and a Lyon staff member; served."""
    app = demo_app(tmp_path, sqlite_template)
    with sessions(app)() as s:
        _user(s, "harbourmaster", admin=True)
        _user(s, "lyonreader", office="lyon")
        s.commit()
    with serve(app) as url:
        yield app, url
    sessions(app).kw["bind"].dispose()


@pytest.fixture
def new_page(chromium, site):
    opener = PageOpener(chromium, site[1], [])
    yield opener
    opener.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_marked_in_the_console_acknowledged_with_one_tap(new_page, site, scheme):
    app, _ = site
    post_id = newest(app, "HPL_Lyon")
    editor = new_page(color_scheme=scheme)
    errors = watch(editor)
    sign_in(editor, "harbourmaster")
    editor.goto("/admin/posts")
    card = editor.locator(f"article.mod#p{post_id}")
    card.get_by_text("Mark must-read…").click()
    card.get_by_role("button", name="Mark must-read").click()
    expect(editor.get_by_text("Marked must-read.")).to_be_visible()
    expect(card.get_by_role("button", name="End must-read")).to_be_visible()
    editor.goto("/admin/must-read")
    expect(editor.locator(f"#mr{post_id}")).to_contain_text("Push waiting for the worker")
    assert fits(editor, PHONE["viewport"]["width"])
    if SHOTS:
        editor.screenshot(path=f"{SHOTS}/admin-must-read-{scheme}.png", full_page=True)

    reader = new_page(color_scheme=scheme)
    errors += watch(reader)
    sign_in(reader, "lyonreader")
    reader.goto("/")
    section = reader.locator("section.mustread")
    expect(section.locator(f"#p{post_id} .badge.bmr")).to_have_text("Must read")
    assert fits(reader, PHONE["viewport"]["width"])
    if SHOTS:
        reader.screenshot(path=f"{SHOTS}/feed-must-read-{scheme}.png")
    section.locator(f"#p{post_id}").get_by_role("button", name="Got it").click()
    expect(reader.get_by_text("Thanks: marked as read.")).to_be_visible()
    expect(reader.locator("section.mustread")).to_have_count(0)
    expect(reader.locator(f"#p{post_id} .ack.done")).to_have_text("Got it")
    if SHOTS:
        reader.locator(f"#p{post_id}").screenshot(path=f"{SHOTS}/feed-acked-{scheme}.png")
    assert errors == []
