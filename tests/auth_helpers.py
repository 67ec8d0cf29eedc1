"""Helpers for the staff sign-in tests: forms, CSRF tokens, users and session cookies."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import select
from werkzeug.security import generate_password_hash

from feedapp import accounts
from feedapp.models import FeedToken, Invite, SignIn, Office, User

CSRF_RE = re.compile(r'<input\b[^>]*\bname="csrf_token"[^>]*\bvalue="([^"]+)"')
ERR_RE = re.compile(r'<p class="err"[^>]*>(.*?)</p>', re.S)
FIELD_ERR_RE = re.compile(r'<p class="err" id="([^"]+)-err">(.*?)</p>', re.S)
FEED_URL_RE = re.compile(r'<input type="text" readonly value="([^"]+)" aria-label="(RSS|ATOM|JSON) link"')
# A cheap hash for users the tests make directly: scrypt costs ~0.1 s a check.
FAST_METHOD = "pbkdf2:sha256:1"
PASSWORD = "correct horse battery"


def csrf(client, url: str) -> str:
    """The CSRF token of the form on the page at url (which must answer 200)."""
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code)
    return csrf_in(page.get_data(as_text=True))


def csrf_in(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no csrf_token field on the page"
    return match[1]


def errors(html: str) -> list[str]:
    """The field error messages a form page shows."""
    return [" ".join(m.split()) for m in ERR_RE.findall(html)]


def field_errors(html: str) -> dict[str, str]:
    """{field id: its error message} of a form page."""
    return {field: " ".join(m.split()) for field, m in FIELD_ERR_RE.findall(html)}


def path_of(url: str) -> str:
    """The path of an absolute URL, so the test client keeps cookies on its own host."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def login(client, username: str, password: str, *, remember: bool = True, next: str | None = None,
          token: str | None = None, **kw):
    """POST /login like the form does (fetching a CSRF token unless one is given)."""
    data = {"username": username, "password": password,
            "csrf_token": token if token is not None else csrf(client, "/login")}
    if remember:
        data["remember"] = "y"
    if next is not None:
        data["next"] = next
    return client.post("/login", data=data, **kw)


def logout(client):
    """Sign out through the confirmation form."""
    return client.post("/logout", data={"csrf_token": csrf(client, "/logout")})


def signed_in(client) -> bool:
    """True when /account answers (anonymous readers are sent to the sign-in page)."""
    status = client.get("/account").status_code
    assert status in (200, 302), status
    return status == 200


def add_user(runner, username: str, *args: str) -> str:
    """`users add` through the real CLI; returns the invite path."""
    result = runner.invoke(args=["users", "add", username, *args])
    assert result.exit_code == 0, result.output
    url = result.output.strip().splitlines()[-1]
    assert url.startswith("http://") and "/invite/" in url, result.output
    return path_of(url)


def redeem(client, invite_path: str, password: str = PASSWORD, confirm: str | None = None):
    """Choose a password on the invite page."""
    token = csrf(client, invite_path)
    return client.post(invite_path, data={"csrf_token": token, "password": password,
                                          "confirm": password if confirm is None else confirm})


def make_staff(sessions, username: str, password: str = PASSWORD, office: str | None = None,
               admin: bool = False, role: str | None = None) -> int:
    """A user with a password, straight into the database (cheap hash); returns the id."""
    with sessions() as s:
        place = s.scalars(select(Office).where(Office.slug == office)).one() if office else None
        user = accounts.create_user(s, username, office=place, role=role or ("admin" if admin else "staff"))
        user.password_hash = generate_password_hash(password, method=FAST_METHOD)
        s.commit()
        return user.id


def user_row(sessions, username: str) -> User:
    with sessions() as s:
        user = accounts.user_by_username(s, username)
        s.expunge_all()
        return user


def invite_rows(sessions, username: str) -> list[Invite]:
    with sessions() as s:
        user = accounts.user_by_username(s, username)
        rows = list(s.scalars(select(Invite).where(Invite.user_id == user.id)))
        s.expunge_all()
        return rows


def sign_in_rows(sessions, username: str | None = None) -> list[SignIn]:
    with sessions() as s:
        stmt = select(SignIn)
        if username:
            stmt = stmt.join(User, User.id == SignIn.user_id).where(User.username == username)
        rows = list(s.scalars(stmt))
        s.expunge_all()
        return rows


def feed_token_count(sessions) -> int:
    with sessions() as s:
        return len(list(s.scalars(select(FeedToken))))


def set_active(sessions, username: str, active: bool) -> None:
    with sessions() as s:
        accounts.set_active(s, accounts.user_by_username(s, username), active)
        s.commit()


def age_invites(sessions, username: str, by: timedelta) -> None:
    """Move the expiry of a user's invites back by `by`."""
    with sessions() as s:
        user = accounts.user_by_username(s, username)
        for invite in s.scalars(select(Invite).where(Invite.user_id == user.id)):
            invite.expires_at = invite.expires_at - by
        s.commit()


def cookie(client, name: str) -> str | None:
    found = client.get_cookie(name)
    return found.value if found else None


def session_data(app, client) -> dict:
    """The decoded Flask session of a client ({} without a cookie)."""
    value = cookie(client, app.config["SESSION_COOKIE_NAME"])
    if value is None:
        return {}
    return dict(app.session_interface.get_signing_serializer(app).loads(value))
