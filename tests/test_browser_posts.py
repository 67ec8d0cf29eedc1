"""A post's own page and threads on the feed, in a real headless Chromium at phone size.

The demo company's 3-part thread by @HarborPineNews, served over HTTP on 127.0.0.1; see
tests/browser.py for how the browser is kept off the network.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from feedapp.db import sessions
from feedapp.ingest.store import store_posts
from feedapp.models import Post, Source
from feedapp.xapi.types import XPost, XUser
from tests.browser import PHONE, PageOpener, demo_app, fits, load_all_images, serve, watch, widths

CARDS_JS = "(root) => [...document.querySelectorAll(root)].map(a => a.id)"


@pytest.fixture
def site(tmp_path, sqlite_template):
    """The demo app on its own SQLite copy, served on 127.0.0.1, and the ids of its thread, first post first."""
    app = demo_app(tmp_path, sqlite_template)
    with sessions(app)() as s:
        news = s.scalars(select(Source).where(Source.username == "HarborPineNews")).one()
        head = s.scalar(select(Post.id).where(Post.source_id == news.id, Post.text.startswith("What changes")))
        parts = list(s.scalars(select(Post.id).where(Post.thread_id == head).order_by(Post.id)))
    assert len(parts) == 2
    with serve(app) as url:
        yield app, url, [head, *parts]
    sessions(app).kw["bind"].dispose()


@pytest.fixture
def new_page(chromium, site):
    opener = PageOpener(chromium, site[1], [])
    yield opener
    opener.close()


def test_a_post_page_shows_the_thread_in_order_and_announces_each_part(new_page, site):
    _, _, thread = site
    page = new_page()
    problems = watch(page)
    page.goto(f"/posts/{thread[1]}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Thread by Harbor & Pine News")
    assert page.evaluate(CARDS_JS, "article.post, article.part") == [f"p{i}" for i in thread]
    # Screen readers get "Part 2 of 3", never the visual "2/3" (aria-hidden).
    for position in (2, 3):
        heading = page.get_by_role("heading", name=re.compile(rf"^Part {position} of 3\b"))
        expect(heading).to_be_visible()
        expect(heading.get_by_role("link")).to_have_attribute("href", f"/posts/{thread[position - 1]}")
    expect(page.locator(f"#p{thread[1]}")).to_have_attribute("aria-current", "true")
    replies = page.get_by_role("link", name=re.compile(r"^Reply or like on X"))
    assert [replies.nth(i).get_attribute("href") for i in range(3)] == [
        f"https://x.com/HarborPineNews/status/{i}" for i in thread]
    assert page.get_by_text("Replying to").count() == 0
    canonical = page.locator('link[rel="canonical"]').get_attribute("href")
    assert canonical == f"{site[1]}/posts/{thread[1]}"
    assert page.locator('meta[property="og:url"]').get_attribute("content") == canonical
    assert fits(page, PHONE["viewport"]["width"]), widths(page)
    load_all_images(page)
    assert problems == []


def test_the_feed_folds_the_thread_and_its_time_opens_the_post_page(new_page, site):
    _, _, thread = site
    page = new_page()
    problems = watch(page)
    page.goto("/")
    top = page.evaluate(CARDS_JS, "main > article.post")
    assert f"p{thread[0]}" in top and f"p{thread[1]}" not in top and f"p{thread[2]}" not in top
    head = page.locator(f"#p{thread[0]}")
    assert head.evaluate("(a) => [...a.querySelectorAll('article.part')].map(p => p.id)") == [
        f"p{thread[1]}", f"p{thread[2]}"]
    expect(head.get_by_role("heading", name=re.compile(r"^Part 3 of 3\b"))).to_be_visible()
    assert page.get_by_text("Replying to @HarborPineNews").count() == 0
    head.locator(".ph a.at").click()  # the first post's time
    page.wait_for_url(re.compile(rf"/posts/{thread[0]}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Thread by Harbor & Pine News")
    assert problems == []


def test_a_part_arriving_after_its_thread_scrolled_away_leads_back_to_it(new_page, site):
    app, _, thread = site
    now = datetime.now(timezone.utc)
    with sessions(app)() as s:
        news = s.scalars(select(Source).where(Source.username == "HarborPineNews")).one()
        author = XUser(id=news.x_id, username="HarborPineNews", name="Harbor & Pine News")
        fillers = [XPost(id=str(2990000000000000000 + n), author=author, text=f"Depot note {n}", links=(), media=(),
                         created_at=now - timedelta(minutes=30 - n)) for n in range(20)]
        part = XPost(id="2990000000000000100", author=author, text="4/4: one more thing: bring gloves.", links=(),
                     media=(), created_at=now - timedelta(minutes=1), reply_to_id=str(thread[-1]),
                     reply_to_user_id=news.x_id, reply_to_username="HarborPineNews")
        store_posts(s, news, [*fillers, part])
        s.commit()
    page = new_page()
    page.goto("/")
    continuation = page.get_by_role("link", name="Thread continues: part 4 of 4")
    expect(continuation).to_be_visible()
    assert page.locator(f"#p{thread[0]}").count() == 0  # the first post is on an older page
    continuation.click()
    page.wait_for_url(re.compile(rf"/posts/{thread[0]}#p2990000000000000100$"))
    expect(page.locator("#p2990000000000000100")).to_be_in_viewport()
    expect(page.get_by_role("heading", name=re.compile(r"^Part 4 of 4\b"))).to_be_visible()
