"""/admin over HTTP: who may enter, creating accounts with QR invites, offices, switching off, audit, CSRF."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import qrcode
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from feedapp import accounts
from feedapp.models import AuditEvent, FeedToken, Invite, SignIn, Office, User

PASSWORD = "ferry timetable 42"
FAST_HASH = "pbkdf2:sha256:1"  # users made here skip scrypt (~0.1 s a check); the web forms still use the default
CSRF_RE = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"'
                     r'|<input[^>]*value="([^"]+)"[^>]*name="csrf_token"')


# --- helpers ---------------------------------------------------------------------------------------------------------

def csrf(page_html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = CSRF_RE.search(page_html)
    assert match, "no csrf_token field on the page"
    return match[1] or match[2]


def make_user(sessions, username: str, *, admin: bool = False, office: str | None = None,
              password: str | None = PASSWORD, role: str | None = None) -> int:
    """An account made with feedapp.accounts (with a password unless password=None); returns its id."""
    with sessions() as s:
        office_row = s.scalar(select(Office).where(Office.slug == office)) if office else None
        user = accounts.create_user(s, username, "", office_row, role or ("admin" if admin else "staff"))
        if password:
            user.password_hash = generate_password_hash(password, method=FAST_HASH)
        s.commit()
        return user.id


def login(client, username: str, password: str = PASSWORD, remember: bool = False):
    """Sign in through the real form; returns the POST response."""
    token = csrf(client.get("/login").get_data(as_text=True))
    data = {"username": username, "password": password, "csrf_token": token}
    if remember:
        data["remember"] = "y"
    return client.post("/login", data=data)


def signed_in(client, username: str, **kwargs):
    response = login(client, username, **kwargs)
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def admin_csrf(client, user_id: int | None = None) -> str:
    """A fresh CSRF token from an admin page (tokens change at sign-in)."""
    url = f"/admin/users/{user_id}" if user_id else "/admin/users"
    page = client.get(url)
    assert page.status_code == 200
    return csrf(page.get_data(as_text=True))


def user_row(sessions, username: str) -> User | None:
    with sessions() as s:
        return s.scalar(select(User).where(User.username == username))


def audit_rows(sessions) -> list[tuple[str, str, str, str]]:
    with sessions() as s:
        return [(e.actor, e.action, e.target, e.detail) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def snapshot(sessions) -> dict:
    """Everything an admin action could change."""
    with sessions() as s:
        return {
            "users": [(u.id, u.username, u.office_id, u.active, u.is_admin, u.password_hash)
                      for u in s.scalars(select(User).order_by(User.id))],
            "invites": [(i.id, i.user_id, i.token_hash, i.used_at)
                        for i in s.scalars(select(Invite).order_by(Invite.id))],
            "sessions": sorted(s.scalars(select(SignIn.key_hash))),
            "feed_tokens": sorted(s.scalars(select(FeedToken.token_hash))),
            "audit": s.scalar(select(func.count()).select_from(AuditEvent)),
        }


def invite_url_of(page_html: str) -> str:
    match = re.search(r'<input type="text" readonly value="([^"]+)" aria-label="Invite link">', page_html)
    assert match, "no invite link on the page"
    return html.unescape(match[1])


def svg_modules(svg: str) -> tuple[int, set[tuple[int, int]]]:
    """The size and dark modules of qrcode's SvgPathImage (one "Mx,yHx2Vy2Hxz" rectangle per run)."""
    size = int(re.search(r'viewBox="0 0 (\d+) \1"', svg)[1])
    dark = set()
    for x, y, x2, y2 in re.findall(r"M(\d+),(\d+)H(\d+)V(\d+)H\1z", svg):
        dark |= {(i, j) for i in range(int(x), int(x2)) for j in range(int(y), int(y2))}
    return size, dark


def qr_modules(data: str, border: int) -> tuple[int, set[tuple[int, int]]]:
    qr = qrcode.QRCode(border=border)
    qr.add_data(data)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    return len(matrix), {(x, y) for y, row in enumerate(matrix) for x, dark in enumerate(row) if dark}


# --- fixtures --------------------------------------------------------------------------------------------------------

@pytest.fixture
def offices(runner):
    for slug, name in (("columbus", "Columbus Depot (Ohio)"), ("lyon", "Lyon Saint-Priest Hub")):
        result = runner.invoke(args=["offices", "add", slug, name])
        assert result.exit_code == 0, result.output


@pytest.fixture
def ids(offices, sessions):
    """An admin (boss) and a plain staff member (deckhand, Columbus), both with passwords."""
    return {"boss": make_user(sessions, "boss", admin=True),
            "deckhand": make_user(sessions, "deckhand", office="columbus")}


@pytest.fixture
def admin(ids, client):
    return signed_in(client, "boss")


# --- who may enter ---------------------------------------------------------------------------------------------------

def test_anonymous_readers_are_sent_to_sign_in(ids, client):
    for path in ("/admin/users", f"/admin/users/{ids['deckhand']}"):
        response = client.get(path)
        assert response.status_code == 302, path
        location = urlsplit(response.headers["Location"])
        assert location.path == "/login"
        assert parse_qs(location.query)["next"] == [path]
        assert "no-store" in response.headers["Cache-Control"]


def test_the_sign_in_nudge_of_admin_pages_stays_with_that_reader(ids, app, client):
    """Flask-Login flashes "Sign in to see that page." into the session; it must not reach others' cached pages."""
    assert client.get("/admin/users").status_code == 302
    own = client.get("/")  # did not follow the redirect to /login: the message is still waiting in this session
    assert "Sign in to see that page." in own.get_data(as_text=True)
    assert own.headers["Cache-Control"] == "private, no-store"
    stranger = app.test_client().get("/")
    assert stranger.status_code == 200
    assert "Sign in to see that page." not in stranger.get_data(as_text=True)


@pytest.mark.parametrize("who, message", [
    ("deckhand", "This page is for editors and administrators."),  # plain staff: no console at all
    ("writer", "This page is for administrators."),  # an editor: the console, but not staff accounts
])
def test_staff_who_are_not_admins_get_a_clear_403(ids, client, sessions, who, message):
    make_user(sessions, "writer", role="editor")
    signed_in(client, who)
    for path in ("/admin/users", f"/admin/users/{ids['boss']}"):
        page = client.get(path)
        assert page.status_code == 403, path
        assert message in page.get_data(as_text=True)
        assert page.headers["Cache-Control"] == "no-store"
    # Not even with a valid CSRF token can they act.
    token = csrf(client.get("/account").get_data(as_text=True))
    before = snapshot(sessions)
    refused = client.post(f"/admin/users/{ids['boss']}/deactivate", data={"csrf_token": token})
    assert refused.status_code == 403
    sneaky = client.post("/admin/users", data={"csrf_token": token, "username": "sneaky", "office": ""})
    assert sneaky.status_code == 403
    assert snapshot(sessions) == before


# --- the list and creating accounts ----------------------------------------------------------------------------------

def test_list_shows_every_account_with_office_and_state(admin, sessions):
    make_user(sessions, "newcomer", office="lyon", password=None)
    page = admin.get("/admin/users")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    rows = re.findall(r"<tr><td><a href=\"/admin/users/\d+\">([^<]+)</a>(?: \(admin\))?</td><td>[^<]*</td>"
                      r"<td>([^<]+)</td><td>([^<]+)</td></tr>", body)
    assert rows == [("boss", "—", "active"), ("deckhand", "Columbus Depot (Ohio)", "active"),
                    ("newcomer", "Lyon Saint-Priest Hub", "invited")]
    assert ">boss</a> (admin)" in body


def test_creating_an_account_shows_its_invite_link_and_a_matching_qr_code(admin, app, sessions):
    response = admin.post("/admin/users", data={"csrf_token": admin_csrf(admin), "username": "  Marie.Dubois ",
                                                "display_name": "Marie Dubois", "office": "lyon"})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    url = invite_url_of(body)
    assert url.startswith("http://localhost/invite/")
    assert "Marie Dubois" in body and "marie.dubois" in body
    # An inline SVG (no XML declaration inside HTML) whose modules are exactly the QR code of the link.
    assert "<?xml" not in body
    svg = re.search(r'<div class="qr">(<svg .*?</svg>)</div>', body, re.S)[1]
    size, dark = svg_modules(svg)
    assert (size, dark) == qr_modules(url, border=2)
    # The link opens the form where the new user chooses a password.
    invite = admin.application.test_client().get(urlsplit(url).path)
    assert invite.status_code == 200
    assert 'autocomplete="new-password"' in invite.get_data(as_text=True)

    user = user_row(sessions, "marie.dubois")
    assert user.display_name == "Marie Dubois" and user.password_hash is None and user.active and not user.is_admin
    with sessions() as s:
        assert s.get(Office, user.office_id).slug == "lyon"
    assert audit_rows(sessions)[-1] == ("boss", "create_user", "marie.dubois", "office=lyon role=staff")


def test_an_admin_can_create_another_admin_without_an_office(admin, sessions):
    response = admin.post("/admin/users", data={"csrf_token": admin_csrf(admin), "username": "chief",
                                                "office": "", "role": "admin"})
    assert response.status_code == 200
    user = user_row(sessions, "chief")
    assert user.is_admin and user.office_id is None


# Form checks do not touch the database, so they run on SQLite only; the taken-name lookup runs on both engines.
@pytest.mark.parametrize(
    "db_url, username, office, field, message",
    [
        ("sqlite", "deckhand", "", "username", "The username deckhand is taken."),
        ("postgresql", "DeckHand", "", "username", "The username deckhand is taken."),
        ("sqlite", "bad name!", "", "username", "A username is 2–50 letters, digits, dots, dashes or underscores."),
        ("sqlite", "-dash-first", "", "username", "A username is 2–50 letters, digits, dots, dashes or underscores."),
        ("sqlite", "x", "", "username", None),  # the form's own length message
        ("sqlite", "", "", "username", None),  # required
        ("sqlite", "newcomer", "atlantis", "office", None),  # not one of the offered choices
    ],
    indirect=["db_url"],
)
def test_creating_refuses_bad_input_with_a_message_and_creates_nothing(admin, sessions, username, office, field,
                                                                       message):
    before = snapshot(sessions)
    response = admin.post("/admin/users", data={"csrf_token": admin_csrf(admin), "username": username,
                                                "office": office})
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    shown = re.search(rf'<p class="err" id="{field}-err">([^<]+)</p>', body)
    assert shown and shown[1].strip(), f"no error message for {field}"
    if message:
        assert html.unescape(shown[1]) == message
    assert re.search(rf'<(input|select)[^>]*aria-describedby="{field}-err"[^>]*aria-invalid="true"|'
                     rf'<(input|select)[^>]*aria-invalid="true"[^>]*aria-describedby="{field}-err"', body)
    assert response.headers["Cache-Control"] == "no-store"
    assert snapshot(sessions) == before


# --- one account: office, switching off and on, new invites ---------------------------------------------------------

@pytest.mark.parametrize("office, shown", [("lyon", "Lyon Saint-Priest Hub"), ("", "company-wide posts only")])
def test_setting_the_office(admin, ids, sessions, office, shown):
    uid = ids["deckhand"]
    response = admin.post(f"/admin/users/{uid}/office", data={"csrf_token": admin_csrf(admin, uid), "office": office})
    assert response.status_code == 303 and response.headers["Location"] == f"/admin/users/{uid}"
    page = admin.get(f"/admin/users/{uid}").get_data(as_text=True)
    assert f"deckhand now reads {shown}." in page
    with sessions() as s:
        user = s.get(User, uid)
        assert (user.office.slug if user.office else "") == office
    assert audit_rows(sessions)[-1] == ("boss", "set_office", "deckhand", office or "-")


def test_setting_an_unknown_office_is_refused(admin, ids, sessions):
    uid = ids["deckhand"]
    before = snapshot(sessions)
    response = admin.post(f"/admin/users/{uid}/office", data={"csrf_token": admin_csrf(admin, uid), "office": "mars"})
    assert response.status_code == 400 and "Not a valid choice." in response.get_data(as_text=True)
    assert snapshot(sessions) == before


def test_switching_off_signs_the_user_out_everywhere_and_kills_private_feeds(admin, app, ids, sessions):
    uid = ids["deckhand"]
    phone = signed_in(app.test_client(), "deckhand", remember=True)
    laptop = signed_in(app.test_client(), "deckhand")
    with sessions() as s:
        token = accounts.rotate_feed_token(s, s.get(User, uid))
        s.commit()
    feed_url = f"/private/{token}/feed.rss"
    reader = app.test_client()  # a feed reader app: no cookies at all
    first = reader.get(feed_url)
    assert first.status_code == 200 and "private" in first.headers["Cache-Control"]
    assert phone.get("/account").status_code == 200

    response = admin.post(f"/admin/users/{uid}/deactivate", data={"csrf_token": admin_csrf(admin, uid)})
    assert response.status_code == 303
    flashed = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "deckhand is switched off and signed out everywhere." in flashed

    for browser in (phone, laptop):
        assert browser.get("/account").status_code == 302  # back to the sign-in page
        front = browser.get("/").get_data(as_text=True)
        assert "Staff sign-in" in front and "Sign out" not in front
    assert reader.get(feed_url).status_code == 404
    for fmt in ("atom", "json"):
        assert reader.get(f"/private/{token}/feed.{fmt}").status_code == 404
    assert login(app.test_client(), "deckhand").status_code == 401
    user = user_row(sessions, "deckhand")
    assert not user.active
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(SignIn).where(SignIn.user_id == uid)) == 0
    assert audit_rows(sessions)[-1][:3] == ("boss", "deactivate", "deckhand")

    page = admin.get(f"/admin/users/{uid}").get_data(as_text=True)
    assert "switched off" in page and "Switch back on" in page


def test_a_switched_off_private_feed_does_not_answer_304_either(admin, app, ids, sessions):
    uid = ids["deckhand"]
    with sessions() as s:
        token = accounts.rotate_feed_token(s, s.get(User, uid))
        s.commit()
    reader = app.test_client()  # a feed reader app polling with If-None-Match: the 304 fast path must not answer
    etag = reader.get(f"/private/{token}/feed.rss").headers["ETag"]
    admin.post(f"/admin/users/{uid}/deactivate", data={"csrf_token": admin_csrf(admin, uid)})
    assert reader.get(f"/private/{token}/feed.rss", headers={"If-None-Match": etag}).status_code == 404


def test_switching_back_on_lets_the_user_sign_in_again(admin, app, ids, sessions):
    uid = ids["deckhand"]
    admin.post(f"/admin/users/{uid}/deactivate", data={"csrf_token": admin_csrf(admin, uid)})
    assert login(app.test_client(), "deckhand").status_code == 401
    response = admin.post(f"/admin/users/{uid}/reactivate", data={"csrf_token": admin_csrf(admin, uid)})
    assert response.status_code == 303
    assert "deckhand is active again." in admin.get(response.headers["Location"]).get_data(as_text=True)
    assert user_row(sessions, "deckhand").active
    again = signed_in(app.test_client(), "deckhand")
    assert again.get("/account").status_code == 200
    assert [row[1] for row in audit_rows(sessions)[-2:]] == ["deactivate", "reactivate"]


def test_a_new_invite_replaces_the_old_link(admin, app, ids, sessions):
    created = admin.post("/admin/users", data={"csrf_token": admin_csrf(admin), "username": "stevedore", "office": ""})
    old = urlsplit(invite_url_of(created.get_data(as_text=True))).path
    uid = user_row(sessions, "stevedore").id
    reissued = admin.post(f"/admin/users/{uid}/invite", data={"csrf_token": admin_csrf(admin, uid)})
    assert reissued.status_code == 200
    new = urlsplit(invite_url_of(reissued.get_data(as_text=True))).path
    assert new != old

    visitor = app.test_client()
    gone = visitor.get(old)
    assert gone.status_code == 404 and "We don't know this invite link" in gone.get_data(as_text=True)
    form = visitor.get(new)
    assert form.status_code == 200
    done = visitor.post(new, data={"csrf_token": csrf(form.get_data(as_text=True)),
                                   "password": PASSWORD, "confirm": PASSWORD})
    assert done.status_code == 303 and done.headers["Location"] == "/account"
    assert visitor.get("/account").status_code == 200
    assert visitor.get(new).status_code == 410  # used up
    assert audit_rows(sessions)[-1][:3] == ("boss", "reissue_invite", "stevedore")


def test_a_new_invite_resets_a_forgotten_password(admin, app, ids, sessions):
    uid = ids["deckhand"]
    phone = signed_in(app.test_client(), "deckhand")
    reissued = admin.post(f"/admin/users/{uid}/invite", data={"csrf_token": admin_csrf(admin, uid)})
    path = urlsplit(invite_url_of(reissued.get_data(as_text=True))).path
    visitor = app.test_client()
    token = csrf(visitor.get(path).get_data(as_text=True))
    new_password = "harbour lights 7"
    assert visitor.post(path, data={"csrf_token": token, "password": new_password,
                                    "confirm": new_password}).status_code == 303
    assert login(app.test_client(), "deckhand").status_code == 401  # the old password is gone
    assert login(app.test_client(), "deckhand", new_password).status_code == 303
    assert phone.get("/account").status_code == 302  # and so is every older sign-in


def test_no_invite_for_a_switched_off_account(admin, ids, sessions):
    uid = ids["deckhand"]
    admin.post(f"/admin/users/{uid}/deactivate", data={"csrf_token": admin_csrf(admin, uid)})
    before = snapshot(sessions)
    response = admin.post(f"/admin/users/{uid}/invite", data={"csrf_token": admin_csrf(admin, uid)})
    assert response.status_code == 303
    assert "Reactivate the account first." in admin.get(response.headers["Location"]).get_data(as_text=True)
    assert snapshot(sessions) == before


def test_an_admin_cannot_switch_themselves_off(admin, ids, sessions):
    uid = ids["boss"]
    before = snapshot(sessions)
    response = admin.post(f"/admin/users/{uid}/deactivate", data={"csrf_token": admin_csrf(admin, uid)})
    assert response.status_code == 303
    assert "You cannot switch off your own account." in admin.get(response.headers["Location"]).get_data(as_text=True)
    assert snapshot(sessions) == before
    assert admin.get("/admin/users").status_code == 200


def test_unknown_accounts_are_a_404(admin):
    for method, path in (("get", "/admin/users/999"), ("post", "/admin/users/999/deactivate")):
        response = getattr(admin, method)(path, data={"csrf_token": admin_csrf(admin)} if method == "post" else None)
        assert response.status_code == 404, path
        assert "There is no such account." in response.get_data(as_text=True)


# --- audit trail, CSRF, caching --------------------------------------------------------------------------------------

def test_every_action_is_audited_and_listed(admin, ids, sessions):
    uid = ids["deckhand"]
    admin.post("/admin/users", data={"csrf_token": admin_csrf(admin), "username": "rigger", "office": "columbus"})
    admin.post(f"/admin/users/{uid}/office", data={"csrf_token": admin_csrf(admin, uid), "office": "lyon"})
    admin.post(f"/admin/users/{uid}/invite", data={"csrf_token": admin_csrf(admin, uid)})
    admin.post(f"/admin/users/{uid}/deactivate", data={"csrf_token": admin_csrf(admin, uid)})
    admin.post(f"/admin/users/{uid}/reactivate", data={"csrf_token": admin_csrf(admin, uid)})
    # (the fixture's `offices add` is audited too, as "cli")
    assert [row[:3] for row in audit_rows(sessions) if row[0] != "cli"] == [
        ("boss", "create_user", "rigger"),
        ("boss", "set_office", "deckhand"),
        ("boss", "reissue_invite", "deckhand"),
        ("boss", "deactivate", "deckhand"),
        ("boss", "reactivate", "deckhand"),
    ]
    listing = admin.get("/admin/users").get_data(as_text=True)
    recent = re.search(r"<h2>Recent admin actions</h2>\s*<ul class=\"links\">(.*?)</ul>", listing, re.S)[1]
    lines = [re.sub(r"<time[^>]*>[^<]*</time> ", "", li) for li in re.findall(r"<li>(.*?)</li>", recent)]
    lines = [line for line in lines if not line.startswith("cli: ")]
    assert lines == [
        "boss: reactivate deckhand",
        "boss: deactivate deckhand",
        "boss: reissue_invite deckhand",
        "boss: set_office deckhand (lyon)",
        "boss: create_user rigger (office=columbus role=staff)",
    ]
    assert not any(secret in listing for secret in ("/invite/", "scrypt:", "pbkdf2:"))


POSTS = [
    ("/admin/users", {"username": "intruder", "office": ""}),
    ("/admin/users/{deckhand}/office", {"office": "lyon"}),
    ("/admin/users/{deckhand}/deactivate", {}),
    ("/admin/users/{deckhand}/reactivate", {}),
    ("/admin/users/{deckhand}/invite", {}),
]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # refused before any query: one engine is enough
@pytest.mark.parametrize("path, data", POSTS)
def test_every_post_needs_the_csrf_token(admin, ids, sessions, path, data):
    if path.endswith("/reactivate"):
        with sessions() as s:
            accounts.set_active(s, s.get(User, ids["deckhand"]), False)
            s.commit()
    admin_csrf(admin)  # the session holds a token; the request just does not carry it (or a forged one)
    before = snapshot(sessions)
    forged = "IjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAi.Zz9Zzw.c2lnbmF0dXJlLXRoYXQtZG9lcy1ub3QtbWF0Y2g"
    for attempt in (data, {**data, "csrf_token": forged}, {**data, "csrf_token": ""}):
        response = admin.post(path.format(**ids), data=attempt)
        assert response.status_code == 400, attempt
        assert "did not come from this site" in response.get_data(as_text=True)
        assert snapshot(sessions) == before


def test_admin_pages_are_never_cached(admin, ids):
    uid = ids["deckhand"]
    responses = {
        "list": admin.get("/admin/users"),
        "user": admin.get(f"/admin/users/{uid}"),
        "invite": admin.post(f"/admin/users/{uid}/invite", data={"csrf_token": admin_csrf(admin, uid)}),
        "refused": admin.post("/admin/users", data={"csrf_token": admin_csrf(admin), "username": "!", "office": ""}),
        "csrf": admin.post("/admin/users", data={"username": "x"}),
        "missing": admin.get("/admin/users/999"),
        "redirect": admin.post(f"/admin/users/{uid}/office", data={"csrf_token": admin_csrf(admin, uid), "office": ""}),
    }
    for name, response in responses.items():
        assert response.headers["Cache-Control"] == "no-store", name
        assert "ETag" not in response.headers and "Last-Modified" not in response.headers, name


def test_switching_an_account_off_has_a_confirm_step_that_says_what_ends(ids, admin, sessions):
    user_page = admin.get(f"/admin/users/{ids['deckhand']}").get_data(as_text=True)
    assert f'href="/admin/users/{ids["deckhand"]}/deactivate"' in user_page
    assert f'action="/admin/users/{ids["deckhand"]}/deactivate"' not in user_page  # no one-tap switch-off
    before = snapshot(sessions)
    confirm = admin.get(f"/admin/users/{ids['deckhand']}/deactivate")
    assert confirm.status_code == 200 and snapshot(sessions) == before  # looking changes nothing
    html = confirm.get_data(as_text=True)
    assert "signed out on every phone" in html and "private feed links stop working" in html
    assert f'action="/admin/users/{ids["deckhand"]}/deactivate"' in html
