"""A page for each post (`/posts/ID`), and threads, replies, quotes and reposters on the feed pages.

Posts come from the fake X API through `poll`, on SQLite and PostgreSQL (the db_url fixture),
or from the demo company; readers are the Flask test client, anonymous or signed in.
"""

from __future__ import annotations

import html as htmllib
import re
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from feedapp.models import Post
from feedapp.render.page import handle_list, reply_to, summary
from tests.auth_helpers import PASSWORD, login, make_staff
from tests.fakemedia import upstream_of
from tests.helpers import follow, poll

ARTICLE_RE = re.compile(r'<article class="(post|part)" id="p(\d+)"')
META_RE = re.compile(r'<meta (?:property|name)="((?:og|twitter):[a-z_:]+)" content="([^"]*)">')
CANONICAL_RE = re.compile(r'<link rel="canonical" href="([^"]+)">')


def cards(html: str) -> list[tuple[str, int]]:
    """(kind, id) of every post card in page order: "post" for a top-level card, "part" inside a thread."""
    return [(kind, int(post_id)) for kind, post_id in ARTICLE_RE.findall(html)]


def meta(html: str) -> dict[str, str]:
    """The Open Graph and twitter: meta tags of a page, unescaped."""
    return {name: htmllib.unescape(value) for name, value in META_RE.findall(html)}


def card_html(html: str, post_id: int) -> str:
    """The markup of one card, up to its first closing </article>."""
    return html[html.index(f'id="p{post_id}"'):].split("</article>", 1)[0]


@pytest.fixture
def company(fake_x, runner):
    """@hq (company-wide), @depot (office depot7), @board (staff-only), @outsider (not followed)."""
    fake_x.add_user("hq", name="Headquarters")
    fake_x.add_user("depot", name="Depot Seven")
    fake_x.add_user("board", name="Board")
    fake_x.add_user("outsider", name="Someone Else")
    assert runner.invoke(args=["offices", "add", "depot7", "Depot 7"]).exit_code == 0
    return fake_x


def follow_and_poll(runner, fresh: bool = True):
    if fresh:
        follow(runner, "hq")
        follow(runner, "depot", "--office", "depot7")
        follow(runner, "board", "--staff-only")
    result = poll(runner, "--all")
    assert result.exit_code == 0 and "error" not in result.output, result.output


def staff_client(app, sessions):
    """A test client signed in as a staff member."""
    make_staff(sessions, "reader")
    client = app.test_client()
    assert login(client, "reader", PASSWORD).status_code == 303
    return client


# --- /posts/ID ---------------------------------------------------------------------------------------------------


def test_a_part_shows_its_whole_thread_in_order_with_positions(company, runner, client):
    head = int(company.post("hq", "Winter schedule, a thread"))
    two = int(company.post("hq", "pickups move to 7:00", reply_to=head))
    three = int(company.post("hq", "the canteen opens at 6:30", reply_to=two))
    follow_and_poll(runner)
    page = client.get(f"/posts/{two}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert cards(html) == [("post", head), ("part", two), ("part", three)]
    for position, post_id in enumerate((head, two, three), start=1):
        card = card_html(html, post_id)
        assert f'<span aria-hidden="true">{position}/3</span><span class="vh">Part {position} of 3</span>' in card
        assert f'<a class="at" href="/posts/{post_id}"><time' in card  # each part's time: its own page
        assert f'href="https://x.com/hq/status/{post_id}">Reply or like on X' in card
    assert 'id="p%d" aria-current="true"' % two in html  # the part this page is about
    assert "Replying to" not in html  # an account answering itself is a thread, never a reply
    assert "<h1>Thread by Headquarters</h1>" in html
    assert CANONICAL_RE.search(html)[1] == f"http://localhost/posts/{two}"


def test_open_graph_tags_describe_a_public_post(company, runner, client):
    text = 'Depot "open day" <Saturday> & more: https://harborpine.example/open-day/2030/program'
    post_id = int(company.post("hq", text, media=[{"type": "photo", "width": 1600, "height": 900}]))
    follow_and_poll(runner)
    html = client.get(f"/posts/{post_id}").get_data(as_text=True)
    tags = meta(html)
    assert tags["og:type"] == "article" and tags["og:title"] == "Headquarters (@hq)"
    assert tags["og:url"] == CANONICAL_RE.search(html)[1] == f"http://localhost/posts/{post_id}"
    # The link written out in full, never X's shortened display form; the photo as the preview image.
    assert tags["og:description"].startswith('Depot "open day" <Saturday> & more: harborpine.example/open-day/2030/program')
    # Absolute, through our own media route (FEEDAPP_MEDIA_PROXY): the small variant of X's photo.
    assert tags["og:image"].startswith("http://localhost/media/photo/p/")
    assert upstream_of(tags["og:image"]).startswith("https://pbs.twimg.com/media/") and "name=small" in upstream_of(tags["og:image"])
    assert tags["twitter:card"] == "summary_large_image"
    assert "<Saturday>" not in html and "&lt;Saturday&gt;" in html  # escaped in the attribute and the text


def test_no_og_image_without_a_photo(company, runner, client):
    post_id = int(company.post("hq", "Plain words only"))
    follow_and_poll(runner)
    tags = meta(client.get(f"/posts/{post_id}").get_data(as_text=True))
    assert "og:image" not in tags and tags["twitter:card"] == "summary" and tags["og:description"] == "Plain words only"


def test_a_staff_only_post_answers_anonymous_readers_exactly_like_an_unknown_id(company, runner, app, sessions):
    follow_and_poll(runner)
    anonymous = app.test_client()
    secret = int(company.post("board", "Board-only: merger talks"))
    unknown = anonymous.get(f"/posts/{secret}")  # on X, not stored yet: an id unknown to us
    follow_and_poll(runner, fresh=False)
    with sessions() as s:
        assert s.get(Post, secret) is not None  # stored now, as staff-only
    hidden = anonymous.get(f"/posts/{secret}")
    assert (hidden.status_code, hidden.data, sorted(hidden.headers.items())) == \
           (unknown.status_code, unknown.data, sorted(unknown.headers.items()))
    assert hidden.status_code == 404 and b"merger" not in hidden.data
    # A public account's repost of it is hidden alike (it would show the staff-only text).
    repost = int(company.post("hq", retweet_of=secret))
    before = anonymous.get(f"/posts/{repost}")
    follow_and_poll(runner, fresh=False)
    after = anonymous.get(f"/posts/{repost}")
    assert (after.status_code, after.data, sorted(after.headers.items())) == \
           (before.status_code, before.data, sorted(before.headers.items()))

    staff = staff_client(app, sessions)
    page = staff.get(f"/posts/{secret}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Board-only: merger talks" in html and '<span class="lock"' in html
    assert meta(html) == {}  # no link preview of staff-only text, whoever opens it
    assert page.headers["Cache-Control"] == "private, no-cache" and "Cookie" in page.headers["Vary"]


NEXT_RE = re.compile(r'<input\b[^>]*\bname="next"[^>]*\bvalue="([^"]*)"')


def test_a_missing_or_staff_only_post_offers_a_sign_in_that_comes_back_to_it(company, runner, app, sessions):
    """A staff-only notification tapped after the session ended: the 404 (which must not say the post exists) offers
    "Sign in", for every unknown id alike, and signing in there lands on the post."""
    secret = int(company.post("board", "Board-only: merger talks"))
    follow_and_poll(runner)
    missing = secret + 1000  # never posted: the same number of digits
    with sessions() as s:
        assert s.get(Post, missing) is None
    anonymous = app.test_client()
    hidden, unknown = anonymous.get(f"/posts/{secret}"), anonymous.get(f"/posts/{missing}")
    assert hidden.status_code == unknown.status_code == 404 and b"merger" not in hidden.data
    assert hidden.data.replace(str(secret).encode(), b"ID") == unknown.data.replace(str(missing).encode(), b"ID")
    assert hidden.data != unknown.data  # each links back to its own address
    for post_id, page in ((secret, hidden), (missing, unknown)):
        link = f"/login?next=/posts/{post_id}"
        assert f'<a href="{link}">Sign in</a>' in page.get_data(as_text=True)
    assert hidden.headers["Cache-Control"] == "no-store"

    make_staff(sessions, "reader")
    [link] = re.findall(r'<a href="(/login\?[^"]*)">Sign in</a>', hidden.get_data(as_text=True))
    form = anonymous.get(htmllib.unescape(link))
    [back] = NEXT_RE.findall(form.get_data(as_text=True))
    assert back == f"/posts/{secret}"
    signed_in = login(anonymous, "reader", PASSWORD, next=back)
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == f"/posts/{secret}"
    page = anonymous.get(signed_in.headers["Location"])
    assert page.status_code == 200 and "Board-only: merger talks" in page.get_data(as_text=True)
    # Signed in, an unknown id is a plain 404: nothing to sign in for.
    assert "/login" not in anonymous.get(f"/posts/{missing}").get_data(as_text=True).split("<main", 1)[1]


def test_a_post_of_a_protected_account_is_unknown_to_anonymous_readers(company, runner, client):
    company.add_user("locked", name="Locked", protected=True)
    follow(runner, "locked")
    post_id = int(company.post("locked", "Protected words"))
    follow_and_poll(runner)
    page = client.get(f"/posts/{post_id}")
    assert page.status_code == 404 and b"Protected words" not in page.data


def test_signed_in_and_anonymous_answers_differ_in_caching_only_where_they_must(company, runner, app, sessions, client):
    post_id = int(company.post("hq", "Public notice"))
    follow_and_poll(runner)
    public = client.get(f"/posts/{post_id}")
    assert public.headers["Cache-Control"] == "public, max-age=60"
    assert public.headers["Vary"] == "Accept-Encoding, Cookie, Accept-Language"
    staff = staff_client(app, sessions).get(f"/posts/{post_id}")
    assert staff.headers["Cache-Control"] == "private, no-cache"
    assert staff.headers["ETag"] != public.headers["ETag"]
    # Both are kept by the service worker for offline reading (in its staff or public cache), as feed pages are.
    assert public.headers["X-Feedapp-Offline"] == staff.headers["X-Feedapp-Offline"] == "page"
    assert "X-Feedapp-Offline" not in client.get(f"/posts/{post_id + 1}").headers
    # A public post previews the same for staff: its tags hold nothing staff-only.
    assert meta(staff.get_data(as_text=True)) == meta(public.get_data(as_text=True))


def test_etag_and_last_modified_answer_304_and_a_new_post_anywhere_changes_them(company, runner, client):
    post_id = int(company.post("hq", "Cacheable"))
    follow_and_poll(runner)
    first = client.get(f"/posts/{post_id}")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert first.status_code == 200 and etag.startswith('W/"')
    for headers in ({"If-None-Match": etag}, {"If-Modified-Since": modified}):
        again = client.get(f"/posts/{post_id}", headers=headers)
        assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    # The page may show any office's post (a reply parent, a thread part): an office's new post changes it.
    company.post("depot", "New at depot 7")
    follow_and_poll(runner, fresh=False)
    changed = client.get(f"/posts/{post_id}", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


@pytest.mark.parametrize("raw", ["abc", "-1", "0", "0123", "1e5", "12.0", "%20123", "99999999999999999999",
                                 "9223372036854775808", "\u0661\u0662\u0663", "123abc", "123/"])
def test_anything_but_a_post_id_is_a_plain_404(client, raw):
    for headers in ({}, {"Accept": "application/json"}):
        page = client.get(f"/posts/{raw}", headers=headers)
        assert page.status_code == 404, raw


def test_the_largest_id_is_looked_up_and_not_found(client):
    assert client.get("/posts/9223372036854775807").status_code == 404


def test_hostile_text_is_escaped_everywhere_on_the_page(company, runner, client):
    company.add_user("evil", name='"><script>alert(1)</script>')
    follow(runner, "evil")
    post_id = int(company.post("evil", '</title><script>alert(2)</script> "quoted" \u202eevil'))
    follow_and_poll(runner)
    html = client.get(f"/posts/{post_id}").get_data(as_text=True)
    assert "<script>alert" not in html
    assert "&lt;/title&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert meta(html)["og:title"] == '"><script>alert(1)</script> (@evil)'
    assert '<meta property="og:title" content="&#34;&gt;&lt;script&gt;' in html


def test_a_reply_shows_its_parent_linking_to_its_page(company, runner, client):
    question = int(company.post("depot", "When does the winter schedule start?"))
    answer = int(company.post("hq", "Monday!", reply_to=question))
    stranger = int(company.post("outsider", "Is the depot hiring?"))
    unknown_parent = int(company.post("hq", "Yes, see the jobs page", reply_to=stranger))
    follow_and_poll(runner)
    html = client.get(f"/posts/{answer}").get_data(as_text=True)
    assert "Replying to @<bdi>depot</bdi>" in html
    parent = html[html.index('<blockquote class="rp"'):].split("</blockquote>", 1)[0]
    assert "When does the winter schedule start?" in parent and f'href="/posts/{question}"' in parent
    # A parent we do not have: the label alone (it never links to a page that would 404).
    html = client.get(f"/posts/{unknown_parent}").get_data(as_text=True)
    assert "Replying to @<bdi>outsider</bdi>" in html and 'class="rp"' not in html


def test_the_original_of_a_repost_has_a_page_naming_every_reposter(company, runner, client):
    outside = int(company.post("outsider", "Great work, Harbor team"))
    company.post("hq", retweet_of=outside)
    company.post("depot", retweet_of=outside)
    follow_and_poll(runner)
    html = client.get(f"/posts/{outside}").get_data(as_text=True)
    assert "Reposted by @<bdi>depot</bdi> and @<bdi>hq</bdi>" in html
    assert CANONICAL_RE.search(html)[1] == f"http://localhost/posts/{outside}"
    assert f'href="https://x.com/outsider/status/{outside}">Reply or like on X' in html


# --- feed pages ----------------------------------------------------------------------------------------------------


def test_a_thread_on_one_page_shows_once_under_its_first_post(company, runner, client):
    head = int(company.post("hq", "Safety walk, a thread"))
    other = int(company.post("depot", "Unrelated depot news"))
    two = int(company.post("hq", "bring your vest", reply_to=head))
    three = int(company.post("hq", "and your gloves", reply_to=two))
    follow_and_poll(runner)
    html = client.get("/offices/depot7").get_data(as_text=True)
    assert cards(html) == [("post", other), ("post", head), ("part", two), ("part", three)]
    assert html.count(f'id="p{two}"') == 1 and html.count("bring your vest") == 1
    assert "Replying to" not in html and "Thread continues" not in html
    assert '<ol class="thread">' in html and f'<h3 class="ph2"><span class="pos"><span aria-hidden="true">2/3' in html
    assert "Part 1 of 3" in card_html(html, head) and "Part 3 of 3" in card_html(html, three)


def test_a_part_whose_first_post_scrolled_away_is_a_continuation(company, runner, client):
    head = int(company.post("hq", "Depot move, a thread"))
    for i in range(20):
        company.post("depot", f"depot news {i}")
    two = int(company.post("hq", "the move is on Monday", reply_to=head))
    follow_and_poll(runner)
    first = client.get("/offices/depot7").get_data(as_text=True)
    assert cards(first)[0] == ("post", two) and head not in [i for _, i in cards(first)]
    label = card_html(first, two)
    assert f'<a href="/posts/{head}#p{two}">Thread continues: part 2 of 2</a>' in label
    assert "Replying to" not in label
    older = re.search(r'rel="next" href="\?before=(\d+)"', first)[1]
    second = client.get(f"/offices/depot7?before={older}").get_data(as_text=True)
    # On the head's own page of the feed the thread is whole again: the part under its first post.
    assert [c for c in cards(second) if c[1] in (head, two)] == [("post", head), ("part", two)]


def test_a_reply_to_another_account_quotes_its_parent_on_the_feed(company, runner, client):
    question = int(company.post("depot", "Is the canteen open on Sunday?"))
    answer = int(company.post("hq", "Yes, from 8.", reply_to=question))
    follow_and_poll(runner)
    html = client.get("/offices/depot7").get_data(as_text=True)
    card = card_html(html, answer)
    assert "Replying to @<bdi>depot</bdi>" in card and "Is the canteen open on Sunday?" in card
    assert f'<a class="at" href="/posts/{question}">' in card


def test_one_post_reposted_twice_names_both_reposters_once(company, runner, client):
    outside = int(company.post("outsider", "Proud of the Harbor team"))
    company.post("hq", retweet_of=outside)
    by_depot = int(company.post("depot", retweet_of=outside))
    follow_and_poll(runner)
    html = client.get("/offices/depot7").get_data(as_text=True)
    assert [i for _, i in cards(html)] == [by_depot]
    assert "Reposted by @<bdi>depot</bdi> and @<bdi>hq</bdi>" in html
    french = client.get("/offices/depot7", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Republié par @<bdi>depot</bdi> et @<bdi>hq</bdi>" in french
    # The time of a repost leads to its original's page, where the same post is.
    assert f'<a class="at" href="/posts/{outside}">' in html


def test_every_card_time_links_to_its_post_page(company, runner, client):
    ids = [int(company.post("hq", f"note {i}")) for i in range(3)]
    follow_and_poll(runner)
    html = client.get("/").get_data(as_text=True)
    for post_id in ids:
        assert f'<a class="at" href="/posts/{post_id}"><time class="when"' in card_html(html, post_id)


# --- the demo company ---------------------------------------------------------------------------------------------


@pytest.fixture
def demo(runner):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output


def demo_id(sessions, starts: str) -> int:
    with sessions() as s:
        return s.scalar(select(Post.id).where(Post.text.startswith(starts)))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the demo markup does not depend on the engine
def test_demo_quote_is_labelled_and_links_to_its_author_and_itself(demo, client, sessions, db_url):
    quoted, quoting_id = demo_id(sessions, "New network record"), demo_id(sessions, "🇫🇷 Lyon aussi")
    quoting = card_html(client.get(f"/posts/{quoting_id}").get_data(as_text=True), quoting_id)
    assert "Quoting @<bdi>HarborPineNews</bdi>" in quoting
    assert '<a href="https://x.com/HarborPineNews"><bdi class="name">Harbor &amp; Pine News</bdi></a>' in quoting
    assert f'<a href="https://x.com/HarborPineNews/status/{quoted}"><time datetime=' in quoting
    french = client.get(f"/posts/{quoting_id}", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Citation de @<bdi>HarborPineNews</bdi>" in french


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_demo_thread_and_repost_read_right_in_french(demo, client, sessions, db_url):
    head = demo_id(sessions, "What changes for drivers")
    page = client.get(f"/posts/{head}", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert '<html lang="fr">' in page and "<h1>Fil de Harbor &amp; Pine News</h1>" in page
    assert "Partie 2 sur 3" in page and "Répondre ou aimer sur X" in page
    assert "Partie 3 sur 3" in page
    with sessions() as s:
        repost = s.scalar(select(Post.id).where(Post.repost_of_id.is_not(None)))
    columbus = client.get(f"/posts/{repost}", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Republié par @<bdi>HPL_Columbus</bdi>" in columbus


# --- the pure helpers -----------------------------------------------------------------------------------------------


def test_reposters_are_listed_in_the_readers_language_and_escaped():
    assert handle_list(["a<b>", "c"], "en") == "@<bdi>a&lt;b&gt;</bdi> and @<bdi>c</bdi>"
    assert handle_list(["a", "b", "c"], "fr") == "@<bdi>a</bdi>, @<bdi>b</bdi> et @<bdi>c</bdi>"
    assert handle_list(["solo"], "en") == "@<bdi>solo</bdi>"


def reply(**fields):
    base = dict(reply_to_username="Other", is_thread_part=False, reply_to_user_id="2", author_id="1",
                author_username="hq")
    return SimpleNamespace(**{**base, **fields})


def test_only_replies_to_another_account_are_labelled_replies():
    assert reply_to(reply()) == "Other"
    assert reply_to(reply(is_thread_part=True)) is None
    assert reply_to(reply(reply_to_user_id="1")) is None  # to itself, in a row stored before threads were named
    assert reply_to(reply(reply_to_username="HQ", reply_to_user_id=None)) is None
    assert reply_to(reply(reply_to_username=None)) is None


def test_a_preview_summary_is_one_plain_line_cut_at_a_word():
    text = "Line one\nline two " + "word " * 60
    post = SimpleNamespace(text=text, links=[{"start": 0, "end": 4, "kind": "url", "href": "https://ex.example/a/"}])
    line = summary(post, limit=40)
    assert line == "ex.example/a/ one line two word word…"  # readable_url: only a lone "/" goes and "\n" not in line
