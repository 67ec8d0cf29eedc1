"""The feed pages on the demo data: scope, pagination, office choice, rendering, escaping."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from feedapp.ingest.store import store_posts
from feedapp.models import Post, Source
from feedapp.xapi.types import Link, XMedia, XPost, XQuotedPost, XUser

from .fakemedia import upstream_of


@pytest.fixture
def demo(runner):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output


def article_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<article class="post" id="p(\d+)"', html)]


def expected_ids(sessions, office_slug=None) -> list[int]:
    """Public posts of company-wide sources (plus one office's), newest first: computed independently."""
    with sessions() as s:
        ids = []
        for post in s.scalars(select(Post).order_by(Post.id.desc())):
            src = post.source
            in_scope = src.office is None or (office_slug and src.office.slug == office_slug)
            if in_scope and not src.protected and not src.staff_only:
                ids.append(post.id)
        return ids


def folded(sessions, ids: list[int]) -> list[int]:
    """The top-level cards of a page of these posts: a thread part whose first post is on the page shows inside it."""
    with sessions() as s:
        threads = dict(s.execute(select(Post.id, Post.thread_id).where(Post.id.in_(ids))).all())
    return [i for i in ids if threads[i] not in ids]


def paged(sessions, ids: list[int], size: int = 20) -> list[int]:
    """The top-level cards of every page of a feed of these posts, in order."""
    return [i for start in range(0, len(ids), size) for i in folded(sessions, ids[start:start + size])]


def test_front_page_shows_public_company_posts_newest_first(demo, client, sessions):
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    expected = expected_ids(sessions)[:20]
    assert article_ids(html) == folded(sessions, expected)
    assert len(folded(sessions, expected)) < len(expected)  # the demo's thread is on the first page, folded
    assert "HPL_AllHands" not in html  # protected account: never on a public page
    assert 'rel="next" href="?before=' in html


def test_older_posts_follow_by_keyset_without_gaps_or_repeats(demo, client, sessions):
    seen, url = [], "/"
    while url:
        html = client.get(url).get_data(as_text=True)
        seen += article_ids(html)
        match = re.search(r'rel="next" href="\?before=(\d+)"', html)
        url = f"/?before={match[1]}" if match else None
    assert seen == paged(sessions, expected_ids(sessions))


@pytest.mark.parametrize("before", ["abc", "-1", "0", "99999999999999999999", "1e5"])
def test_a_bad_cursor_is_a_clear_400(demo, client, before):
    page = client.get(f"/?before={before}")
    assert page.status_code == 400
    assert "“before” must be the id of a post." in page.get_data(as_text=True)
    as_json = client.get(f"/?before={before}", headers={"Accept": "application/json"})
    assert as_json.status_code == 400
    assert as_json.json == {"error": "Bad Request", "message": "“before” must be the id of a post."}


def test_office_page_adds_that_office_and_marks_french_posts(demo, client, sessions):
    html = client.get("/offices/lyon").get_data(as_text=True)
    assert article_ids(html) == folded(sessions, expected_ids(sessions, "lyon")[:20])
    assert '<div class="tx" lang="fr" dir="auto">' in html
    assert "<bdi class=\"un\">@HPL_Columbus</bdi>" not in html
    missing = client.get("/offices/atlantis")
    assert missing.status_code == 404 and "There is no office called “atlantis”." in missing.get_data(as_text=True)


def csrf_token(client) -> str:
    html = client.get("/offices").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html)[1]


def test_choosing_an_office_is_remembered_in_a_cookie(demo, client, sessions):
    token = csrf_token(client)
    chosen = client.post("/offices", data={"office": "columbus", "csrf_token": token})
    assert chosen.status_code == 303 and chosen.headers["Location"] == "/"
    cookie = chosen.headers["Set-Cookie"]
    assert "office=columbus" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    front = client.get("/")
    assert article_ids(front.get_data(as_text=True)) == folded(sessions, expected_ids(sessions, "columbus")[:20])
    assert "Cookie" in front.headers["Vary"]
    cleared = client.post("/offices", data={"office": "", "csrf_token": token})
    assert "office=;" in cleared.headers["Set-Cookie"]
    assert article_ids(client.get("/").get_data(as_text=True)) == folded(sessions, expected_ids(sessions)[:20])


def test_choosing_an_office_needs_the_csrf_token_and_a_real_office(demo, client):
    refused = client.post("/offices", data={"office": "columbus"})
    assert refused.status_code == 400 and "did not come from this site" in refused.get_data(as_text=True)
    assert "office=" not in refused.headers.get("Set-Cookie", "")
    unknown = client.post("/offices", data={"office": "atlantis", "csrf_token": csrf_token(client)})
    assert unknown.status_code == 404 and "office=" not in unknown.headers.get("Set-Cookie", "")


def test_a_stale_office_cookie_falls_back_to_company_wide(demo, client, sessions):
    client.set_cookie("office", "closed-site")
    assert article_ids(client.get("/").get_data(as_text=True)) == folded(sessions, expected_ids(sessions)[:20])


def _store(sessions, post: XPost, username="HarborPineNews"):
    with sessions() as s:
        src = s.scalars(select(Source).where(Source.username == username)).one()
        store_posts(s, src, [post])
        s.commit()


WHEN = datetime(2030, 1, 1, tzinfo=timezone.utc)
AUTHOR = XUser(id="", username="", name="")


def test_hostile_post_text_is_shown_as_text_and_never_as_markup(demo, client, sessions):
    text = '<script>alert("x")</script> <img src=x onerror=alert(1)> & "quotes" \u202eevil\nsecond line'
    _store(sessions, XPost(id="2900000000000000001", author=AUTHOR, text=text, links=(), media=(), created_at=WHEN))
    html = client.get("/").get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt; &amp;" in html
    assert "\u202eevil\u202c<br>\nsecond line" in html  # the override ends with its line


def test_links_mentions_photos_video_and_protected_quotes_render(demo, client, sessions):
    text = "Shift swap rules: harborpine.example/swap by @HPL_Columbus #Shifts"
    links = (
        Link(18, 41, "url", "https://harborpine.example/swap?a=1&b=2", "harborpine.example/swap"),
        Link(45, 58, "mention", "https://x.com/HPL_Columbus", "@HPL_Columbus"),
        Link(59, 66, "hashtag", "https://x.com/hashtag/Shifts", "#Shifts"),
        Link(0, 5, "url", "javascript:alert(1)", "Shift"),
    )
    media = (
        XMedia("3_1", "photo", "https://pbs.twimg.com/media/AbCdEf123.jpg", None, 1600, 900, "Swap board in the break room"),
        XMedia("7_1", "video", None, "https://pbs.twimg.com/ext_tw_video_thumb/1/pu/img/x.jpg", 1280, 720, None, 9000,
              ({"url": "https://video.twimg.com/v/360.mp4", "bit_rate": 256000, "content_type": "video/mp4"},
               {"url": "https://video.twimg.com/v/720.mp4", "bit_rate": 2176000, "content_type": "video/mp4"})),
    )
    secret = XQuotedPost("5", XUser("9", "hpl_allhands", "All Hands", protected=True), "internal numbers", (), (), WHEN)
    _store(sessions, XPost(id="2900000000000000002", author=AUTHOR, text=text, links=links, media=media,
                              created_at=WHEN, quoted=secret))
    html = client.get("/").get_data(as_text=True)
    assert '<a href="https://harborpine.example/swap?a=1&amp;b=2" rel="nofollow noopener noreferrer">harborpine.example/swap</a>' in html
    assert '<a href="https://x.com/HPL_Columbus">@HPL_Columbus</a>' in html
    assert "javascript:" not in html
    # The small variant, through our own media route (FEEDAPP_MEDIA_PROXY is on by default).
    photo = re.search(r'<img src="(/media/photo/p/[^"]+)" alt="Swap board in the break room"'
                      r' width="680" height="382" loading="lazy"', html)
    assert photo and upstream_of(photo[1]) == "https://pbs.twimg.com/media/AbCdEf123?format=jpg&name=small"
    assert '<video controls preload="none" playsinline' in html and 'src="https://video.twimg.com/v/360.mp4"' in html
    assert "internal numbers" not in html and "Quoted post not available" in html


def all_pages(client, url: str) -> str:
    """Every page of a feed, following "Older posts"."""
    html, next_url = "", url
    while next_url:
        page = client.get(next_url).get_data(as_text=True)
        html += page
        match = re.search(r'rel="next" href="\?before=(\d+)"', page)
        next_url = f"{url}?before={match[1]}" if match else None
    return html


def test_demo_repost_reply_and_quote_have_their_context(demo, client):
    html = all_pages(client, "/offices/columbus") + all_pages(client, "/offices/lyon")
    assert "Reposted by @<bdi>HPL_Columbus</bdi>" in html
    assert "Replying to @" in html
    assert '<blockquote class="q"' in html


def test_security_headers_on_every_response(demo, client):
    for url in ("/", "/offices", "/feed.rss", "/nope"):
        headers = client.get(url).headers
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
