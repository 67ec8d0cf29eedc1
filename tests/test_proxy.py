"""Headers that must not poison shared responses: SCRIPT_NAME, X-Forwarded-*, Host; the public address at start.

The SCRIPT_NAME attack runs against a real gunicorn started with the project's gunicorn.conf.py;
the others drive the app through Flask's test client from a trusted or untrusted peer address.
"""

from __future__ import annotations

import html
import logging
import re
import shutil
import subprocess
import sys
import urllib.request

import feedparser
import pytest

from feedapp import ROOT, create_app
from feedapp.db import sessions as app_sessions
from tests.auth_helpers import PASSWORD, csrf, login, make_staff
from tests.test_admin import qr_modules, svg_modules
from tests.gunicorn_proc import base_env, gunicorn, raw_request

EVIL = "evil.example"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 only, never a proxy


def fetch(url: str, headers: dict | None = None) -> tuple[int, str]:
    try:
        with OPENER.open(urllib.request.Request(url, headers=headers or {}), timeout=120) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def links(page: str) -> list[str]:
    """Every href and src of a page."""
    return [html.unescape(m) for m in re.findall(r'(?:href|src)="([^"]*)"', page)]


@pytest.fixture
def demo_db(tmp_path, sqlite_template):
    """A SQLite copy with the demo company loaded."""
    path = tmp_path / "served.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "inst"), "FEEDAPP_DATABASE_URL": url})
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    app_sessions(app).kw["bind"].dispose()
    return url


# --------------------------------------------------------------------------- SCRIPT_NAME through gunicorn

POISON = (b"GET //evil.example/ HTTP/1.1\r\nHost: 127.0.0.1\r\nSCRIPT_NAME: //evil.example\r\n"
          b"X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-For: 198.51.100.7\r\n"
          b"Connection: close\r\n\r\n")


@pytest.mark.parametrize("proxies, extra", [
    pytest.param("0", (), id="no-proxy"),
    pytest.param("1", (), id="one-proxy"),
    # A server told to honour SCRIPT_NAME headers from 127.0.0.1 (gunicorn's old default): the app's pin still holds.
    pytest.param("1", ("--forwarded-allow-ips", "127.0.0.1", "--forwarder-headers", "SCRIPT_NAME,PATH_INFO"),
                 id="server-trusts-script-name"),
])
def test_a_script_name_header_never_reaches_a_page_or_feed(tmp_path, demo_db, proxies, extra):
    env = base_env(tmp_path, demo_db, FEEDAPP_TRUSTED_HOSTS="127.0.0.1", FEEDAPP_PROXY_COUNT=proxies)
    with gunicorn(env, "-w", "1", *extra) as server:  # one worker: whatever it caches, the next request sees
        poisoned = raw_request(server, POISON).decode(errors="replace")
        assert poisoned.startswith("HTTP/1.1 "), poisoned[:200]
        for path in ("/", "/feed.rss", "/feeds.opml", "/login"):  # everyone else, afterwards
            status, body = fetch(server.url + path)
            assert status == 200, (path, status)
            assert EVIL not in body, (path, [u for u in links(body) if EVIL in u] or body[:500])
        status, page = fetch(server.url + "/")
        css = [u for u in links(page) if u.endswith(".css")]
        assert css and all(u.startswith("/static/") for u in css), css
        assert "/login" in links(page)
        feed = feedparser.parse(fetch(server.url + "/feed.rss")[1])
        assert feed.entries and feed.feed.link == "http://127.0.0.1/", feed.feed.link
    # The attacker's own answer links to no other host either.
    assert not [u for u in links(poisoned) if u.startswith(("//", "http")) and EVIL in u], server.log()[-2000:]


def test_gunicorn_trusts_no_forwarder_unless_a_proxy_is_configured(tmp_path, monkeypatch):
    """gunicorn.conf.py reads the app's own settings (environment or instance/config.py)."""
    script = ("import runpy, json; c = runpy.run_path('gunicorn.conf.py'); "
              "print(json.dumps([c['forwarded_allow_ips'], c['forwarder_headers']]))")
    env = base_env(tmp_path, "sqlite://")
    nothing = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert nothing.returncode == 0, nothing.stderr
    assert nothing.stdout.strip() == '["", ""]'
    (tmp_path / "config.py").write_text("FEEDAPP_PROXY_COUNT = 1\n"
                                        "FEEDAPP_TRUSTED_PROXIES = '192.168.1.1/24, 10.0.0.5'\n")
    one = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr
    assert one.stdout.strip() == '["192.168.1.0/24,10.0.0.5/32", ""]'


# --------------------------------------------------------------------------- X-Forwarded-Host / -Proto, Host


@pytest.fixture
def site(make_app):
    """The app behind one proxy at 127.0.0.1, answering to three host names, without FEEDAPP_BASE_URL."""
    app = make_app(FEEDAPP_PROXY_COUNT=1, FEEDAPP_TRUSTED_HOSTS="feed.example.com, feed.internal, localhost")
    assert app.test_cli_runner().invoke(args=["offices", "add", "lyon", "Lyon"]).exit_code == 0
    return app


FORWARDED = [
    {"X-Forwarded-Host": "feed.internal", "X-Forwarded-Proto": "https"},
    {"X-Forwarded-Host": "feed.internal"},
    {"X-Forwarded-Proto": "https"},
    {},
]


@pytest.mark.parametrize("path", ["/feed.rss", "/feed.atom", "/feed.json", "/offices/lyon/feed.rss", "/feeds.opml"])
def test_forwarded_headers_do_not_choose_the_links_of_public_responses(site, path):
    client = site.test_client()
    bodies = []
    for headers in FORWARDED:
        response = client.get(path, headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"})
        assert response.status_code == 200, headers
        assert response.headers["Cache-Control"].startswith("public")
        body = response.get_data(as_text=True)
        assert "feed.internal" not in body and "localhost" not in body and "https://feed." not in body
        assert "http://feed.example.com/" in body
        bodies.append(body)
    assert len(set(bodies)) == 1  # one body, whoever asked


def test_routing_redirects_do_not_follow_the_host_header(make_app):
    app = make_app(FEEDAPP_BASE_URL="https://feed.example.com")
    response = app.test_client().get("/offices//columbus?x=1", headers={"Host": EVIL})
    assert response.status_code == 308
    assert response.headers["Location"] == "/offices/columbus?x=1"


def test_a_host_the_site_does_not_answer_to_is_refused(site):
    client = site.test_client()
    for headers in ({"Host": EVIL}, {"X-Forwarded-Host": EVIL}):
        response = client.get("/feed.rss", headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"})
        assert response.status_code == 400, headers
        assert EVIL not in response.get_data(as_text=True)
    assert client.get("/feed.rss", headers={"Host": "feed.internal"}).status_code == 200  # the other name works


def test_invite_links_and_qr_codes_do_not_follow_the_host_an_admin_arrived_with(site):
    sessions = app_sessions(site)
    make_staff(sessions, "boss", admin=True)
    admin = site.test_client()
    admin.environ_base.update(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_HOST="feed.internal")  # through the proxy
    assert login(admin, "boss", PASSWORD).status_code == 303
    page = admin.post("/admin/users", data={"csrf_token": csrf(admin, "/admin/users"), "username": "newbie",
                                            "office": ""})
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    url = html.unescape(re.search(r'readonly value="([^"]+/invite/[^"]+)"', body)[1])
    assert url.startswith("http://feed.example.com/invite/"), url
    assert "feed.internal" not in body and "localhost" not in body
    svg = re.search(r'<div class="qr">(<svg .*?</svg>)</div>', body, re.S)[1]
    assert svg_modules(svg) == qr_modules(url, border=2)  # the QR code carries that same link


def test_without_a_public_address_the_web_app_refuses_to_start(tmp_path):
    with pytest.raises(RuntimeError) as refused:
        create_app({"INSTANCE_PATH": str(tmp_path), "FEEDAPP_SECRET_KEY": "k" * 40})
    message = str(refused.value)
    assert "FEEDAPP_BASE_URL=https://" in message and "FEEDAPP_TRUSTED_HOSTS=" in message
    for ok in ({"FEEDAPP_BASE_URL": "https://feed.example.com"}, {"FEEDAPP_TRUSTED_HOSTS": "feed.example.com"},
               {"TESTING": True}, {"DEBUG": True}):
        app = create_app({"INSTANCE_PATH": str(tmp_path), "FEEDAPP_SECRET_KEY": "k" * 40, **ok})
        app_sessions(app).kw["bind"].dispose()


@pytest.mark.parametrize("settings, words", [
    ({"FEEDAPP_BASE_URL": "feed.example.com"}, "FEEDAPP_BASE_URL='feed.example.com' is not valid"),
    ({"FEEDAPP_BASE_URL": "https://feed.example.com/?x=1"}, "is not valid"),
    ({"FEEDAPP_TRUSTED_HOSTS": ".example.com"}, "a wildcard"),
    ({"FEEDAPP_BASE_URL": "https://feed.example.com", "FEEDAPP_TRUSTED_HOSTS": "other.example.com"},
     "names a host that FEEDAPP_TRUSTED_HOSTS does not list"),
    ({"FEEDAPP_BASE_URL": "https://a.example", "FEEDAPP_TRUSTED_PROXIES": "10.0.0.0/8, nonsense"}, "'nonsense'"),
])
def test_a_malformed_public_address_is_a_clear_error(tmp_path, settings, words):
    with pytest.raises(RuntimeError, match=re.escape(words)):
        create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path), **settings})


def _flask(tmp_path, db_url, *args, timeout=60):
    env = base_env(tmp_path, db_url)
    return subprocess.run([sys.executable, "-m", "flask", "--app", "feedapp", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_commands_start_without_a_public_address_but_run_does_not(tmp_path, sqlite_template):
    db = tmp_path / "cli.db"
    shutil.copy(sqlite_template, db)
    listed = _flask(tmp_path, f"sqlite:///{db}", "offices", "list")
    assert listed.returncode == 0, listed.stderr
    try:
        served = _flask(tmp_path, f"sqlite:///{db}", "run", "--host", "127.0.0.1", "--port", "0", timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("`flask run` started serving without FEEDAPP_BASE_URL or FEEDAPP_TRUSTED_HOSTS")
    assert served.returncode != 0
    assert "FEEDAPP_BASE_URL=https://" in served.stderr + served.stdout


def test_the_script_root_is_the_path_of_the_base_url(make_app):
    app = make_app(FEEDAPP_BASE_URL="https://example.com/staff/")
    client = app.test_client()
    for path in ("/staff/feed.rss", "/feed.rss"):  # a proxy that passes the prefix on, or one that strips it
        response = client.get(path, headers={"X-Forwarded-Host": EVIL})
        assert response.status_code == 200, path
        feed = feedparser.parse(response.data)
        assert feed.feed.link == "https://example.com/staff/", feed.feed.link
        assert all(link.href.startswith("https://example.com/staff/") for link in feed.feed.links)
    page = client.get("/staff/").get_data(as_text=True)
    assert [u for u in links(page) if u.endswith(".css")][0].startswith("/staff/static/")
    # The language switch comes back inside the app, not to the site's root.
    switch = next(u for u in links(page) if "/language/fr" in u)
    assert switch.startswith("/staff/language/fr?")
    assert client.get(switch).headers["Location"] == "/staff/"
    office = client.get("/staff/offices/nowhere?before=5")  # a 404 page, never cached: its whole query
    assert "next=/staff/offices/nowhere" in html.unescape(office.get_data(as_text=True)).replace("%2F", "/")


# --------------------------------------------------------------------------- trusted proxies


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(make_app):
    app = make_app(FEEDAPP_PROXY_COUNT=1)
    seen = []

    @app.get("/_peer")
    def peer():
        from flask import request

        seen.append((request.remote_addr, request.scheme, request.host))
        return "ok"

    client = app.test_client()
    headers = {"X-Forwarded-For": "192.0.2.1", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "other.example"}
    client.get("/_peer", headers=headers, environ_base={"REMOTE_ADDR": "203.0.113.9"})  # straight from the internet
    client.get("/_peer", headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"})  # the proxy on this box
    # A device on the company network is not a proxy: it cannot choose its address either.
    client.get("/_peer", headers=headers, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert seen == [("203.0.113.9", "http", "localhost"), ("192.0.2.1", "https", "other.example"),
                    ("10.1.2.3", "http", "localhost")]
    seen.clear()
    named = make_app(FEEDAPP_PROXY_COUNT=1, FEEDAPP_TRUSTED_PROXIES="10.1.2.3")  # the proxy on another machine
    named.add_url_rule("/_peer", view_func=peer)
    named.test_client().get("/_peer", headers=headers, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert seen == [("192.0.2.1", "https", "other.example")]


def test_a_proxy_that_is_not_configured_is_reported_once(make_app, caplog):
    app = make_app()  # FEEDAPP_PROXY_COUNT=0
    client = app.test_client()
    caplog.set_level(logging.WARNING, logger="feedapp")
    client.get("/healthz", headers={"X-Forwarded-For": "192.0.2.1"}, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert "FEEDAPP_PROXY_COUNT" not in caplog.text  # a client on the internet may send anything
    for _ in range(3):
        client.get("/healthz", headers={"X-Forwarded-For": "192.0.2.1"}, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    warnings = [r for r in caplog.records if "FEEDAPP_PROXY_COUNT=1" in r.getMessage()]
    assert len(warnings) == 1, caplog.text
    assert "X-Forwarded-For" in warnings[0].getMessage()


def test_the_cli_builds_invite_links_on_the_public_address(make_app):
    app = make_app(FEEDAPP_TRUSTED_HOSTS="feed.example.com, localhost", FEEDAPP_SECURE_COOKIES=True)
    result = app.test_cli_runner().invoke(args=["users", "add", "alice"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("https://feed.example.com/invite/")
    staff = make_app(FEEDAPP_BASE_URL="https://example.com/staff/")
    result = staff.test_cli_runner().invoke(args=["users", "add", "bob"])
    assert result.output.strip().splitlines()[-1].startswith("https://example.com/staff/invite/")
