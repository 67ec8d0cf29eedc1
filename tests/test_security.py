"""Small holes a tester found: odd digits in a cursor, personal data in /offline, shared copies of a reader's
pages, and HSTS."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from feedapp.models import User
from tests.auth_helpers import PASSWORD, login, make_staff


@pytest.fixture
def demo(runner):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output


@pytest.fixture
def alice_client(app, sessions):
    """A browser signed in as alice, whose name shows in the header."""
    make_staff(sessions, "alice")
    with sessions() as s:
        s.execute(update(User).where(User.username == "alice").values(display_name="Alice Marchetti"))
        s.commit()
    client = app.test_client()
    assert login(client, "alice", PASSWORD).status_code == 303
    return client


# --------------------------------------------------------------------------- ?before=


# Digits str.isdigit() accepts that int() refuses ("²", "⑦") or reads as another number ("٣" is 3),
# a number too long for int() to read at all, and ones out of range.
ODD_CURSORS = ["²", "1²", "⑦", "٣", "１２", "9" * 5000, "0", "-1", "1e3", " 1", str(2**63), ""]


@pytest.mark.parametrize("path", ["/", "/offices/lyon"])
def test_a_cursor_that_is_not_a_post_id_is_a_400(app, demo, path):
    client = app.test_client()
    for raw in ODD_CURSORS:
        response = client.get(path, query_string={"before": raw})
        assert response.status_code == 400, raw
        assert "“before” must be the id of a post." in response.get_data(as_text=True), raw
    assert client.get(path, query_string={"before": str(2**63 - 1)}).status_code == 200  # the control


# --------------------------------------------------------------------------- /offline


def test_the_offline_page_names_nobody(app, alice_client):
    page = alice_client.get("/offline")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert alice_client.get("/").get_data(as_text=True).count("Alice Marchetti") == 1  # the control: pages name her
    assert "Alice" not in html and "alice" not in html
    assert 'href="/account"' not in html and 'href="/logout"' not in html
    assert html == app.test_client().get("/offline").get_data(as_text=True)  # exactly the anonymous page


# --------------------------------------------------------------------------- Cache-Control for signed-in readers


@pytest.mark.parametrize("path", ["/offices", "/logout", "/offline", "/login?next=/account"])
def test_pages_rendered_for_a_signed_in_reader_are_private(app, demo, alice_client, path):
    response = alice_client.get(path)
    control = response.headers.get("Cache-Control", "")
    assert "private" in control or "no-store" in control, (path, control)
    assert "public" not in control
    if response.status_code == 200 and "no-store" not in control:
        assert "Cookie" in response.headers["Vary"]


def test_anonymous_pages_keep_their_own_caching(app, demo):
    client = app.test_client()
    assert client.get("/").headers["Cache-Control"].startswith("public")
    assert "private" not in client.get("/offices").headers.get("Cache-Control", "")
    assert client.get("/offline").headers["Cache-Control"] == "no-cache"


def test_public_feeds_stay_public_for_a_signed_in_browser(app, demo, alice_client):
    """A feed never looks at who asks, so a signed-in browser gets the same shareable answer."""
    response = alice_client.get("/feed.rss")
    assert response.headers["Cache-Control"].startswith("public")


# --------------------------------------------------------------------------- HSTS


def test_hsts_when_cookies_are_secure(make_app):
    secure = make_app(FEEDAPP_SECURE_COOKIES=True).test_client()
    for path in ("/", "/login", "/feed.rss", "/healthz"):
        assert secure.get(path, base_url="https://localhost").headers["Strict-Transport-Security"] == \
            "max-age=31536000", path
    plain = make_app().test_client()
    assert "Strict-Transport-Security" not in plain.get("/").headers
