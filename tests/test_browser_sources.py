"""The console's sources page in a real headless Chromium: add an account, let the poller serve the request,
see it resolve to the account's name; at 390 px the page does not scroll sideways."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import expect
from werkzeug.security import generate_password_hash

from feedapp import accounts, create_app
from feedapp.db import sessions
from tests.browser import PageOpener, fits, serve, widths
from tests.conftest import x_config

PASSWORD = "tugboat at dawn 9"


@pytest.fixture
def site(tmp_path, sqlite_template, fake_x):
    """An app on its own SQLite copy, pointed at the fake X, with one company-wide editor; served."""
    db = tmp_path / "browser.db"
    shutil.copy(sqlite_template, db)
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "FEEDAPP_STATE_TTL": 0,
                      "FEEDAPP_DATABASE_URL": f"sqlite:///{db}", "FEEDAPP_MEDIA_PROXY": False, **x_config(fake_x)})
    with sessions(app)() as s:
        user = accounts.create_user(s, "comms", "Comms", None, "editor")
        user.password_hash = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1")
        s.commit()
    with serve(app) as url:
        yield app, url
    sessions(app).kw["bind"].dispose()


def test_add_a_source_and_see_it_resolve_after_a_poll(chromium, site, fake_x):
    app, url = site
    fake_x.add_user("lyon_hub", name="Lyon Hub")
    fake_x.post("lyon_hub", "Welcome to the Lyon hub feed")
    opener = PageOpener(chromium, url, [])
    try:
        page = opener(viewport={"width": 390, "height": 844})
        page.goto("/login")
        page.get_by_label("Username").fill("comms")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.goto("/admin/sources")
        page.get_by_label("X accounts").fill("https://x.com/lyon_hub")
        page.get_by_label("Leave out reposts").check()
        page.get_by_role("button", name="Add", exact=True).click()
        requests = page.locator("#requests")
        expect(requests).to_contain_text("Add @lyon_hub: pending")
        assert fits(page, 390), widths(page)

        result = app.test_cli_runner().invoke(args=["poll"])  # one cycle of the poller, in this process
        assert result.exit_code == 0, result.output

        # static/feed.js re-reads the list while a request is pending: no reload needed.
        expect(requests.locator(".req.done")).to_contain_text("Lyon Hub")
        expect(requests.locator(".req.done .avatar")).to_be_visible()
        health = page.locator("#health")
        expect(health).to_contain_text("@lyon_hub")
        expect(health).to_contain_text("no reposts")
        expect(health).to_contain_text("posts in 7 days: 1")
        assert fits(page, 390), widths(page)
        page.goto(page.locator("#health a").first.get_attribute("href"))
        expect(page.get_by_role("button", name="Check now")).to_be_visible()
        assert fits(page, 390), widths(page)
    finally:
        opener.close()
