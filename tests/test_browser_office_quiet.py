"""An office's time zone and quiet hours set from a phone, in light and dark mode (real headless Chromium)."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from feedapp.db import sessions
from feedapp.models import Office
from tests.browser import PHONE, PageOpener, demo_app, fits, serve, watch
from tests.test_browser_auth import _user, sign_in


@pytest.fixture
def site(tmp_path, sqlite_template):
    app = demo_app(tmp_path, sqlite_template)
    with sessions(app)() as s:
        _user(s, "harbourmaster", admin=True)
        s.commit()
        lyon = s.scalar(select(Office.id).where(Office.slug == "lyon"))
    with serve(app) as url:
        yield app, url, lyon
    sessions(app).kw["bind"].dispose()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_quiet_hours_are_set_from_a_phone(chromium, site, scheme, tmp_path):
    app, url, lyon = site
    opener = PageOpener(chromium, url, [])
    try:
        page = opener(color_scheme=scheme)
        errors = watch(page)
        sign_in(page, "harbourmaster")
        page.goto(f"/admin/offices/{lyon}")
        page.get_by_label("Time zone").fill("Europe/Paris")
        page.get_by_label("Quiet hours start").fill("21:00")
        page.get_by_label("Quiet hours end").fill("07:00")
        assert fits(page, PHONE["viewport"]["width"])
        shots = os.environ.get("FEEDAPP_SCREENSHOTS")  # set it to look at the page
        if shots:
            page.screenshot(path=os.path.join(shots, f"office-quiet-{scheme}.png"), full_page=True)
        page.get_by_role("button", name="Save office").click()
        expect(page.get_by_text(re.compile(r"^Office .+ saved\.$"))).to_be_visible()
        expect(page.get_by_label("Time zone")).to_have_value("Europe/Paris")
        expect(page.get_by_label("Quiet hours end")).to_have_value("07:00")
        with sessions(app)() as s:
            office = s.get(Office, lyon)
            assert (office.time_zone, office.quiet_start, office.quiet_end) == ("Europe/Paris", "21:00", "07:00")
        assert errors == []
    finally:
        opener.close()
