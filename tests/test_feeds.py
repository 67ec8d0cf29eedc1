"""The feed routes on the demo data, parsed back with a real feed parser."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import feedparser
import lxml.html
import pytest
from lxml import etree
from sqlalchemy import select

from feedapp import accounts
from feedapp.models import Post, Source, User
from tests.auth_helpers import make_staff
from tests.feed_clients import sfeed, w3c_problems
from tests.test_scope_versions import add_post
from feedapp.ingest.store import store_posts
from feedapp.xapi.types import Link, XMedia, XPost, XQuotedPost, XUser


@pytest.fixture
def demo(runner):
    assert runner.invoke(args=["demo"]).exit_code == 0


def public_ids(sessions, office=None) -> list[int]:
    """The X ids of the posts a public feed shows, newest first: one per post, however often it was reached."""
    with sessions() as s:
        rows = s.scalars(select(Post).join(Source).order_by(Post.id.desc())).all()
        ids, shown = [], set()
        for p in rows:  # newest first: a post reached twice in the scope shows where it last appeared
            if p.source.is_staff_only or not (p.source.office is None or (office and p.source.office.slug == office)):
                continue
            if (p.repost_of_id or str(p.id)) not in shown:
                shown.add(p.repost_of_id or str(p.id))
                ids.append(int(p.repost_of_id or p.id))  # an item's id is the post's own, a repost's original
        return ids


def staff_only_texts(sessions) -> list[str]:
    with sessions() as s:
        return [p.text[:40] for p in s.scalars(select(Post).join(Source).where(Source.protected))]


@pytest.mark.parametrize("path, office", [("/feed", None), ("/offices/lyon/feed", "lyon"), ("/offices/columbus/feed", "columbus")])
@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_xml_feeds_parse_cleanly_with_the_public_posts(demo, client, sessions, path, office, fmt):
    response = client.get(f"{path}.{fmt}")
    assert response.status_code == 200
    assert response.mimetype == {"rss": "application/rss+xml", "atom": "application/atom+xml"}[fmt]
    parsed = feedparser.parse(response.data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    ids = public_ids(sessions, office)
    assert [e.id for e in parsed.entries] == [f"https://x.com/i/status/{i}" for i in ids[:50]]
    assert all(e.get("published_parsed") for e in parsed.entries)
    body = response.get_data(as_text=True)
    assert all(text not in body for text in staff_only_texts(sessions))
    assert "HPL_AllHands" not in body


def test_json_feed_follows_json_feed_1_1(demo, client, sessions):
    response = client.get("/offices/lyon/feed.json")
    assert response.mimetype == "application/feed+json"
    feed = json.loads(response.data)
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["feed_url"] == "http://localhost/offices/lyon/feed.json"
    assert [item["id"] for item in feed["items"]] == [f"https://x.com/i/status/{i}" for i in public_ids(sessions, "lyon")]
    assert all(item["content_html"] for item in feed["items"])
    assert all(datetime.fromisoformat(item["date_published"]).utcoffset() is not None for item in feed["items"])
    assert any(item.get("language") == "fr" for item in feed["items"])


def test_feed_urls_use_the_configured_base_url(demo, make_app):
    app = make_app(FEEDAPP_BASE_URL="https://feed.harborpine.example/")
    app.test_cli_runner().invoke(args=["demo"])
    parsed = feedparser.parse(app.test_client().get("/feed.atom", base_url="http://10.0.0.5:8000").data)
    assert parsed.feed.link == "https://feed.harborpine.example/"
    assert any(link.href == "https://feed.harborpine.example/feed.atom" and link.rel == "self" for link in parsed.feed.links)


def test_opml_lists_the_feeds_that_do_not_overlap(demo, client):
    response = client.get("/feeds.opml")
    assert response.mimetype == "text/x-opml"
    outlines = etree.fromstring(response.data).findall(".//outline")
    # The company feed and each office's own posts: imported together, no post shows twice.
    assert [(o.get("text"), o.get("xmlUrl")) for o in outlines] == [
        ("Staff news: company-wide posts", "http://localhost/feed.rss"),
        ("Staff news: Columbus Depot (Ohio) only", "http://localhost/offices/columbus/local/feed.rss"),
        ("Staff news: Lyon Saint-Priest Hub only", "http://localhost/offices/lyon/local/feed.rss"),
    ]
    for outline in outlines:
        xml_path = outline.get("xmlUrl").removeprefix("http://localhost")
        assert feedparser.parse(client.get(xml_path).data).bozo == 0


@pytest.mark.parametrize("url", ["/feed.xml", "/offices/atlantis/feed.rss", "/offices/lyon/feed.txt",
                                 "/offices/atlantis/local/feed.rss", "/offices/lyon/local/feed.txt"])
def test_unknown_feeds_are_404(demo, client, url):
    assert client.get(url).status_code == 404


def test_an_empty_database_still_serves_valid_feeds(client):
    for fmt in ("rss", "atom"):
        assert feedparser.parse(client.get(f"/feed.{fmt}").data).bozo == 0
    assert json.loads(client.get("/feed.json").data)["items"] == []


OFFICES = ("columbus", "lyon")
PUBLIC_FEEDS = ["/feed", *(f"/offices/{o}/feed" for o in OFFICES), *(f"/offices/{o}/local/feed" for o in OFFICES)]
MRSS = "{http://search.yahoo.com/mrss/}content"


def private_feed(sessions, username: str, office: str) -> str:
    """The private feed path (without its extension) of a new staff member of office."""
    make_staff(sessions, username, office=office)
    with sessions() as s:
        token = accounts.rotate_feed_token(s, s.scalars(select(User).where(User.username == username)).one())
        s.commit()
    return f"/private/{token}/feed"


@pytest.fixture
def every_post(make_app):
    """A demo app whose feeds hold every post (so feeds can be compared as sets)."""
    app = make_app(FEEDAPP_FEED_ITEMS=1000)
    assert app.test_cli_runner().invoke(args=["demo"]).exit_code == 0
    return app


def guids(client, path: str) -> list[str]:
    return [e.id for e in feedparser.parse(client.get(f"{path}.rss").data).entries]


def test_no_feed_holds_a_post_twice_for_any_client(every_post):
    client = every_post.test_client()
    for path in PUBLIC_FEEDS:
        rss, atom = client.get(f"{path}.rss").data, client.get(f"{path}.atom").data
        for data in (rss, atom):
            ids = [e.id for e in feedparser.parse(data).entries]
            assert ids and len(ids) == len(set(ids)), path
            links = [e.link for e in feedparser.parse(data).entries]
            assert len(links) == len(set(links)), path  # not the same post under two ids either
            seen = sfeed(data)  # a second, independent parser (C)
            assert [item["id"] for item in seen] == ids
        items = json.loads(client.get(f"{path}.json").data)["items"]
        assert [item["id"] for item in items] == guids(client, path)


def test_office_only_feeds_do_not_overlap_the_company_feed(every_post):
    client = every_post.test_client()
    company = set(guids(client, "/feed"))
    for office in OFFICES:
        local, combined = set(guids(client, f"/offices/{office}/local/feed")), set(guids(client, f"/offices/{office}/feed"))
        assert local and not local & company
        assert local | company == combined  # together they hold what the combined feed holds, each post once


def test_a_repost_by_an_office_appears_once_naming_its_reposter(demo, client):
    entries = feedparser.parse(client.get("/offices/columbus/feed.rss").data).entries
    reposts = [e for e in entries if e.title.startswith("RT @HarborPineSafe:")]
    assert len(reposts) == 1
    assert reposts[0].id == "https://x.com/i/status/2121139750305869828"  # the original's id, as in the company feed
    assert 'Reposted by <a href="https://x.com/HPL_Columbus">' in reposts[0].summary
    assert reposts[0].id in guids(client, "/feed")
    assert reposts[0].id not in guids(client, "/offices/columbus/local/feed")


def test_threads_and_replies_read_as_readers_expect(demo, client):
    entries = feedparser.parse(client.get("/feed.rss").data).entries
    head = next(e for e in entries if e.title.startswith("Thread 1/3: What changes for drivers"))
    body = head.summary
    assert body.index(">1/3<") < body.index(">2/3<") < body.index(">3/3<")  # the parts known, in order
    assert "handheld scanners" in body and "#AskOps" in body
    parts = [e for e in entries if e.title.startswith(("Continued 2/3: handheld", "Continued 3/3: questions"))]
    assert len(parts) == 2 and all(f'href="{head.link}">Continues a thread</a>' in e.summary for e in parts)
    assert not any(e.title.startswith("Re:") and "HarborPineNews" in e.author for e in entries)
    assert "Replying to" not in "".join(e.summary for e in entries if "HarborPineNews" in e.author)
    office = feedparser.parse(client.get("/offices/columbus/feed.rss").data).entries
    reply = next(e for e in office if "HPL_Fleet" in e.title)
    assert reply.title.startswith("Re: @HPL_Fleet") and "Replying to" in reply.summary  # another account: a reply
    # The office's own storm thread: three items, each labelled (newest first).
    assert [e.title.split(":")[0] for e in office if "HPL_Columbus" in e.author and
            e.title.startswith(("Thread", "Continued"))] == ["Continued 3/3", "Continued 2/3", "Thread 1/3"]


def test_labels_are_in_the_feeds_language(demo, client):
    lyon = client.get("/offices/lyon/feed.rss")
    parsed = feedparser.parse(lyon.data)
    assert parsed.feed.language == "fr"
    quote = next(e for e in parsed.entries if "38 200 colis" in e.title)
    assert quote.title.endswith(" · Citation de @HarborPineNews")
    assert "Citation de" in quote.summary and "Voir le message" in quote.summary
    assert parsed.feed.subtitle == "Messages de toute l’entreprise et de Lyon Saint-Priest Hub"
    english = b"".join(client.get(f"/offices/lyon/feed.{fmt}").data for fmt in ("rss", "atom", "json"))
    for label in (b"Quoting", b"Reposted by", b"Replying to", b"Watch video", b"Continues a thread"):
        assert label not in english
    assert b"Suite d\xe2\x80\x99un fil" in english and b"Suite 2/3: " in english  # the company's thread, in French
    company = feedparser.parse(client.get("/feed.rss").data)
    assert company.feed.language == "en"  # the site's default language
    assert any(e.title.startswith("Continued 2/3:") for e in company.entries)
    # Each item keeps its own post's language where the format has a place for it.
    root = etree.fromstring(client.get("/offices/lyon/feed.atom").data)
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "fr"
    langs = {e.get("{http://www.w3.org/XML/1998/namespace}lang") for e in root.iter("{http://www.w3.org/2005/Atom}entry")}
    assert langs == {"en", "fr"}
    doc = json.loads(client.get("/offices/lyon/feed.json").data)
    assert doc["language"] == "fr" and {item.get("language") for item in doc["items"]} == {"en", "fr"}


def test_every_photo_or_video_is_an_enclosure_readers_see(demo, client):
    data = client.get("/offices/lyon/feed.rss").data
    items = etree.fromstring(data).findall(".//item")
    with_media = [item for item in items if item.find(MRSS) is not None]
    assert with_media
    for item in items:
        assert len(item.findall("enclosure")) == (1 if item.find(MRSS) is not None else 0)
    enclosure = with_media[0].find("enclosure")
    assert enclosure.get("url") == with_media[0].find(MRSS).get("url") and enclosure.get("length") == "0"
    parsed = feedparser.parse(data).entries
    assert [len(e.enclosures) for e in parsed] == [1 if i.find(MRSS) is not None else 0 for i in items]
    assert [bool(item["enclosure"]) for item in sfeed(data)] == [i.find(MRSS) is not None for i in items]
    atom = feedparser.parse(client.get("/offices/lyon/feed.atom").data).entries
    assert [len(e.enclosures) for e in atom] == [len(e.enclosures) for e in parsed]
    doc = json.loads(client.get("/offices/lyon/feed.json").data)
    assert any(a["mime_type"].startswith("image/") for item in doc["items"] for a in item.get("attachments", []))
    assert all(item["author"] == item["authors"][0] for item in doc["items"])
    # Absolute URLs of our own media route (FEEDAPP_MEDIA_PROXY, on by default; test_media checks it off).
    assert all(item["author"]["avatar"].startswith("http://localhost/media/avatar/p/") for item in doc["items"])
    assert doc["icon"].endswith(".png") and "icon-512" in doc["icon"]


def test_ttl_is_max_age_rounded_up_to_minutes(demo, make_app):
    app = make_app(FEEDAPP_POLL_INTERVAL=90, FEEDAPP_STREAM="off")
    for path in ("/feed.rss", "/offices/lyon/local/feed.rss"):
        response = app.test_client().get(path)
        assert response.headers["Cache-Control"] == "public, max-age=90"
        assert feedparser.parse(response.data).feed.ttl == "2"


def test_feed_ids_are_unique_per_feed_and_independent_of_the_host(demo, client, sessions):
    paths = [*PUBLIC_FEEDS, private_feed(sessions, "ann", "lyon"), private_feed(sessions, "bob", "lyon")]
    ids = {path: feedparser.parse(client.get(f"{path}.atom").data).feed.id for path in paths}
    assert len(set(ids.values())) == len(paths)
    assert all(feed_id.startswith("urn:uuid:") for feed_id in ids.values())
    other = {path: feedparser.parse(client.get(f"{path}.atom", base_url="https://news.example:8443").data).feed.id
             for path in paths}
    assert other == ids


def test_feed_titles_use_the_site_name(demo, make_app):
    app = make_app(FEEDAPP_SITE_NAME="Harbor & Pine news")
    client = app.test_client()
    assert feedparser.parse(client.get("/feed.rss").data).feed.title == "Harbor & Pine news"
    assert feedparser.parse(client.get("/offices/lyon/local/feed.atom").data).feed.title == \
        "Harbor & Pine news · Lyon Saint-Priest Hub seulement"
    assert etree.fromstring(client.get("/feeds.opml").data).findtext("head/title") == "Harbor & Pine news feeds"


def test_an_office_post_leaves_other_offices_feeds_alone(demo, client, sessions):
    paths = ["/feed.rss", "/feeds.opml", "/offices/lyon/feed.rss", "/offices/lyon/local/feed.atom",
             "/offices/columbus/feed.json", "/offices/columbus/local/feed.rss"]
    before = {path: client.get(path).headers["ETag"] for path in paths}
    add_post(sessions, "HPL_Columbus", "2900000000000000101")
    after = {path: client.get(path).headers["ETag"] for path in paths}
    assert {path for path in paths if before[path] != after[path]} == {
        "/offices/columbus/feed.json", "/offices/columbus/local/feed.rss"}
    assert b"2900000000000000101" in client.get("/offices/columbus/local/feed.rss").data
    response = client.get("/offices/lyon/local/feed.atom", headers={"If-None-Match": after["/offices/lyon/local/feed.atom"]})
    assert response.status_code == 304


def test_private_feeds_link_staff_only_posts_to_their_page(demo, client, sessions):
    path = private_feed(sessions, "ann", "columbus")
    entries = feedparser.parse(client.get(f"{path}.rss").data).entries
    with sessions() as s:
        staff_only = {str(p.id) for p in s.scalars(select(Post).join(Source).where(Source.protected))}
    assert staff_only
    own = [e for e in entries if e.id.rsplit("/", 1)[1] in staff_only]
    assert own and all(e.link == f"http://localhost/posts/{e.id.rsplit('/', 1)[1]}" for e in own)
    assert all(e.link.startswith("https://x.com/") for e in entries if e not in own)


@pytest.fixture
def dotted_client(make_app, app):
    """A client of the same database on a site with a dotted host name, as every real site has.

    The validator wants enclosure and media:content URLs on a domain; images come from our own
    route, on FEEDAPP_BASE_URL, and http://localhost has no domain.
    """
    return make_app(FEEDAPP_BASE_URL="https://feed.example.com").test_client()


def test_the_w3c_validator_finds_nothing_to_report_in_any_feed(demo, dotted_client, sessions, tmp_path):
    paths = [*PUBLIC_FEEDS, private_feed(sessions, "ann", "lyon")]
    documents = {f"https://feed.example.com{path}.{fmt}": dotted_client.get(f"{path}.{fmt}").data
                 for path in paths for fmt in ("rss", "atom")}
    assert w3c_problems(tmp_path, documents) == {url: [] for url in documents}  # no errors, no warnings


HOSTILE_TEXTS = [
    "Trap ]]> here <![CDATA[ x ]]> and <script>alert(1)</script> & <b>bold</b>",
    "\u202eevil.exe\u200f שלום and 👩‍🔧👨‍👩‍👧 🏳️‍🌈 ready",
    "&amp; &lt;not markup&gt; &#x3C;",
]


@pytest.fixture
def hostile(demo, sessions):
    """Demo data plus hostile posts of HarborPineNews stored by store_posts: markup, bidi, a thread, a quote, a link."""
    when = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)  # plausible: validators flag dates in the future
    me = XUser("3141592653", "HarborPineNews", "News <b>&amp;</b> \u202eevil")
    evil = XUser("999", "evil_co", "Evil <script> \u202e Co")
    href = 'https://example.com/search?q="dock 4"&sort=new&x=<y>'
    text = "Open example.com/search?q=… <now>"
    posts = [XPost(str(3000000000000000101 + i), me, body, (), (), when - timedelta(minutes=i), lang="en")
             for i, body in enumerate(HOSTILE_TEXTS)]
    posts.append(XPost("3000000000000000201", me, text, (Link(5, 28, "url", href, "example.com/search?q=…"),),
                       (XMedia("3_1", "photo", "https://pbs.twimg.com/media/Hostile.jpg", None, 600, 400,
                               "alt <script>"),), when - timedelta(minutes=5), lang="und",
                       quoted=XQuotedPost("3000000000000000001", evil, "Quoted </p><script>x</script>", (), (),
                                          when - timedelta(days=1))))
    posts.append(XPost("3000000000000000202", me, "2/2 <i>the end</i>", (), (), when - timedelta(minutes=4),
                       reply_to_id="3000000000000000201", reply_to_user_id="3141592653",
                       reply_to_username="HarborPineNews"))
    with sessions() as s:
        store_posts(s, s.scalars(select(Source).where(Source.username == "HarborPineNews")).one(),
                    sorted(posts, key=lambda p: -int(p.id)))
        s.commit()


def xml_titles(data: bytes) -> list[tuple[str, str]]:
    """(id, title text) of each item as the document states it (an Atom title quoting markup is escaped HTML)."""
    root, atom = etree.fromstring(data), "{http://www.w3.org/2005/Atom}"
    if root.tag == "rss":
        return [(item.findtext("guid"), item.findtext("title")) for item in root.iter("item")]
    titles = []
    for entry in root.iter(f"{atom}entry"):
        title = entry.find(f"{atom}title")
        text = title.text if title.get("type") != "html" else \
            lxml.html.fragment_fromstring(title.text, create_parent="div").text_content()
        titles.append((entry.findtext(f"{atom}id"), text))
    return titles


def test_hostile_posts_stay_valid_for_every_client(hostile, dotted_client, tmp_path):
    documents = {f"https://feed.example.com/feed.{fmt}": dotted_client.get(f"/feed.{fmt}").data
                 for fmt in ("rss", "atom")}
    problems = w3c_problems(tmp_path, documents)
    # The one warning accepted (see test_render_feeds.test_the_w3c_validator_finds_nothing_to_report): a plain-text
    # field quoting an HTML end tag, as these posts' text and their author's display name do: an RSS title, an
    # author's name (RSS dc:creator, Atom name, which have no type="html" to declare). Each is escaped text, as the
    # specs say; rewriting what a post or a name says to dodge the heuristic would misquote it. No error, and no
    # other warning.
    for url, found in problems.items():
        assert [p["type"] for p in found] == ["ContainsHTML"], url
        assert re.search(r"\b(title|name|creator) should not contain HTML", found[0]["message"]), found
    for fmt, data in (("rss", documents["https://feed.example.com/feed.rss"]),
                      ("atom", documents["https://feed.example.com/feed.atom"])):
        parsed = feedparser.parse(data)
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        ids = [e.id for e in parsed.entries]
        assert len(ids) == len(set(ids)) and [item["id"] for item in sfeed(data)] == ids
        assert b"<script" not in data.lower()
        link = next(e for e in parsed.entries if e.id.endswith("3000000000000000201"))
        assert "example.com/search?q=" in link.title and "…" not in link.title.split("·")[0]  # the readable URL
        assert link.title.startswith("Thread 1/2: ") and " · Quoting @evil_co" in link.title
        # What the document says (feedparser guesses an RSS title holding "<i>" is HTML: RSS titles have no type).
        assert [title for entry_id, title in xml_titles(data) if entry_id.endswith("3000000000000000202")] == [
            "Continued 2/2: <i>the end</i>"]  # its own "2/2" said once, by the label
    doc = json.loads(dotted_client.get("/feed.json").data)
    item = next(i for i in doc["items"] if i["id"].endswith("3000000000000000201"))
    assert item["content_text"].startswith('Open example.com/search?q="dock 4"&sort=new&x=<y>')
