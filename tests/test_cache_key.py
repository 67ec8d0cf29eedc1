"""The render-cache key and the ETag cover every input a cached body depends on.

For each cached URL and each input a request can carry, two requests that differ
only in that input, each rendered from an empty cache, must either get different
ETags (different cache entries) or byte-identical bodies. Then the second request
made right after the first, with the caches warm, must get exactly its own fresh
body: a cache can never hand one request the body built for another.
"""

from __future__ import annotations

import gzip
import re

import brotli
import pytest

from feedapp import accounts
from feedapp.web.http import render_cache
from tests.auth_helpers import PASSWORD, login, make_staff, path_of

PAGES = ["/", "/offices/lyon"]
FEEDS = ["/feed.rss", "/feed.atom", "/feed.json", "/offices/lyon/feed.rss", "/feeds.opml"]

# (input, request options A, request options B): B differs from A in that one input only.
VARIATIONS = [
    ("unknown query parameter", {}, {"query_string": "anything=x%22%3E%3Cb%3Eboo"}),
    ("known query parameter", {}, {"query_string": "before=922337203685477580"}),
    ("non-canonical cursor", {"query_string": "before=922337203685477580"},
     {"query_string": "before=0922337203685477580"}),
    ("repeated parameter", {"query_string": "before=922337203685477580"},
     {"query_string": "before=922337203685477580&before=1"}),
    ("office cookie", {}, {"cookies": {"office": "columbus"}}),
    ("stale office cookie", {}, {"cookies": {"office": "atlantis"}}),
    ("language cookie", {}, {"cookies": {"lang": "fr"}}),
    ("Accept-Language", {}, {"headers": {"Accept-Language": "fr-FR,fr;q=0.9"}}),
    ("other cookie", {}, {"cookies": {"_ga": "GA1.2.3"}}),
    ("Host", {}, {"base_url": "http://feeds.example.com"}),
    ("scheme", {}, {"base_url": "https://localhost"}),
    ("X-Forwarded-Prefix", {}, {"headers": {"X-Forwarded-Prefix": "/evil"}}),
    ("X-Forwarded-Host without a trusted proxy", {}, {"headers": {"X-Forwarded-Host": "evil.example",
                                                                   "X-Forwarded-Proto": "https"}}),
    ("Accept-Encoding", {"headers": {"Accept-Encoding": "identity"}}, {"headers": {"Accept-Encoding": "br"}}),
    ("User-Agent and Referer", {}, {"headers": {"User-Agent": "NetNewsWire", "Referer": "http://other.example/"}}),
]


@pytest.fixture
def demo(app, runner):
    assert runner.invoke(args=["demo"]).exit_code == 0
    return app


def forget(app) -> None:
    """Empty the render cache and the fast path: the next request renders from scratch."""
    render_cache(app).clear()
    app.extensions["feedapp.fastpath"].clear()


def body(response) -> bytes:
    """The decoded body of a response."""
    coding = response.headers.get("Content-Encoding")
    data = response.get_data()
    return {"br": brotli.decompress, "gzip": gzip.decompress}.get(coding, lambda d: d)(data)


def fetch(app, url: str, options: dict, client=None):
    """GET url with the variation's options (query string, cookies, headers, base URL)."""
    client = client or app.test_client()
    for name, value in options.get("cookies", {}).items():
        client.set_cookie(name, value)
    response = client.get(url, query_string=options.get("query_string"), headers=options.get("headers", {}),
                          base_url=options.get("base_url", "http://localhost"))
    assert response.status_code == 200, (url, options, response.status_code)
    return response


def check_variation(app, url: str, a: dict, b: dict, client_a=None, client_b=None) -> None:
    forget(app)
    first = fetch(app, url, a, client_a)
    forget(app)
    second = fetch(app, url, b, client_b)
    assert first.headers["ETag"] != second.headers["ETag"] or body(first) == body(second), url
    # The same two requests in a row, caches warm: the second gets its own body, not the first's.
    forget(app)
    fetch(app, url, a, client_a)
    again = fetch(app, url, b, client_b)
    assert body(again) == body(second), url
    assert again.headers["ETag"] == second.headers["ETag"], url


# The key is made from the request, the same on both engines: the request inputs on SQLite (105 cases),
# who reads (below) on both.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("url", PAGES + FEEDS)
@pytest.mark.parametrize("name, a, b", VARIATIONS, ids=[v[0] for v in VARIATIONS])
def test_every_request_input_changes_the_key_or_cannot_change_the_body(demo, url, name, a, b):
    check_variation(demo, url, a, b)


@pytest.mark.parametrize("url", PAGES + FEEDS)
def test_who_reads_changes_the_key_or_cannot_change_the_body(demo, url):
    sessions = __import__("feedapp.db", fromlist=["sessions"]).sessions(demo)
    make_staff(sessions, "ana", office="lyon")
    make_staff(sessions, "ben", office="columbus")
    readers = {}
    for name in ("ana", "ben"):
        readers[name] = demo.test_client()
        assert login(readers[name], name, PASSWORD).status_code == 303
    check_variation(demo, url, {}, {}, client_a=demo.test_client(), client_b=readers["ana"])
    check_variation(demo, url, {}, {}, client_a=readers["ana"], client_b=readers["ben"])


def test_a_query_string_never_reaches_the_shared_front_page(demo):
    client = demo.test_client()
    assert client.get("/?anything=x%22%3E%3Cb%3Eboo&lang=fr").status_code == 200
    page = client.get("/").get_data(as_text=True)
    assert "anything" not in page and "boo" not in page
    assert 'href="/language/fr?next=/"' in page


def test_after_rotating_a_private_feed_token_the_feed_names_the_new_url(demo):
    sessions = __import__("feedapp.db", fromlist=["sessions"]).sessions(demo)
    user_id = make_staff(sessions, "ana", office="lyon")
    client = demo.test_client()
    tokens = []
    for _ in range(2):
        with sessions() as s:
            tokens.append(accounts.rotate_feed_token(s, s.get(accounts.User, user_id)))
            s.commit()
        feed = client.get(f"/private/{tokens[-1]}/feed.atom")
        assert feed.status_code == 200
        self_links = re.findall(r'<link href="([^"]+)" rel="self"', body(feed).decode())
        assert [path_of(link) for link in self_links] == [f"/private/{tokens[-1]}/feed.atom"]
    assert demo.test_client().get(f"/private/{tokens[0]}/feed.atom").status_code == 404


def test_a_one_time_message_is_never_cached_or_shared(demo):
    sessions = __import__("feedapp.db", fromlist=["sessions"]).sessions(demo)
    make_staff(sessions, "ana")
    client = demo.test_client()
    with client.session_transaction() as session:
        session["_flashes"] = [("message", "Only for ana")]
    flashed = client.get("/")
    assert "Only for ana" in flashed.get_data(as_text=True)
    assert flashed.headers["Cache-Control"] == "private, no-store" and "ETag" not in flashed.headers
    assert "Only for ana" not in client.get("/").get_data(as_text=True)
    assert "Only for ana" not in demo.test_client().get("/").get_data(as_text=True)
