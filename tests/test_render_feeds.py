"""Tests for feedapp.render.feeds: every format is parsed back (feedparser, lxml, json)."""

from __future__ import annotations

import json
import re
from calendar import timegm
from datetime import datetime, timedelta, timezone

import feedparser
import lxml.html
import pytest
from lxml import etree

from feedapp.models import Media, Post, Source
from feedapp.render import feeds, jsonfeed
from feedapp.render.feeds import FeedInfo
from tests.feed_clients import w3c_problems

UTC = timezone.utc
NEWEST = datetime(2024, 5, 1, 12, 30, 15, tzinfo=UTC)
ATOM_NS = {"a": "http://www.w3.org/2005/Atom"}
MRSS = "http://search.yahoo.com/mrss/"
HOME = "https://feeds.example.com/o/columbus"
ICON = "https://feeds.example.com/static/icon-512.png"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
FORMATS = ["rss", "atom", "json"]


def info(fmt: str = "rss") -> FeedInfo:
    return FeedInfo(title="Harbor & Pine Logistics — Columbus Depot", subtitle="News for staff & friends",
                    home_url=HOME, self_url=f"{HOME}/feed.{fmt}", feed_id=HOME, ttl_minutes=15,
                    icon_url=ICON, language="en")


def build(fmt: str, posts, staff: bool = False, feed_info: FeedInfo | None = None) -> bytes:
    builder = {"rss": feeds.rss, "atom": feeds.atom, "json": jsonfeed.json_feed}[fmt]
    return builder(feed_info or info(fmt), posts, staff=staff)


def link(text: str, display: str, href: str, kind: str = "url") -> dict:
    """A link span over the first occurrence of display in text."""
    start = text.index(display)
    return {"start": start, "end": start + len(display), "kind": kind, "href": href, "display": display}


def photo(name: str = "GxAbc123", alt: str | None = "Forklift training at the depot", **kw) -> Media:
    return Media(type="photo", url=f"https://pbs.twimg.com/media/{name}.jpg", preview_url=None,
                 width=kw.get("width", 2048), height=kw.get("height", 1536), alt_text=alt, variants=[])


def video(kind: str = "video") -> Media:
    variants = [{"url": "https://video.twimg.com/ext_tw_video/1/pu/vid/480x270/low.mp4", "bit_rate": 256000,
                 "content_type": "video/mp4"},
                {"url": "https://video.twimg.com/ext_tw_video/1/pu/vid/1280x720/high.mp4", "bit_rate": 2176000,
                 "content_type": "video/mp4"}]
    return Media(type=kind, url=None, preview_url="https://pbs.twimg.com/ext_tw_video_thumb/1/pu/img/poster.jpg",
                 width=1280, height=720, alt_text=None, duration_ms=31_500, variants=variants)


def make_post(id: int, text: str = "Depot update", *, minutes_ago: int = 0, links=None, media=(), **fields) -> Post:
    """A transient Post row (no database) from @harborpine, newest at NEWEST."""
    values = dict(author_username="harborpine", author_name="Harbor & Pine", lang="en",
                  author_avatar="https://pbs.twimg.com/profile_images/1/avatar_normal.jpg",
                  quote_hidden=False)  # what queries.posts_for_feed sets while the quoted author is public
    values.update(fields)
    return Post(id=id, text=text, links=list(links or []), media=list(media), source=Source(username="harborpine"),
                created_at=NEWEST - timedelta(minutes=minutes_ago), **values)


def quote(protected: bool, media: list | None = None) -> dict:
    return {"id": "1700000000000000009", "text": "Quarterly numbers: internal only", "links": [], "media": media or [],
            "author": {"id": "42", "username": "hpfinance", "name": "H&P Finance", "protected": protected},
            "created_at": "2024-04-30T08:00:00+00:00"}


QUOTED_PHOTO = {"key": "3_1", "type": "photo", "url": "https://pbs.twimg.com/media/QuoteImg.png", "width": 600,
                "height": 400, "alt_text": "Chart", "preview_url": None, "duration_ms": None, "variants": []}


def sample_posts() -> list[Post]:
    """Newest first: a post with a link and a photo, a repost, a reply, a video, a quote."""
    text = "New cold-store hours at harborpine.com/hours\nSee you there"
    return [
        make_post(1790000000000000005, text, links=[link(text, "harborpine.com/hours", "https://harborpine.com/hours?x=1&y=2")],
                  media=[photo()]),
        make_post(1790000000000000004, "Safety week starts Monday", minutes_ago=5, repost_of_id="1780000000000000001",
                  author_username="hpsafety", author_name="H&P Safety", original_created_at=NEWEST - timedelta(days=1)),
        make_post(1790000000000000003, "@driver42 Yes, gate 4 is open", minutes_ago=10, reply_to_id="1790000000000000002",
                  reply_to_username="driver42"),
        make_post(1790000000000000002, "", minutes_ago=20, media=[video()]),
        make_post(1790000000000000001, "Proud of this team", minutes_ago=30, quoted=quote(False, media=[QUOTED_PHOTO])),
    ]


def parse(data: bytes):
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed


def item_html(fmt: str, data: bytes) -> list[str]:
    """Each item's HTML as the document carries it (XML-unescaped, not sanitized)."""
    if fmt == "json":
        return [item["content_html"] for item in json.loads(data)["items"]]
    root = etree.fromstring(data)
    path = "//item/description" if fmt == "rss" else "//a:entry/a:content"
    return [el.text or "" for el in root.xpath(path, namespaces=ATOM_NS)]


def item_titles(fmt: str, data: bytes) -> list[str]:
    if fmt == "json":
        return [item["title"] for item in json.loads(data)["items"]]
    path = "//item/title" if fmt == "rss" else "//a:entry/a:title"
    # An Atom title that quotes markup is escaped HTML (type="html"): the text it shows.
    return [lxml.html.fragment_fromstring(el.text, create_parent="div").text_content() if el.get("type") == "html"
            else el.text for el in etree.fromstring(data).xpath(path, namespaces=ATOM_NS)]


def validate_json_feed(doc: dict) -> None:
    """The JSON Feed 1.1 rules feedapp relies on (https://jsonfeed.org/version/1.1)."""
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(doc["title"], str) and doc["title"]
    for key in ("home_page_url", "feed_url", "icon"):
        assert doc.get(key) is None or doc[key].startswith("https://"), key
    for author in doc.get("authors", []):
        assert {"name", "url", "avatar"} & author.keys()
    assert isinstance(doc["items"], list)
    ids = [item["id"] for item in doc["items"]]
    assert len(ids) == len(set(ids))
    for item in doc["items"]:
        assert isinstance(item["id"], str) and item["id"]
        assert isinstance(item.get("content_html"), str) or isinstance(item.get("content_text"), str)
        for key in ("date_published", "date_modified"):
            assert key not in item or RFC3339.match(item[key]), item[key]
        for attachment in item.get("attachments", []):
            assert attachment["url"].startswith("https://") and attachment["mime_type"]
        for author in item.get("authors", []):
            assert {"name", "url", "avatar"} & author.keys()


def test_rss_round_trip():
    posts = sample_posts()
    data = build("rss", posts)
    parsed = parse(data)
    assert parsed.version == "rss20"
    channel = parsed.feed
    assert channel.title == "Harbor & Pine Logistics — Columbus Depot"
    assert channel.link == HOME  # not the self URL: feedgen takes the last link added
    assert channel.subtitle == "News for staff & friends"
    assert channel.language == "en" and channel.ttl == "15" and channel.generator == "feedapp"
    assert channel.image.href == ICON and channel.image.link == HOME
    assert {"rel": "self", "type": "application/rss+xml", "href": f"{HOME}/feed.rss"}.items() <= \
        next(ln for ln in channel.links if ln.rel == "self").items()
    assert timegm(channel.updated_parsed) == NEWEST.timestamp()  # lastBuildDate: the newest post, not now
    entries = parsed.entries
    assert [e.id for e in entries] == [f"https://x.com/i/status/{p.id}" for p in posts]
    assert not any(e.guidislink for e in entries)
    assert [e.link for e in entries] == [
        "https://x.com/harborpine/status/1790000000000000005", "https://x.com/hpsafety/status/1780000000000000001",
        "https://x.com/harborpine/status/1790000000000000003", "https://x.com/harborpine/status/1790000000000000002",
        "https://x.com/harborpine/status/1790000000000000001"]
    assert [e.title for e in entries] == [
        "New cold-store hours at harborpine.com/hours?x=1&y=2", "RT @hpsafety: Safety week starts Monday",
        "Re: @driver42 Yes, gate 4 is open", "Video", "Proud of this team · Quoting @hpfinance"]
    assert [timegm(e.published_parsed) for e in entries] == [int(p.created_at.timestamp()) for p in posts]
    assert entries[0].author == "Harbor & Pine (@harborpine)"
    assert entries[1].author == "H&P Safety (@hpsafety)"
    summary = entries[0].summary
    assert '<a href="https://harborpine.com/hours?x=1&amp;y=2" rel="nofollow noopener noreferrer">harborpine.com/hours</a>' in summary
    assert 'alt="Forklift training at the depot"' in summary
    assert entries[0].media_content == [{"url": "https://pbs.twimg.com/media/GxAbc123?format=jpg&name=small",
                                         "type": "image/jpeg", "medium": "image", "width": "680", "height": "510"}]
    assert entries[3].media_content == [{"url": "https://video.twimg.com/ext_tw_video/1/pu/vid/480x270/low.mp4",
                                         "type": "video/mp4", "medium": "video", "duration": "31"}]
    # One enclosure per item with media (RSS 2.0), length 0 where X gives no size; none without media.
    assert [e.enclosures for e in entries] == [
        [{"href": "https://pbs.twimg.com/media/GxAbc123?format=jpg&name=small", "type": "image/jpeg", "length": "0"}],
        [], [],
        [{"href": "https://video.twimg.com/ext_tw_video/1/pu/vid/480x270/low.mp4", "type": "video/mp4",
          "length": "0"}],
        []]
    assert data.count(b"<enclosure ") == 2
    assert [el.text for el in etree.fromstring(data).xpath("//item/dc:language", namespaces={
        "dc": "http://purl.org/dc/elements/1.1/"})] == ["en"] * 5  # each item keeps its post's language


def test_atom_round_trip():
    posts = sample_posts()
    data = build("atom", posts)
    parsed = parse(data)
    assert parsed.version == "atom10"
    feed = parsed.feed
    assert feed.id == HOME and feed.title == "Harbor & Pine Logistics — Columbus Depot"
    rels = {ln.rel: (ln.href, ln.type) for ln in feed.links}
    assert rels == {"self": (f"{HOME}/feed.atom", "application/atom+xml"), "alternate": (HOME, "text/html")}
    assert feed.icon == ICON and feed.logo == ICON
    assert feed.updated == "2024-05-01T12:30:15+00:00"
    root = etree.fromstring(data)
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert root.findtext("a:generator", namespaces=ATOM_NS) == "feedapp"
    entries = parsed.entries
    assert [e.id for e in entries] == [f"https://x.com/i/status/{p.id}" for p in posts]
    assert entries[1].title == "RT @hpsafety: Safety week starts Monday" and entries[2].title.startswith("Re: ")
    assert entries[0].link == "https://x.com/harborpine/status/1790000000000000005"
    assert entries[0].author_detail == {"name": "Harbor & Pine (@harborpine)", "href": "https://x.com/harborpine"}
    for entry, post in zip(entries, posts):
        assert entry.content[0].type == "text/html"
        assert timegm(entry.published_parsed) == timegm(entry.updated_parsed) == int(post.created_at.timestamp())
    assert 'alt="Forklift training at the depot"' in entries[0].content[0].value
    assert entries[3].media_content[0]["type"] == "video/mp4"
    assert [[(ln.href, ln.type) for ln in e.links if ln.rel == "enclosure"] for e in entries] == [
        [("https://pbs.twimg.com/media/GxAbc123?format=jpg&name=small", "image/jpeg")], [], [],
        [("https://video.twimg.com/ext_tw_video/1/pu/vid/480x270/low.mp4", "video/mp4")], []]
    langs = [e.get("{http://www.w3.org/XML/1998/namespace}lang") for e in root.findall("a:entry", ATOM_NS)]
    assert langs == ["en"] * 5  # RFC 4287 xml:lang: each entry keeps its post's language


def test_json_feed_round_trip():
    posts = sample_posts()
    data = build("json", posts)
    doc = json.loads(data.decode("utf-8"))
    validate_json_feed(doc)
    assert "Logistics — Columbus Depot".encode() in data  # ensure_ascii=False: UTF-8, not \u2014
    assert (doc["home_page_url"], doc["feed_url"], doc["icon"], doc["language"]) == (
        HOME, f"{HOME}/feed.json", ICON, "en")
    assert doc["description"] == "News for staff & friends"
    items = doc["items"]
    assert [i["id"] for i in items] == [f"https://x.com/i/status/{p.id}" for p in posts]
    assert [i["date_published"] for i in items] == [
        "2024-05-01T12:30:15Z", "2024-05-01T12:25:15Z", "2024-05-01T12:20:15Z", "2024-05-01T12:10:15Z",
        "2024-05-01T12:00:15Z"]
    first = items[0]
    assert first["url"] == "https://x.com/harborpine/status/1790000000000000005"
    # Plain text shows the link's expanded URL (readable, without its scheme), not X's display text.
    assert first["content_text"] == "New cold-store hours at harborpine.com/hours?x=1&y=2\nSee you there"
    assert first["authors"] == [{"name": "Harbor & Pine (@harborpine)", "url": "https://x.com/harborpine",
                                 "avatar": "https://pbs.twimg.com/profile_images/1/avatar_400x400.jpg"}]
    assert first["author"] == first["authors"][0]  # JSON Feed 1.0 readers
    assert first["language"] == "en"
    assert first["image"] == "https://pbs.twimg.com/media/GxAbc123?format=jpg&name=small"
    assert first["attachments"] == [{"url": "https://pbs.twimg.com/media/GxAbc123?format=jpg&name=small",
                                     "mime_type": "image/jpeg"}]
    assert "attachments" not in items[1]
    assert items[3]["title"] == "Video" and "content_text" not in items[3]
    assert items[3]["image"] == "https://pbs.twimg.com/ext_tw_video_thumb/1/pu/img/poster.jpg"
    assert items[3]["attachments"] == [{"url": "https://video.twimg.com/ext_tw_video/1/pu/vid/480x270/low.mp4",
                                        "mime_type": "video/mp4", "duration_in_seconds": 31}]


def test_json_feed_leaves_out_x_no_language_codes():
    doc = json.loads(build("json", [make_post(1, "https://t.co/x", lang="zxx"), make_post(2, "#depot", lang="qht")]))
    assert all("language" not in item for item in doc["items"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_item_html(fmt):
    html = item_html(fmt, build(fmt, sample_posts()))
    first = lxml.html.fragment_fromstring(html[0], create_parent="div")
    img = first.xpath(".//img")[0]
    assert img.attrib == {"src": "https://pbs.twimg.com/media/GxAbc123?format=jpg&name=small",
                          "alt": "Forklift training at the depot", "width": "680", "height": "510"}
    assert "See you there" in first.text_content()  # the second line, after a <br>
    assert 'Reposted by <a href="https://x.com/harborpine"><bdi>@harborpine</bdi></a>' in html[1]
    assert 'Replying to <a href="https://x.com/driver42"><bdi>@driver42</bdi></a>' in html[2]
    vid = lxml.html.fragment_fromstring(html[3], create_parent="div")
    anchors = [(a.get("href"), a.text_content()) for a in vid.xpath(".//a")]
    assert anchors == [("https://x.com/harborpine/status/1790000000000000002", ""),
                       ("https://video.twimg.com/ext_tw_video/1/pu/vid/480x270/low.mp4", "Watch video")]
    assert vid.xpath(".//a/img/@src") == ["https://pbs.twimg.com/ext_tw_video_thumb/1/pu/img/poster.jpg"]
    quote_block = lxml.html.fragment_fromstring(html[4], create_parent="div").xpath(".//blockquote")[0]
    assert "Quarterly numbers: internal only" in quote_block.text_content()
    # "Quoting H&P Finance @hpfinance": the name links to the profile, "View post" to the quoted post.
    assert [(a.get("href"), a.text_content()) for a in quote_block.xpath(".//a[not(img)]")] == [
        ("https://x.com/hpfinance", "H&P Finance @hpfinance"),
        ("https://x.com/hpfinance/status/1700000000000000009", "View post")]
    assert quote_block.xpath("./p")[0].text.startswith("Quoting ")
    assert quote_block.xpath(".//img/@src") == ["https://pbs.twimg.com/media/QuoteImg?format=png&name=small"]
    assert quote_block.xpath(".//img/@alt") == ["Chart"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("staff", [False, True])
@pytest.mark.parametrize("hidden", [True, None], ids=["hidden-now", "not-decided"])
def test_protected_quote_only_for_staff(fmt, staff, hidden):
    # The query's decision counts (hidden now, or no decision at all), not the snapshot stored in the post.
    post = make_post(7, "Look at this", quoted=quote(protected=False), quote_hidden=hidden)
    data = build(fmt, [post], staff=staff)
    html = item_html(fmt, data)[0]
    if staff:
        assert "<blockquote>" in html and "Quarterly numbers: internal only" in html and "@hpfinance" in html
    else:
        assert "Quoted post not available" in html
        assert b"Quarterly numbers" not in data and b"hpfinance" not in data and b"Finance" not in data


@pytest.mark.parametrize("fmt", FORMATS)
def test_deterministic(fmt):
    first, second = build(fmt, sample_posts()), build(fmt, sample_posts())
    assert first == second
    assert build(fmt, []) == build(fmt, [])


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_order_is_as_given(fmt):
    posts = sample_posts()[::-1]  # whatever order the caller chose, not re-sorted
    assert [e.id for e in parse(build(fmt, posts)).entries] == [f"https://x.com/i/status/{p.id}" for p in posts]


def test_empty_feeds_are_valid():
    rss = parse(build("rss", []))
    assert rss.entries == [] and rss.feed.title and timegm(rss.feed.updated_parsed) == 1142974214  # a fixed date
    atom = parse(build("atom", []))
    assert atom.entries == [] and atom.feed.updated == "2006-03-21T20:50:14+00:00"
    doc = json.loads(build("json", []))
    validate_json_feed(doc)
    assert doc["items"] == []


def test_minimal_feed_info():
    bare = FeedInfo(title="Depot", subtitle="", home_url=HOME, self_url=f"{HOME}/feed.rss", feed_id=HOME,
                    ttl_minutes=5)
    for fmt in FORMATS:
        data = build(fmt, sample_posts(), feed_info=bare)
        if fmt == "json":
            validate_json_feed(json.loads(data))
        else:
            assert parse(data).feed.title == "Depot"
    assert b"<image>" not in build("rss", [], feed_info=bare)


HREF = 'https://example.com/search?q="dock 4"&sort=new&x=<y>'
HOSTILE = {  # text, its expected title, its expected plain text
    # Controls go; the separators VT, US and FF become spaces (never a line break in a title).
    "control": ("Gate\x00 4\x01 open\x0b now\x1f\x0c\x08 \ud800\ufffe\uffff ok", "Gate 4 open  now    ok",
                "Gate 4 open  now    ok"),
    "cdata_end": ("Trap ]]> here <![CDATA[ x ]]>",) * 3,
    "script": ("<script>alert(1)</script> & <b>bold</b>",) * 3,
    "emoji_zwj": ("Team 👩‍🔧👨‍👩‍👧 🏳️‍🌈 ready",) * 3,
    # An unterminated override is closed (U+202C PDF) wherever the text is plain text.
    "rtl": ("\u202eevil.exe\u200f שלום", "\u202eevil.exe\u200f שלום\u202c", "\u202eevil.exe\u200f שלום\u202c"),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_hostile_text(fmt, case):
    text, expected_title, expected = HOSTILE[case]
    data = build(fmt, [make_post(11, text)])
    assert b"<script" not in data.lower() and b"<b>" not in data
    assert item_titles(fmt, data) == [expected_title]
    html = item_html(fmt, data)[0]
    assert "<script" not in html and "<b>" not in html
    assert lxml.html.fragment_fromstring(html, create_parent="div").text_content() == expected
    if fmt == "json":
        validate_json_feed(json.loads(data))
        assert json.loads(data)["items"][0]["content_text"] == expected
    else:
        entry = parse(data).entries[0]
        if entry.title_detail.type == "text/html":  # Atom: a title quoting markup is escaped HTML
            assert fmt == "atom" and lxml.html.fragment_fromstring(
                entry.title, create_parent="div").text_content() == expected_title
        else:
            assert entry.title == expected_title  # feedparser reads titles as plain text
        assert "<script" not in entry.summary  # after feedparser's own sanitizing


@pytest.mark.parametrize("fmt", FORMATS)
def test_control_characters_in_every_field(fmt):
    bad = "\x00\x01\x0b\x1f\ud800\uffff"
    feed_info = FeedInfo(title=f"Depot{bad}", subtitle=f"News{bad}", home_url=HOME, self_url=f"{HOME}/feed",
                         feed_id=HOME, ttl_minutes=5)
    quoted = {**quote(False, media=[{**QUOTED_PHOTO, "alt_text": f"Chart{bad}"}]), "text": f"Numbers{bad}"}
    post = make_post(15, f"Hi{bad}", author_name=f"Harbor{bad}", media=[photo(alt=f"Truck{bad}")], quoted=quoted,
                     reply_to_id="1", reply_to_username="driver42")
    data = build(fmt, [post], feed_info=feed_info)
    assert not re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]|\\u00[01]|\\ud800|\xef\xbf\xbf", data)
    if fmt == "json":
        doc = json.loads(data)
        validate_json_feed(doc)
        assert doc["title"] == "Depot  " and doc["items"][0]["authors"][0]["name"] == "Harbor   (@harborpine)"
    else:
        entry = parse(data).entries[0]
        assert entry.title == "Re: Hi · Quoting @hpfinance" and entry.author == "Harbor   (@harborpine)"
    html = lxml.html.fragment_fromstring(item_html(fmt, data)[0], create_parent="div")
    assert html.xpath(".//img/@alt") == ["Truck  ", "Chart  "] and "Numbers  " in html.text_content()


@pytest.mark.parametrize("fmt", FORMATS)
def test_long_text(fmt):
    text = ("word " * 5000).strip()  # 24,999 characters
    data = build(fmt, [make_post(12, text + "!")])
    title = item_titles(fmt, data)[0]
    assert title.endswith("…") and len(title) <= 100
    assert len(item_html(fmt, data)[0]) > 25_000
    if fmt != "json":
        parse(data)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("media", "expected"), [([photo(alt=None)], "Photo"), ([video("animated_gif")], "Video")])
def test_media_only_post(fmt, media, expected):
    data = build(fmt, [make_post(13, "", media=media)])
    assert item_titles(fmt, data) == [expected]
    html = lxml.html.fragment_fromstring(item_html(fmt, data)[0], create_parent="div")
    assert html.xpath(".//img/@alt") == ["" if expected == "Photo" else "Video"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_link_with_quote_and_ampersand(fmt):
    text = "Find dock 4 here"
    data = build(fmt, [make_post(14, text, links=[link(text, "dock 4", HREF)])])
    html = lxml.html.fragment_fromstring(item_html(fmt, data)[0], create_parent="div")
    assert [(a.get("href"), a.text) for a in html.xpath(".//a")] == [(HREF, "dock 4")]
    if fmt != "json":
        assert "dock 4</a>" in parse(data).entries[0].summary


def test_opml():
    data = feeds.opml('Harbor & Pine "feeds" <all>', [
        ("Columbus & Co", f"{HOME}/feed.rss?a=1&b=2", HOME),
        ("Bad\x01 name", "https://feeds.example.com/all.rss", "https://feeds.example.com/"),
    ])
    root = etree.fromstring(data)
    assert data.startswith(b"<?xml") and root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title") == 'Harbor & Pine "feeds" <all>'
    assert root.find("head/dateCreated") is None
    outlines = root.findall("body/outline")
    assert [dict(o.attrib) for o in outlines] == [
        {"type": "rss", "text": "Columbus & Co", "title": "Columbus & Co", "xmlUrl": f"{HOME}/feed.rss?a=1&b=2",
         "htmlUrl": HOME},
        {"type": "rss", "text": "Bad name", "title": "Bad name", "xmlUrl": "https://feeds.example.com/all.rss",
         "htmlUrl": "https://feeds.example.com/"},
    ]
    assert feeds.opml("Empty", []) == feeds.opml("Empty", [])


def thread(*texts: str, total: int | None = None) -> list[Post]:
    """A self-thread of @harborpine as queries.posts_for_feed leaves it: newest part first."""
    posts = [make_post(1800000000000000001 + i, text, minutes_ago=10 - i, reply_to_id=None if i == 0 else
                       str(1800000000000000000 + i), reply_to_user_id="7" if i else None, author_id="7",
                       reply_to_username="harborpine" if i else None, thread_id=None if i == 0 else 1800000000000000001)
             for i, text in enumerate(texts)]
    head, total = posts[0], total or len(posts)
    for position, post in enumerate(posts, start=1):
        post.thread_position, post.thread_total = position, total
        if position > 1:
            post.thread_head = head
    head.thread_parts = tuple(posts[1:])
    return posts[::-1]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_thread_reads_in_context_never_as_replies(fmt):
    posts = thread("Peak changes 🧵 1/3: plans lock at 05:30", "2/3: scanners get a new option",
                   "3/3: questions? Ask your lead", total=3)
    data = build(fmt, posts)
    assert item_titles(fmt, data) == ["Continued 3/3: questions? Ask your lead",
                                      "Continued 2/3: scanners get a new option",
                                      "Thread 1/3: Peak changes 🧵 1/3: plans lock at 05:30"]
    assert b"Re:" not in data and b"Replying to" not in data  # an account's reply to itself is a thread
    html = item_html(fmt, data)
    head = lxml.html.fragment_fromstring(html[2], create_parent="div")
    # The first post's item carries the parts known when built, in order, each numbered and linked.
    assert [(a.text, a.get("href")) for a in head.xpath(".//p/a[not(img)]") if "/" in (a.text or "")] == [
        ("1/3", "https://x.com/harborpine/status/1800000000000000001"),
        ("2/3", "https://x.com/harborpine/status/1800000000000000002"),
        ("3/3", "https://x.com/harborpine/status/1800000000000000003")]
    text = head.text_content()
    assert text.index("plans lock") < text.index("scanners") < text.index("questions?")
    # A later part is its own item, labelled as a continuation, with a line linking to the first post.
    later = lxml.html.fragment_fromstring(html[1], create_parent="div")
    assert [(a.text, a.get("href")) for a in later.xpath(".//a")][0] == (
        "Continues a thread", "https://x.com/harborpine/status/1800000000000000001")
    assert later.xpath("./p")[0].text_content() == "2/3 · Continues a thread"


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_reply_to_another_account_quotes_its_parent(fmt):
    parent = make_post(1800000000000000100, "Is gate 4 open today?", author_username="driver42",
                       author_name="Dee Driver")
    reply = make_post(1800000000000000101, "@driver42 Yes, gate 4 is open", reply_to_id=str(parent.id),
                      reply_to_username="driver42", reply_to_user_id="42", author_id="7")
    reply.reply_parent = parent
    data = build(fmt, [reply])
    assert item_titles(fmt, data) == ["Re: @driver42 Yes, gate 4 is open"]
    html = lxml.html.fragment_fromstring(item_html(fmt, data)[0], create_parent="div")
    assert html.xpath("./p")[0].text_content() == "Replying to @driver42"
    block = html.xpath(".//blockquote")[0]
    assert "Is gate 4 open today?" in block.text_content() and "Dee Driver" in block.text_content()
    assert block.xpath(".//a/@href") == ["https://x.com/driver42/status/1800000000000000100"]


def test_a_reply_to_itself_outside_a_known_thread_is_not_a_reply():
    post = make_post(5, "More on that", reply_to_id="4", reply_to_username="harborpine", reply_to_user_id="7",
                     author_id="7")
    data = build("rss", [post])
    assert item_titles("rss", data) == ["More on that"] and b"Replying to" not in data


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_repost_names_every_reposter_and_keeps_the_original_id(fmt):
    post = make_post(1790000000000000004, "Safety week starts Monday", repost_of_id="1780000000000000001",
                     canonical_id=1780000000000000001, author_username="hpsafety", author_name="H&P Safety")
    post.reposted_by = ("HPL_Columbus", "harborpine")
    data = build(fmt, [post])
    html = item_html(fmt, data)[0]
    assert ('Reposted by <a href="https://x.com/HPL_Columbus"><bdi>@HPL_Columbus</bdi></a>, '
            '<a href="https://x.com/harborpine"><bdi>@harborpine</bdi></a>') in html
    # The item's id is the post's own: the same whichever copy of a post reached twice the feed keeps.
    assert b"https://x.com/i/status/1780000000000000001" in data and b"1790000000000000004" not in data


def test_labels_come_in_the_feeds_language():
    french = feeds.Labels(reposted_by="Republié par", replying_to="En réponse à", watch_video="Voir la vidéo",
                          quoting="Citation de", view_post="Voir le message", thread="Fil", continued="Suite",
                          continues="Suite d’un fil", reply="Rép. :", video="Vidéo")
    feed_info = FeedInfo(**{**info("rss").__dict__, "language": "fr", "labels": french})
    posts = sample_posts() + thread("Un", "Deux")
    data = build("rss", posts, feed_info=feed_info)
    titles = item_titles("rss", data)
    assert "Rép. : @driver42 Yes, gate 4 is open" in titles and "Proud of this team · Citation de @hpfinance" in titles
    assert "Suite 2/2: Deux" in titles and "Fil 1/2: Un" in titles
    text = b"".join(html.encode() for html in item_html("rss", data)).decode()
    for label in ("Republié par", "En réponse à", "Voir la vidéo", "Citation de", "Voir le message", "Suite d’un fil"):
        assert label in text
    for english in ("Reposted by", "Replying to", "Watch video", "Quoting", "View post", "Continues a thread"):
        assert english not in text
    assert parse(data).feed.language == "fr"


HOLIDAY = "Holiday pay rules for Thursday: example.com/people/holiday… Lyon team: see your intranet"


@pytest.mark.parametrize("fmt", FORMATS)
def test_titles_show_readable_urls_never_x_display_text(fmt):
    post = make_post(21, HOLIDAY, links=[link(HOLIDAY, "example.com/people/holiday…",
                                              "https://example.com/people/holiday-schedule")])
    data = build(fmt, [post])
    assert item_titles(fmt, data) == [
        "Holiday pay rules for Thursday: example.com/people/holiday-schedule Lyon team: see your intranet"]
    assert "holiday…" not in item_titles(fmt, data)[0]
    if fmt == "json":
        assert json.loads(data)["items"][0]["content_text"] == HOLIDAY.replace(
            "example.com/people/holiday…", "example.com/people/holiday-schedule")


@pytest.mark.parametrize("fmt", FORMATS)
def test_long_titles_are_cut_at_a_word_near_100_characters_with_their_label(fmt):
    text = "Winter storm warning for central Ohio tonight: the depot stays open but first-wave routes are delayed two hours"
    posts = thread(text, "More")
    titles = item_titles(fmt, build(fmt, posts))
    assert titles[1] == "Thread 1/2: Winter storm warning for central Ohio tonight: the depot stays open but first-wave…"
    assert all(len(title) <= 100 for title in titles)


@pytest.mark.parametrize("fmt", FORMATS)
def test_items_link_where_the_caller_says(fmt):
    posts = sample_posts()
    own = {posts[0].id: "https://feeds.example.com/posts/1790000000000000005"}  # e.g. a staff-only post's page
    data = {"rss": feeds.rss, "atom": feeds.atom, "json": jsonfeed.json_feed}[fmt](info(fmt), posts, staff=True, links=own)
    if fmt == "json":
        urls = [item["url"] for item in json.loads(data)["items"]]
    else:
        urls = [entry.link for entry in parse(data).entries]
    assert urls[:2] == [own[posts[0].id], "https://x.com/hpsafety/status/1780000000000000001"]


def hostile_posts() -> list[Post]:
    """Every hostile text, a hostile link, reply, quote and thread."""
    posts = [make_post(100 + i, text, minutes_ago=i) for i, (text, _, _) in enumerate(HOSTILE.values())]
    text = "Find dock 4 here"
    posts.append(make_post(120, text, minutes_ago=20, links=[link(text, "dock 4", HREF)], media=[photo(alt="<b>")]))
    bad = "\x00\x01\x0b\x1f\ud800\uffff]]>"
    posts.append(make_post(121, f"Hi{bad}", minutes_ago=21, author_name=f"Harbor{bad}", media=[video()],
                           quoted={**quote(False), "text": f"Numbers{bad}"}, reply_to_id="1",
                           reply_to_username="driver42"))
    return posts + thread("\u202eevil 1/2", "<script>2/2</script>")


def test_the_w3c_validator_finds_nothing_to_report(tmp_path):
    documents = {}
    for fmt in ("rss", "atom"):
        for name, posts in (("sample", sample_posts()), ("hostile", hostile_posts()), ("empty", [])):
            documents[f"{HOME}/{name}/feed.{fmt}"] = build(fmt, posts, feed_info=FeedInfo(
                **{**info(fmt).__dict__, "self_url": f"{HOME}/{name}/feed.{fmt}"}))
    problems = w3c_problems(tmp_path, documents)
    # The one warning accepted: in RSS, whose <title> has no type, the validator warns about any title
    # holding an HTML end tag ("</script>"), here the hostile posts that quote one. The title is
    # escaped plain text, as RSS 2.0 says; rewriting what a post says to dodge the check would misquote
    # it. (Atom titles say type="html" for such text, and have no warning.)
    hostile_rss = f"{HOME}/hostile/feed.rss"
    assert [p["type"] for p in problems.pop(hostile_rss)] == ["ContainsHTML"]
    assert problems == {url: [] for url in documents if url != hostile_rss}  # no errors and no warnings
