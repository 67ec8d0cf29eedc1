"""The feed routes on the demo data, parsed back with a real feed parser."""

from __future__ import annotations

import json
from datetime import datetime

import feedparser
import pytest
from lxml import etree
from sqlalchemy import select

from feedapp.models import Post, Source


@pytest.fixture
def demo(runner):
    assert runner.invoke(args=["demo"]).exit_code == 0


def public_ids(sessions, office=None) -> list[int]:
    with sessions() as s:
        rows = s.scalars(select(Post).join(Source).order_by(Post.id.desc())).all()
        ids, shown = [], set()
        for p in rows:  # newest first: a post reached twice in the scope shows where it last appeared
            if p.source.is_staff_only or not (p.source.office is None or (office and p.source.office.slug == office)):
                continue
            if (p.repost_of_id or str(p.id)) not in shown:
                shown.add(p.repost_of_id or str(p.id))
                ids.append(p.id)
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


def test_opml_lists_every_public_feed(demo, client):
    response = client.get("/feeds.opml")
    assert response.mimetype == "text/x-opml"
    outlines = etree.fromstring(response.data).findall(".//outline")
    assert [(o.get("text"), o.get("xmlUrl")) for o in outlines] == [
        ("Company feed", "http://localhost/feed.rss"),
        ("Columbus Depot (Ohio)", "http://localhost/offices/columbus/feed.rss"),
        ("Lyon Saint-Priest Hub", "http://localhost/offices/lyon/feed.rss"),
    ]
    for outline in outlines:
        xml_path = outline.get("xmlUrl").removeprefix("http://localhost")
        assert feedparser.parse(client.get(xml_path).data).bozo == 0


@pytest.mark.parametrize("url", ["/feed.xml", "/offices/atlantis/feed.rss", "/offices/lyon/feed.txt"])
def test_unknown_feeds_are_404(demo, client, url):
    assert client.get(url).status_code == 404


def test_an_empty_database_still_serves_valid_feeds(client):
    for fmt in ("rss", "atom"):
        assert feedparser.parse(client.get(f"/feed.{fmt}").data).bozo == 0
    assert json.loads(client.get("/feed.json").data)["items"] == []
