"""A bidi override in a post stays inside its element: laid out in a real headless Chromium.

The posts are stored as an old poller stored them, without the closers normalization now
adds, so only the page's isolation (<bdi>, dir="auto") stands between the override and
the layout around it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from feedapp.db import sessions
from feedapp.ingest.store import store_posts
from feedapp.models import Source
from feedapp.xapi.types import XPost, XQuotedPost, XUser
from tests.browser import PageOpener, demo_app, serve, watch

RLO = "\u202e"
# Where each part of a post card sits, relative to its article, and how user text is isolated.
LAYOUT_JS = """(id) => {
  const article = document.getElementById(id);
  const box = article.getBoundingClientRect();
  const place = (selector) => {
    const r = article.querySelector(selector).getBoundingClientRect();
    return {left: r.left - box.left, right: r.right - box.left, top: r.top - box.top, bottom: r.bottom - box.top};
  };
  const parts = {name: '.ph .name', handle: '.ph .un', time: '.ph .when', reply: '.ctx', text: '.tx',
                 quoteName: '.q .name', quoteHandle: '.q .un', quoteText: '.q .tx', acts: '.acts a'};
  const out = {};
  for (const [key, selector] of Object.entries(parts)) out[key] = place(selector);
  out.isolation = [...article.querySelectorAll('.name, .un, .tx, .ctx bdi')]
    .map(e => getComputedStyle(e).unicodeBidi);
  return out;
}"""


@pytest.fixture
def site(tmp_path, sqlite_template):
    """The demo app on its own SQLite copy, served on 127.0.0.1, with the posts below stored."""
    app = demo_app(tmp_path, sqlite_template)
    now = datetime.now(timezone.utc)
    store(app, [
        card(5, now, override=True),  # newest: the hostile post
        card(4, now, override=False, text="Next post"),  # the post after it
        card(3, now, override=False),  # the same post without any override
        card(2, now, override=False, text="Next post"),  # the post after that one
    ])
    with serve(app) as url:
        yield app, url, []
    sessions(app).kw["bind"].dispose()


def card(n: int, now: datetime, override: bool, text: str = "Driver bonus: 100 USD this month") -> XPost:
    """A reply with a quote by a local account; with override, an RLO left open in every text field."""
    rlo = RLO if override else ""
    author = XUser(id="77", username="HPL_Depot", name=f"Depot{rlo} Crew")
    quoted = XQuotedPost(id="9", author=XUser(id="78", username="HPL_Ops", name=f"Ops{rlo} Desk"),
                        text=f"Quoted{rlo} notice", links=(), media=(), created_at=None)
    return XPost(id=str(3200000000000000000 + n), author=author, text=f"{rlo}{text}", links=(), media=(),
                created_at=now - timedelta(minutes=10 - n), lang="en", reply_to_id="1", reply_to_user_id="2",
                reply_to_username=f"driver{rlo}42", quoted=quoted)


def places(layout: dict) -> dict:
    """Where each part starts (left, top) in a LAYOUT_JS result."""
    return {key: (box["left"], box["top"]) for key, box in layout.items() if key != "isolation"}


def store(app, posts: list[XPost]) -> None:
    """Store posts of the company-wide demo source through the real store path (which adds no closers)."""
    with sessions(app)() as s:
        source = s.scalars(select(Source).where(Source.username == "HarborPineNews")).one()
        store_posts(s, source, posts)
        s.commit()


def test_an_open_override_never_flips_the_layout_around_it(chromium, site):
    app, url, seals = site
    opener = PageOpener(chromium, url, seals)
    try:
        page = opener()
        problems = watch(page)
        page.goto("/")
        evil, after_evil, plain, after_plain = (
            page.evaluate(LAYOUT_JS, f"p{3200000000000000000 + n}") for n in (5, 4, 3, 2))
        assert problems == []
    finally:
        opener.close()
    for layout in (evil, plain):
        # Name, then handle, left to right, on one line; the handle right after the name.
        assert layout["name"]["right"] <= layout["handle"]["left"] + 0.5, layout
        assert layout["quoteName"]["right"] <= layout["quoteHandle"]["left"] + 0.5, layout
        assert layout["handle"]["top"] < layout["name"]["bottom"] and layout["name"]["top"] < layout["handle"]["bottom"]
        assert set(layout["isolation"]) == {"isolate"}, layout["isolation"]
    # Everything outside the overridden text sits exactly where it sits without the override.
    for key in ("time", "reply", "text", "quoteText", "acts"):
        assert evil[key]["top"] == plain[key]["top"] and evil[key]["left"] == plain[key]["left"], key
    gap = evil["handle"]["left"] - evil["name"]["right"]
    assert gap == pytest.approx(plain["handle"]["left"] - plain["name"]["right"], abs=0.5)
    # The next post is untouched (its time reads "6 minutes ago" against "8 minutes ago": the
    # same place, maybe not the same width).
    assert places(after_evil) == places(after_plain)

