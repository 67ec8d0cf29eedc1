"""The survey in a real headless Chromium at phone size (390 px): an editor starts it in the console, an
anonymous reader answers from the card with one tap, the card stays hidden on the cached page afterwards,
and the console shows the results in light and dark.

Like tests/test_browser_console.py: Debian's Chromium driven by Playwright, the demo company on its own
SQLite copy served on 127.0.0.1, every context sealed off the network.
"""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from feedapp.db import sessions
from feedapp.models import Survey, SurveyTally
from tests.browser import PageOpener, demo_app, fits, serve, watch
from tests.test_browser_auth import _user, sign_in
from tests.test_pwa import wait_for_worker

PHONE_WIDTH = 390
SHOTS = os.environ.get("FEEDAPP_SCREENSHOTS")  # a folder: save screenshots there to look at them


@pytest.fixture
def site(tmp_path, sqlite_template):
    """Demo data and a company-wide editor; served."""
    app = demo_app(tmp_path, sqlite_template)
    with sessions(app)() as s:
        _user(s, "comms").role = "editor"
        s.commit()
    with serve(app) as url:
        yield app, url
    sessions(app).kw["bind"].dispose()


@pytest.fixture
def new_page(chromium, site):
    opener = PageOpener(chromium, site[1], [])
    yield opener
    opener.close()


def shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def counts(app) -> list[int]:
    with sessions(app)() as s:
        return list(s.scalars(select(SurveyTally.count).order_by(SurveyTally.option)))


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_an_editor_starts_a_survey_and_a_reader_answers_with_one_tap(new_page, site, scheme):
    app, _ = site
    size = {"viewport": {"width": PHONE_WIDTH, "height": 844}, "color_scheme": scheme}
    editor = new_page(**size)
    problems = watch(editor)
    sign_in(editor, "comms")
    editor.goto("/admin/survey")
    editor.get_by_label("Question").fill("Would you follow one account for all company news?")
    editor.get_by_label("Answer 1", exact=True).fill("Yes")
    editor.get_by_label("Answer 2", exact=True).fill("No")
    editor.get_by_label("Answer 3", exact=True).fill("Not sure")
    assert fits(editor, PHONE_WIDTH)
    editor.get_by_role("button", name="Start survey").click()
    expect(editor.get_by_text("Survey started")).to_be_visible()
    expect(editor.get_by_text("Fewer than 5 answers so far")).to_be_visible()

    reader = new_page(**size)
    problems += watch(reader)
    reader.goto("/")
    # The worker's install fetches the offline pages with the reader's cookies: it could take the
    # thank-you message (a one-time flash) if it ran while the answer's redirect is followed.
    wait_for_worker(reader)
    card = reader.locator("section.survey")
    expect(card).to_be_visible()
    assert fits(reader, PHONE_WIDTH)
    shot(reader, f"feed-card-{scheme}")
    card.get_by_role("button", name="Not sure").click()  # survey.js fetches the token: no confirm step
    expect(reader.get_by_text("Thank you: your answer is counted.")).to_be_visible()
    expect(reader.locator("section.survey")).to_be_hidden()  # by the survey_done cookie
    assert counts(app) == [0, 0, 1]
    reader.goto("/")  # the shared cached page still holds the card: the cookie hides it
    expect(reader.locator("h1")).to_be_visible()
    expect(reader.locator("section.survey")).to_be_hidden()

    for option in (0, 0, 1, 2):  # four more readers, each on their own phone
        other = new_page(**size)
        other.goto("/")
        wait_for_worker(other)
        other.locator("section.survey button").nth(option).click()
        expect(other.locator(".flash")).to_contain_text("Thank you")
    assert counts(app) == [2, 1, 2]
    editor.goto("/admin/survey")
    expect(editor.locator("meter")).to_have_count(3)
    assert fits(editor, PHONE_WIDTH)
    shot(editor, f"console-results-{scheme}")
    editor.get_by_role("button", name="Close survey").click()
    expect(editor.get_by_text("Survey closed.")).to_be_visible()
    with sessions(app)() as s:
        assert s.scalar(select(Survey.closed_at)) is not None
    assert problems == []
