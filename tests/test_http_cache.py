"""Validators, 304s, Cache-Control, compression and the render cache."""

from __future__ import annotations

import gzip
import threading
from datetime import datetime, timezone

import brotli
import pytest
from sqlalchemy import select

from feedapp.ingest.store import store_posts
from feedapp.models import Source
from feedapp.web.http import RenderCache, render_cache
from feedapp.xapi.types import XPost, XUser

from .fakemedia import unsigned

URLS = ["/", "/offices/lyon", "/feed.rss", "/feed.atom", "/feed.json", "/offices/lyon/feed.rss", "/feeds.opml"]


@pytest.fixture
def demo(runner):
    assert runner.invoke(args=["demo"]).exit_code == 0


def add_post(sessions, pid: str, username="HarborPineNews"):
    with sessions() as s:
        src = s.scalars(select(Source).where(Source.username == username)).one()
        store_posts(s, src, [XPost(id=pid, author=XUser("", "", ""), text="new shift board", links=(), media=(),
                                      created_at=datetime(2030, 1, 1, tzinfo=timezone.utc))])
        s.commit()


@pytest.mark.parametrize("url", URLS)
def test_validators_answer_304_without_rendering(demo, app, client, url):
    first = client.get(url)
    assert first.status_code == 200
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert etag.startswith('W/"')
    renders = render_cache(app).renders

    by_etag = client.get(url, headers={"If-None-Match": etag})
    by_date = client.get(url, headers={"If-Modified-Since": modified})

    for answer in (by_etag, by_date):
        assert answer.status_code == 304 and answer.data == b""
        assert answer.headers["ETag"] == etag and answer.headers["Cache-Control"] == first.headers["Cache-Control"]
    assert render_cache(app).renders == renders


def test_a_new_post_changes_validators_and_body(demo, client, sessions):
    first = client.get("/feed.rss")
    add_post(sessions, "2900000000000000009")
    again = client.get("/feed.rss", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 200 and again.headers["ETag"] != first.headers["ETag"]
    assert b"https://x.com/i/status/2900000000000000009" in again.data


def test_validators_differ_by_office_and_page(demo, client):
    etags = {client.get(u).headers["ETag"] for u in ("/", "/offices/lyon", "/offices/columbus", "/feed.rss", "/feed.json")}
    assert len(etags) == 5
    cursor = client.get("/").get_data(as_text=True).split('rel="next" href="?before=')[1].split('"')[0]
    assert client.get(f"/?before={cursor}").headers["ETag"] not in etags


def test_cache_control_public_feeds_match_the_poll_interval(demo, make_app):
    app = make_app(FEEDAPP_POLL_INTERVAL=600, FEEDAPP_STREAM="off")
    app.test_cli_runner().invoke(args=["demo"])
    client = app.test_client()
    rss = client.get("/feed.rss")
    assert rss.headers["Cache-Control"] == "public, max-age=600"
    assert b"<ttl>10</ttl>" in rss.data
    page = client.get("/")
    assert page.headers["Vary"] == "Accept-Encoding, Cookie, Accept-Language"
    # A signed-in reader sees more; pages are translated.
    assert client.get("/offices/lyon").headers["Vary"] == "Accept-Encoding, Cookie, Accept-Language"
    assert client.get("/feed.rss").headers["Vary"] == "Accept-Encoding"  # public feeds ignore cookies


def test_with_the_stream_public_feeds_and_pages_are_reused_for_seconds_only(demo, make_app):
    """Posts land seconds after X delivers them: a cache holding a feed for the poll interval would hide them."""
    app = make_app(FEEDAPP_POLL_INTERVAL=600, FEEDAPP_STREAM="on")
    app.test_cli_runner().invoke(args=["demo"])
    client = app.test_client()
    rss = client.get("/feed.rss")
    assert rss.headers["Cache-Control"] == "public, max-age=10"
    assert b"<ttl>1</ttl>" in rss.data
    assert client.get("/feed.json").headers["Cache-Control"] == "public, max-age=10"
    assert client.get("/").headers["Cache-Control"] == "public, max-age=10"


@pytest.mark.parametrize("encoding, decode", [("br", brotli.decompress), ("gzip", gzip.decompress)])
def test_responses_are_compressed_when_the_client_accepts(demo, client, encoding, decode):
    plain = client.get("/feed.rss", headers={"Accept-Encoding": "identity"})
    packed = client.get("/feed.rss", headers={"Accept-Encoding": f"{encoding}, deflate"})
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == encoding
    assert decode(packed.data) == plain.data and len(packed.data) < len(plain.data) / 2
    assert packed.headers["ETag"] == plain.headers["ETag"]  # weak: same content, any coding


def test_concurrent_misses_render_once(demo, app):
    cache, barrier, statuses = render_cache(app), threading.Barrier(8), []
    before = cache.renders

    def fetch():
        client = app.test_client()
        barrier.wait()
        statuses.append(client.get("/offices/columbus/feed.atom").status_code)

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 8
    assert cache.renders == before + 1


def test_a_failed_render_leaves_no_lock_behind():
    cache = RenderCache()

    def broken():
        raise ConnectionError("database down")

    for n in range(3):
        with pytest.raises(ConnectionError):
            cache.get(("v", n), broken)
    assert cache._key_locks == {} and cache.renders == 0
    assert cache.get(("v", 0), lambda: "built") == "built"  # the key works again once the database is back


def test_workers_reread_the_content_versions_only_after_the_ttl(demo, app, sessions):
    from feedapp.web.state import StateCache

    now = [100.0]
    cache = StateCache(app, ttl=1.0, clock=lambda: now[0])
    first = cache.get()
    add_post(sessions, "2900000000000000010")
    now[0] += 0.5
    assert cache.get() is first  # within the TTL: no database read at all
    now[0] += 0.6
    second = cache.get()
    assert second.versions == {**first.versions, "public:company": first.versions["public:company"] + 1}
    now[0] += 1.1
    assert cache.get() is second  # re-read, nothing changed: the same state (the fast path relies on it)


def fastpath(app):
    return app.extensions["feedapp.fastpath"]


def by_flask(app, client, url, **kw):
    """The answer Flask itself gives (the fast path emptied first; the render cache stays warm)."""
    fastpath(app).clear()
    return client.get(url, **kw)


@pytest.mark.parametrize("url", URLS)
def test_repeat_conditional_gets_skip_flask_with_the_same_headers(demo, app, client, url):
    etag = client.get(url).headers["ETag"]
    flask_304 = by_flask(app, client, url, headers={"If-None-Match": etag})
    client.get(url)  # remembered again
    hits = fastpath(app).hits
    fast = client.get(url, headers={"If-None-Match": etag})
    assert fastpath(app).hits == hits + 1
    assert fast.status_code == flask_304.status_code == 304 and fast.data == b""
    assert sorted(fast.headers.items()) == sorted(flask_304.headers.items())
    # RFC 9110 §15.4.5: what updates the stored response; the browser keeps the 200's other headers.
    assert {k.lower() for k in fast.headers.keys()} == {"etag", "cache-control", "vary"}
    assert client.get(url, headers={"If-None-Match": 'W/"other"'}).status_code == 200


# Picking the stored encoding does not touch the database: the encodings on SQLite; the conditional GETs above
# and the content changes below on both engines.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("accept", ["br", "gzip, deflate", "identity", "", "br;q=0, gzip;q=0.5", "*"])
def test_repeat_gets_are_answered_without_flask_exactly_as_flask_would(demo, app, client, url, accept):
    headers = {"Accept-Encoding": accept}
    flask_200 = by_flask(app, client, url, headers=headers)
    renders, hits = render_cache(app).renders, fastpath(app).hits
    fast = client.get(url, headers=headers)
    assert fastpath(app).hits == hits + 1 and render_cache(app).renders == renders
    assert fast.status_code == 200 and fast.data == flask_200.data
    assert sorted(fast.headers.items()) == sorted(flask_200.headers.items())
    head = client.head(url, headers=headers)
    assert fastpath(app).hits == hits + 2
    assert head.data == b"" and head.headers["Content-Length"] == str(len(fast.data))


def test_the_fast_path_forgets_answers_when_the_content_changes(demo, app, client, sessions):
    first = client.get("/feed.rss")
    client.get("/feed.rss")
    add_post(sessions, "2900000000000000012")
    hits = fastpath(app).hits
    fresh = client.get("/feed.rss")
    assert fastpath(app).hits == hits
    assert fresh.headers["ETag"] != first.headers["ETag"] and b"2900000000000000012" in fresh.data


def test_fast_path_never_answers_for_other_content_cookies_or_sessions(demo, app, client, sessions):
    etag = client.get("/").headers["ETag"]
    client.get("/", headers={"If-None-Match": etag})
    hits = fastpath(app).hits
    client.set_cookie("office", "lyon")
    assert client.get("/", headers={"If-None-Match": etag}).status_code == 200  # another office: another body
    client.delete_cookie("office")
    client.set_cookie("session", "anything")
    assert client.get("/", headers={"If-None-Match": etag}).status_code == 304  # Flask's own 304
    client.delete_cookie("session")
    add_post(sessions, "2900000000000000011")
    assert client.get("/", headers={"If-None-Match": etag}).status_code == 200  # new content
    assert fastpath(app).hits == hits


def test_etags_are_keyed_by_the_secret_so_nodes_agree_and_nobody_else_can_compute_them(demo, make_app):
    node_a, node_b = make_app(FEEDAPP_SECRET_KEY="shared key"), make_app(FEEDAPP_SECRET_KEY="shared key")
    other = make_app(FEEDAPP_SECRET_KEY="another key")
    for url in URLS:
        a, b, c = (app.test_client().get(url) for app in (node_a, node_b, other))
        assert a.data == b.data
        # The same content under another key; only the signatures of image URLs (/media/…) differ, being keyed too.
        assert unsigned(c.data) == unsigned(a.data)
        assert a.headers["ETag"] == b.headers["ETag"]  # a CDN in front of both nodes stays coherent
        assert c.headers["ETag"] != a.headers["ETag"]  # not derivable from the content version alone
