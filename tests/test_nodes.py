"""Two web nodes (real gunicorn processes) on one PostgreSQL database and one Redis behave as one site.

The deployment the README describes for several machines: every node runs `gunicorn wsgi:app` with the
project's gunicorn.conf.py, the same FEEDAPP_SECRET_KEY and FEEDAPP_BASE_URL, the database on PostgreSQL
and the sign-in throttle on Redis. A browser behind a load balancer talks to whichever node answers.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import pytest
import requests
from sqlalchemy import select

from feedapp.db import sessions as app_sessions
from feedapp.ingest.store import store_posts
from feedapp.models import Source
from feedapp.xapi.types import XPost, XUser
from tests.auth_helpers import PASSWORD, make_staff
from tests.gunicorn_proc import base_env, gunicorn

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
URLS = ["/", "/offices/lyon", "/feed.rss", "/feed.atom", "/feed.json", "/offices/columbus/feed.rss", "/feeds.opml"]
PUBLIC_BASE = "https://feed.example.com"
SAFETY_DEADLINE_S = 120  # only so a broken node cannot hang the suite; nothing asserts on time


@pytest.fixture
def site(request, make_app, tmp_path, redis_url):
    """Demo data on PostgreSQL, then two gunicorn nodes sharing it and one Redis; yields (app, [node URLs])."""
    db_url = request.getfixturevalue("db_url")
    app = make_app()
    assert app.test_cli_runner().invoke(args=["demo"]).exit_code == 0
    env = base_env(tmp_path, db_url, FEEDAPP_BASE_URL=PUBLIC_BASE, FEEDAPP_RATELIMIT_STORAGE_URL=redis_url,
                   FEEDAPP_STATE_TTL="1")
    with gunicorn(env, "--workers", "2") as one, gunicorn(env, "--workers", "2") as two:
        yield app, [one.url, two.url]


def browser() -> requests.Session:
    """A client that keeps cookies across both nodes, as a browser behind one host name does."""
    client = requests.Session()
    client.trust_env = False  # 127.0.0.1 only, never a proxy from the environment
    return client


def sign_in(client, node: str, username: str, password: str) -> int:
    token = CSRF_RE.search(client.get(f"{node}/login", timeout=60).text)[1]
    answer = client.post(f"{node}/login", data={"csrf_token": token, "username": username, "password": password},
                         allow_redirects=False, timeout=60)
    return answer.status_code


def signed_in(client, node: str) -> bool:
    status = client.get(f"{node}/account", allow_redirects=False, timeout=60).status_code
    assert status in (200, 302), status
    return status == 200


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_sign_in_on_one_node_works_on_the_other_and_a_sign_out_ends_it_everywhere(site):
    app, (one, two) = site
    make_staff(app_sessions(app), "ana", office="lyon")
    client = browser()
    assert sign_in(client, one, "ana", PASSWORD) == 303
    assert signed_in(client, one) and signed_in(client, two)
    copied = browser()
    copied.cookies.update(client.cookies)  # the same cookies in another browser (a copied cookie)
    token = CSRF_RE.search(client.get(f"{two}/logout", timeout=60).text)[1]
    assert client.post(f"{two}/logout", data={"csrf_token": token}, timeout=60).status_code == 200
    assert not signed_in(copied, one) and not signed_in(copied, two)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_sign_in_throttle_counts_across_both_nodes(site):
    app, (one, two) = site
    make_staff(app_sessions(app), "ana")
    client = browser()
    statuses = [sign_in(client, node, "ana", "not her password") for node in (one, two, one, two, one)]
    assert statuses == [401] * 5
    # Five failures for (ana, this client), spread over both nodes: now refused on either, right password or not.
    assert sign_in(client, two, "ana", PASSWORD) == 429
    assert sign_in(client, one, "ana", PASSWORD) == 429


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_same_content_gets_the_same_etag_and_bytes_on_both_nodes(site):
    _, nodes = site
    for url in URLS:
        answers = [browser().get(node + url, headers={"Accept-Encoding": "identity"}, timeout=60) for node in nodes]
        assert [a.status_code for a in answers] == [200, 200], url
        assert answers[0].content == answers[1].content, url
        assert answers[0].headers["ETag"] == answers[1].headers["ETag"], url
        assert answers[0].headers["Last-Modified"] == answers[1].headers["Last-Modified"], url
        # A shared cache revalidating an entry from one node with the other gets a 304.
        again = browser().get(nodes[1] + url, headers={"If-None-Match": answers[0].headers["ETag"]}, timeout=60)
        assert again.status_code == 304, url
    feed = browser().get(nodes[0] + "/feed.atom", timeout=60).text
    assert f'href="{PUBLIC_BASE}/feed.atom" rel="self"' in feed  # links from FEEDAPP_BASE_URL, not the node


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_new_post_shows_on_both_nodes(site):
    app, nodes = site
    etags = [browser().get(node + "/feed.rss", timeout=60).headers["ETag"] for node in nodes]
    post_id = "2900000000000000077"
    post = XPost(id=post_id, author=XUser("", "", ""), text="Both depots: new rota is up", links=(), media=(),
                created_at=datetime(2030, 1, 1, tzinfo=timezone.utc))
    with app_sessions(app)() as s:  # what the poller does
        store_posts(s, s.scalars(select(Source).where(Source.username == "HarborPineNews")).one(), [post])
        s.commit()
    deadline = time.monotonic() + SAFETY_DEADLINE_S
    while True:  # every worker of each node re-reads the content version after FEEDAPP_STATE_TTL (1 s here)
        answers = [browser().get(node + "/feed.rss", headers={"If-None-Match": etag}, timeout=60)
                   for node, etag in zip(nodes, etags) for _ in range(4)]  # several per node: its workers
        assert all(a.status_code in (200, 304) for a in answers), [a.status_code for a in answers]
        if all(a.status_code == 200 and post_id.encode() in a.content for a in answers):
            break
        assert time.monotonic() < deadline, "the nodes never all showed the new post"
        time.sleep(0.2)  # polling interval while waiting on the condition above
    new = {a.headers["ETag"] for a in answers}
    assert len(new) == 1 and not new & set(etags)  # one new ETag, the same on both nodes
