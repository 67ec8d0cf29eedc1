"""Signing in, invites, the account and admin pages in a real headless Chromium at phone size.

Like tests/test_browser.py: Debian's Chromium driven by Playwright, the app served over HTTP on
127.0.0.1 with the demo data on its own SQLite copy, every context sealed off the network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from feedapp import accounts
from feedapp.db import sessions
from feedapp.models import Office
from tests.browser import PageOpener, demo_app, PHONE, Seal, fits, serve, store_post, watch, widths
from tests.test_pwa import until

PASSWORD = "tugboat at dawn 9"
FAST_HASH = "pbkdf2:sha256:1"  # users made here skip scrypt; passwords set in the browser use the real hash
STAFF_POST_ID = 2990000000000000500
STAFF_POST_TEXT = "All-hands call moved to Thursday 3 pm, dial-in on the intranet."


@dataclass
class Site:
    app: object
    url: str
    seals: list[Seal]
    invite: str  # path of a fresh invite for "newhire"
    spare_invite: str  # path of another user's invite, only looked at
    admin_id: int


def _user(s, username: str, *, admin: bool = False, office: str | None = None, password: bool = True):
    place = s.scalar(select(Office).where(Office.slug == office)) if office else None
    user = accounts.create_user(s, username, username.title(), place, "admin" if admin else "staff")
    if password:
        user.password_hash = generate_password_hash(PASSWORD, method=FAST_HASH)
    return user


@pytest.fixture
def site(tmp_path, sqlite_template):
    """Demo data, a fresh staff-only post on top, an admin, a staff member and two invited users; served."""
    app = demo_app(tmp_path, sqlite_template)
    store_post(app, STAFF_POST_ID, STAFF_POST_TEXT, username="HPL_AllHands")  # protected on X: staff only
    with sessions(app)() as s:
        admin = _user(s, "harbourmaster", admin=True, office="lyon")
        _user(s, "docker", office="columbus")
        invite = accounts.issue_invite(s, _user(s, "newhire", password=False), timedelta(days=7))
        spare = accounts.issue_invite(s, _user(s, "later", password=False), timedelta(days=7))
        s.commit()
        admin_id = admin.id
    with serve(app) as url:
        yield Site(app, url, [], f"/invite/{invite}", f"/invite/{spare}", admin_id)
    sessions(app).kw["bind"].dispose()


@pytest.fixture
def new_page(chromium, site):
    """A page in a fresh phone context (cookies, cache), sealed off the network."""
    opener = PageOpener(chromium, site.url, site.seals)
    yield opener
    opener.close()


def sign_in(page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def path_of(page) -> str:
    return re.sub(r"^http://127\.0\.0\.1:\d+", "", page.url)


# --- the flows -------------------------------------------------------------------------------------------------------

def test_invite_sets_the_password_then_signing_out_ends_it(new_page, site):
    page = new_page()
    page.goto(site.invite)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Newhire")
    page.get_by_label("New password", exact=True).fill("my ship came in 2030")
    page.get_by_label("New password again").fill("my ship came in 2030")
    page.get_by_role("button", name="Set password").click()
    page.wait_for_url(f"{site.url}/account")
    expect(page.get_by_role("status")).to_contain_text("Your password is set.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Newhire")

    # The same link does not work twice.
    other = new_page()
    assert other.goto(site.invite).status == 410

    page.goto("/logout")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are signed out")
    assert page.locator('meta[name="feedapp-signed-out"]').count() == 1
    page.goto("/account")
    assert path_of(page).startswith("/login?next=")
    expect(page.get_by_role("link", name="Staff sign-in")).to_be_visible()


def test_wrong_password_is_explained_and_the_right_one_shows_staff_posts(new_page, site):
    page = new_page()
    sign_in(page, "docker", "not my password")
    error = page.locator("p.err")
    expect(error).to_have_text("Wrong username or password.")
    password = page.get_by_label("Password", exact=True)
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(password).to_have_attribute("aria-describedby", error.get_attribute("id"))
    expect(page.get_by_label("Username")).to_have_value("docker")  # kept; the password is not
    expect(password).to_have_value("")

    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{site.url}/")
    post = page.locator(f"#p{STAFF_POST_ID}")
    expect(post).to_contain_text(STAFF_POST_TEXT)
    lock = post.locator(".lock")
    expect(lock).to_be_visible()
    expect(lock).to_have_attribute("title", "Staff only")
    expect(lock).to_contain_text("Staff only")  # for screen readers, next to the 🔒


def test_anonymous_readers_do_not_see_the_staff_post(new_page, site):
    page = new_page()
    page.goto("/")
    assert page.locator(f"#p{STAFF_POST_ID}").count() == 0
    assert page.locator(".lock").count() == 0
    assert STAFF_POST_TEXT not in page.content()


# --- every auth page: console, width --------------------------------------------------------------------------------

def tour(page, site, wrong_password: bool = False):
    """Show the sign-in, invite, account and admin pages in turn (signing in as the admin on the way).

    A generator: it yields a label while each page is on screen, for the caller to check it.
    """
    for path in ("/login", site.spare_invite):
        assert page.goto(path).status == 200, path
        yield path
    if wrong_password:  # the form with its error (a 401, which Chromium itself logs as a failed load)
        sign_in(page, "harbourmaster", "wrong password")
        expect(page.locator("p.err")).to_be_visible()
        yield "/login (wrong password)"
    sign_in(page, "harbourmaster")
    page.wait_for_url(f"{site.url}/")
    yield "/ (signed in)"
    for path in ("/account", "/admin/users", f"/admin/users/{site.admin_id}", "/logout"):
        assert page.goto(path).status == 200, path
        yield path
    # The invite handout an admin prints: the inline SVG QR code and the link.
    page.goto("/admin/users")
    page.get_by_label("Username").fill("deckcadet")
    page.get_by_role("button", name=re.compile("Create")).click()
    expect(page.locator(".qr svg")).to_be_visible()
    expect(page.get_by_label("Invite link")).to_have_value(re.compile(r"/invite/"))
    yield "invite handout"
    # And a refused form on the admin page (taken username).
    page.goto("/admin/users")
    page.get_by_label("Username").fill("docker")
    page.get_by_role("button", name=re.compile("Create")).click()
    expect(page.locator("p.err")).to_be_visible()
    yield "/admin/users (refused)"


def test_no_console_errors_on_the_auth_and_admin_pages(new_page, site):
    page = new_page()
    problems = watch(page)
    seen = list(tour(page, site))
    assert len(seen) == 9, seen
    # The refused admin form is a 400: Chromium reports that document load itself; nothing else may appear.
    problems = [p for p in problems if "status of 400" not in p]
    assert problems == []


def test_no_horizontal_scroll_at_360_px(new_page, site):
    page = new_page()
    width = PHONE["viewport"]["width"]
    for where in tour(page, site, wrong_password=True):
        assert fits(page, width), (where, widths(page))


# --- keyboard --------------------------------------------------------------------------------------------------------

def test_tab_reaches_the_sign_in_fields_in_order(new_page):
    page = new_page()
    page.goto("/login")
    order = []
    for _ in range(15):
        page.keyboard.press("Tab")
        order.append(page.evaluate("""() => { const e = document.activeElement;
            return e.name || e.type === 'submit' && 'submit' || e.getAttribute('href') || e.tagName }"""))
        if order[-1] == "submit":
            break
    assert "username" in order, order
    start = order.index("username")
    assert order[start:] == ["username", "password", "remember", "submit"], order
    # And the whole form works from the keyboard alone.
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.type("docker")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/$"))
    expect(page.get_by_role("link", name="Sign out")).to_be_visible()


# --- the offline page the service worker keeps ----------------------------------------------------------------------

# The body of /offline as the worker saved it in its shell cache, or null while it has not yet.
OFFLINE_SAVED_JS = """async () => {
  for (const name of await caches.keys()) {
    if (!name.startsWith('shell-')) continue;
    const cache = await caches.open(name);
    for (const request of await cache.keys()) {
      if (new URL(request.url).pathname === '/offline') return await (await cache.match(request)).text();
    }
  }
  return null;
}"""


def test_the_offline_page_the_worker_keeps_names_nobody(new_page, site):
    page = new_page()
    # Sign in without opening a page first, so the worker installs (and saves /offline) while signed in.
    form = page.context.request.get("/login").text()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)[1]
    signed = page.context.request.post("/login", form={"csrf_token": token, "username": "docker",
                                                        "password": PASSWORD, "remember": "y"}, max_redirects=0)
    assert signed.status == 303
    page.goto("/")
    expect(page.get_by_role("link", name="Docker")).to_be_visible()  # the control: pages name the reader
    saved = until(page, OFFLINE_SAVED_JS, what="/offline in the worker's shell cache")
    assert "You are offline" in saved
    assert "Docker" not in saved and "docker" not in saved and 'href="/logout"' not in saved
    assert 'href="/login"' in saved  # the anonymous reader's header
