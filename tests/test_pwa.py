"""The installable app in a real headless Chromium: install criteria, offline pages, updates, sign-out purge,
language switch, keyboard use and a quiet console, with the service worker running.

One Chromium for the module (plus one persistent profile for the install check: a normal
context always counts as incognito), one demo site for the module on its own SQLite copy,
a fresh context per test. Nothing leaves 127.0.0.1 (tests/browser.py, Seal).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import time
from dataclasses import dataclass

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import select

from feedapp import accounts
from feedapp.db import sessions
from feedapp.models import Post, Source
from feedapp.web import pwa
from tests.browser import (CHROMIUM, CHROMIUM_ARGS, PATIENCE, PHONE, Seal, demo_app, load_all_images, patient, serve,
                           watch)

# Every post card, a thread's later parts (shown inside their first post's card) included: 20 a page.
ARTICLE_IDS_JS = "() => [...document.querySelectorAll('article.post, article.part')].map(a => a.id)"
# The registration as plain data: which workers it has, in which state, and what controls the page.
SW_STATE_JS = """() => navigator.serviceWorker.getRegistration().then(r => ({
  registered: !!r, installing: !!(r && r.installing), waiting: !!(r && r.waiting),
  active: r && r.active ? r.active.state : null,
  controller: navigator.serviceWorker.controller ? navigator.serviceWorker.controller.state : null}))"""
SW_ACTIVE_JS = """() => navigator.serviceWorker.getRegistration()
  .then(r => !!(r && r.active && r.active.state === 'activated'))"""
CONTROLLED_JS = "() => !!navigator.serviceWorker.controller"
# Where the page is, for failure messages.
PAGE_STATE_JS = "() => ({url: location.href, readyState: document.readyState, visibility: document.visibilityState})"
CACHE_NAMES_JS = "() => caches.keys()"
# Whether a cache holds a copy of a URL, without opening (and so creating) a cache that is not there.
CACHED_JS = """async ([name, url]) => {
  if (!(await caches.has(name))) return false;
  return !!(await (await caches.open(name)).match(url, {ignoreVary: true}));
}"""
# Every cached response body as text, by cache name and URL (images read as garbage, which is fine).
CACHE_DUMP_JS = """async () => {
  const out = {};
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    out[name] = {};
    for (const request of await cache.keys()) {
      const response = await cache.match(request);
      out[name][request.url] = response ? await response.text() : "";
    }
  }
  return out;
}"""
STAFF_PASSWORD = "correct horse battery"


@dataclass
class Site:
    """The app under test and the URL it is served at."""

    app: object
    url: str


@pytest.fixture(scope="module")
def pw():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def chromium(pw):
    """One headless Debian Chromium for the module."""
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory, sqlite_template):
    """The app with the demo data on its own SQLite copy, served on 127.0.0.1 (one per module: tests only read,
    except the staff user the sign-out test adds; each test has its own browser context)."""
    tmp = tmp_path_factory.mktemp("pwa")
    app = demo_app(tmp, sqlite_template)
    with serve(app) as url:
        yield Site(app, url)
    sessions(app).kw["bind"].dispose()


@pytest.fixture
def new_context(chromium, site):
    """A fresh phone context (keyword options override PHONE), sealed off the network."""
    contexts = []
    seals: list[Seal] = []

    def _new_context(**options):
        context = patient(chromium.new_context(**{**PHONE, "base_url": site.url, **options}))
        contexts.append(context)
        seal = Seal(site.url)
        seals.append(seal)
        context.route("**/*", seal)
        return context

    yield _new_context
    for context in contexts:
        context.close()
    blocked = [url for seal in seals for url in seal.blocked]
    assert not blocked, f"the page asked for non-image resources on other hosts: {blocked}"


def poll_js(js: str, arg, key: str, truthy: bool) -> str:
    """A wait_for_function predicate that runs js(arg) (which may return a promise) and gives {value} once it has
    settled, and is truthy when `truthy` is set; until then it is falsy and runs js again on the next poll."""
    slot, call = f"window[{json.dumps(key)}]", f"({js})({json.dumps(arg)})"
    wanted = "slot.error === undefined && slot.value" if truthy else "true"
    return f"""() => {{
      const slot = {slot} || ({slot} = {{}});
      if (slot.settled) {{
        delete {slot};
        return ({wanted}) ? {{value: slot.value, error: slot.error}} : false;
      }}
      if (!slot.started) {{
        slot.started = true;
        Promise.resolve().then(() => {call}).then(
          value => {{ slot.settled = true; slot.value = value; }},
          error => {{ slot.settled = true; slot.error = String(error); }});
      }}
      return false;
    }}"""


_calls = itertools.count()


def _settle(page, js: str, arg, timeout: float, truthy: bool) -> dict:
    """Poll js(arg) in the page, on a timer (so it also runs while a page is still loading or not yet painted), and
    through navigations (a new document starts it afresh), until it settles (or, with truthy, gives a truthy value).
    Bounded by Playwright's own clock: page.evaluate has none, and waits for ever on a promise that never settles."""
    deadline = time.monotonic() + timeout
    predicate = poll_js(js, arg, f"__feedappTest{next(_calls)}", truthy)
    while True:
        handle = page.wait_for_function(predicate, polling=50, timeout=max(deadline - time.monotonic(), 0.001) * 1000)
        try:
            return handle.json_value()
        except PlaywrightError:  # the page navigated between the predicate and reading its value: again
            if time.monotonic() > deadline:
                raise
        finally:
            with contextlib.suppress(PlaywrightError):  # its document may be gone already
                handle.dispose()


def run(page, js: str, arg=None, timeout: float = PATIENCE):
    """js(arg) evaluated in the page, its promise awaited; bounded, unlike page.evaluate."""
    settled = _settle(page, js, arg, timeout, truthy=False)
    if settled.get("error") is not None:
        raise AssertionError(f"{js} failed in the page: {settled['error']}")
    return settled.get("value")


def until(page, js: str, arg=None, timeout: float = PATIENCE, what: str = ""):
    """Evaluate js (which may return a promise) until it gives something truthy; return that.

    The timeout is only a guard against hanging for ever: it is generous, and a passing test never waits for it.
    """
    try:
        return _settle(page, js, arg, timeout, truthy=True)["value"]
    except PlaywrightTimeoutError:
        pass
    state = {}
    for name, probe, probe_arg in (("last", js, arg), ("worker", SW_STATE_JS, None), ("page", PAGE_STATE_JS, None)):
        try:
            state[name] = run(page, probe, probe_arg, timeout=5)
        except (PlaywrightError, AssertionError) as exc:
            state[name] = str(exc).splitlines()[0]
    raise AssertionError(f"timed out after {timeout} s waiting for {what or js}: {state}")


def wait_for_worker(page) -> None:
    """Until the service worker is active and controls the page (it claims open pages when it activates)."""
    until(page, SW_ACTIVE_JS, what="an active service worker")
    if not run(page, CONTROLLED_JS):
        page.reload()
    until(page, CONTROLLED_JS, what="the service worker to control the page")


def open_saved(page, url: str, cache: str = "pages-public") -> None:
    """Open url under the service worker and wait until the worker has saved it for offline reading."""
    page.goto(url)
    until(page, CACHED_JS, [cache, page.url], what=f"{page.url} in the {cache} cache")


def shell_caches(page) -> list[str]:
    return sorted(n for n in run(page, CACHE_NAMES_JS) if n.startswith("shell-"))


# --- installability -------------------------------------------------------------------------------------------


def test_manifest_icons_and_worker_are_served_right(site):
    client = site.app.test_client()
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response.mimetype == "application/manifest+json"
    manifest = json.loads(response.get_data(as_text=True))
    assert manifest["id"] == "/" and manifest["start_url"] == "/" and manifest["scope"] == "/"
    assert manifest["display"] == "standalone"
    assert manifest["name"] and manifest["short_name"] and len(manifest["short_name"]) <= 12
    assert manifest["description"] == "News from the company for every team."
    assert manifest["lang"] == "en"
    hex_colour = re.compile(r"^#[0-9a-fA-F]{6}$")
    assert hex_colour.match(manifest["theme_color"]) and hex_colour.match(manifest["background_color"])
    sizes = {(icon["sizes"], icon.get("purpose", "any")) for icon in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any")} <= sizes
    assert any("maskable" in icon.get("purpose", "").split() for icon in manifest["icons"])
    for icon in manifest["icons"]:
        assert icon["type"] == "image/png"
        with client.get(icon["src"]) as image:
            assert image.status_code == 200, icon
            assert image.mimetype == "image/png", icon
            body = image.get_data()
        assert body[:8] == b"\x89PNG\r\n\x1a\n", icon
        width, height = int.from_bytes(body[16:20], "big"), int.from_bytes(body[20:24], "big")
        assert f"{width}x{height}" == icon["sizes"], icon

    french = client.get("/manifest.webmanifest", headers={"Accept-Language": "fr"})
    assert json.loads(french.get_data(as_text=True))["lang"] == "fr"

    worker = client.get("/sw.js")
    assert worker.status_code == 200
    assert worker.headers["Cache-Control"] == "no-cache"
    assert worker.mimetype in ("text/javascript", "application/javascript")
    assert "const SHELL" in worker.get_data(as_text=True)


def test_chromium_finds_the_app_installable(pw, site, tmp_path):
    # A persistent profile: every new_context() is incognito, which Chromium never lets install apps.
    context = patient(pw.chromium.launch_persistent_context(
        user_data_dir=str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
        base_url=site.url, **PHONE))
    seal = Seal(site.url)
    try:
        context.route("**/*", seal)
        # Counts Chromium's install offers; it runs before the page's own scripts, so it sees every one they see.
        context.add_init_script("addEventListener('beforeinstallprompt', () => {"
                                " window.__installPrompts = (window.__installPrompts || 0) + 1; })")
        page = context.pages[0] if context.pages else context.new_page()
        page.goto("/")
        wait_for_worker(page)
        cdp = context.new_cdp_session(page)
        manifest = cdp.send("Page.getAppManifest")
        assert manifest["errors"] == [], manifest["errors"]
        assert manifest["url"].endswith("/manifest.webmanifest")
        errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
        assert errors == [], errors

        # Installable, so Chromium offers it (beforeinstallprompt): the hint shows until dismissed, then never.
        page.reload()
        banner = page.locator("#install-banner")
        expect(banner).to_be_visible()
        expect(banner.get_by_role("button", name="Install")).to_be_visible()
        banner.get_by_role("button", name="Not now").click()
        expect(banner).to_be_hidden()
        page.reload()
        until(page, "() => window.__installPrompts > 0", what="Chromium to offer the install again")
        expect(banner).to_be_hidden()  # the page has seen the offer, and kept the hint hidden
    finally:
        context.close()
    assert seal.blocked == []


# --- offline --------------------------------------------------------------------------------------------------


def test_a_page_opened_before_reads_offline_and_an_unopened_one_says_offline(new_context):
    context = new_context()
    page = context.new_page()
    page.goto("/")
    wait_for_worker(page)
    open_saved(page, "/")  # now through the worker, which keeps a copy
    online = run(page, ARTICLE_IDS_JS)
    assert len(online) == 20
    expect(page.locator("#offline-banner")).to_be_hidden()

    context.set_offline(True)
    page.reload()
    assert run(page, ARTICLE_IDS_JS) == online
    banner = page.locator("#offline-banner")
    expect(banner).to_be_visible()
    expect(banner).to_have_text(re.compile(r"^Offline — showing posts from \d{1,2}:\d{2}"))
    assert page.locator("body").get_attribute("data-offline-saved")

    page.goto("/offices/lyon")  # never opened
    expect(page.locator("h1")).to_have_text("You are offline")
    assert page.locator("article.post").count() == 0
    context.set_offline(False)


def test_offline_reading_shows_the_pictures_the_worker_kept(new_context):
    context = new_context()
    page = context.new_page()
    page.goto("/")
    wait_for_worker(page)
    open_saved(page, "/")
    load_all_images(page)  # each one fetched through the worker
    sources = run(page, "() => [...new Set([...document.images].map(i => i.currentSrc))]")
    assert sources and all(src.startswith(page.url.rstrip("/") + "/media/") for src in sources), sources
    for src in sources:  # kept at their real size: same-origin, never opaque
        until(page, CACHED_JS, ["media", src], what=f"{src} in the media cache")

    context.set_offline(True)
    page.reload()
    expect(page.locator("#offline-banner")).to_be_visible()
    load_all_images(page)  # naturalWidth > 0 for every one, offline
    context.set_offline(False)


# --- update ---------------------------------------------------------------------------------------------------


def release(monkeypatch, version: str) -> None:
    """A new release: the worker script changes (its version is a hash of itself and the shell files)."""
    monkeypatch.setattr(pwa, "_version", lambda shell: version)


def offer_update(page, monkeypatch, version: str) -> str:
    """With the worker installed, publish a new one and check the page offers it; returns the old shell cache."""
    page.goto("/")
    wait_for_worker(page)
    [old_shell] = shell_caches(page)
    expect(page.locator("#update-banner")).to_be_hidden()
    release(monkeypatch, version)
    run(page, "() => navigator.serviceWorker.getRegistration().then(r => r.update())")
    expect(page.locator("#update-banner")).to_be_visible()
    expect(page.locator("#update-banner")).to_contain_text("A new version is ready.")
    return old_shell


def test_a_new_worker_is_offered_and_takes_over_after_reload(new_context, monkeypatch):
    page = new_context().new_page()
    old_shell = offer_update(page, monkeypatch, "test-update-2")
    assert run(page, SW_STATE_JS) == {"registered": True, "installing": False, "waiting": True,
                                      "active": "activated", "controller": "activated"}
    assert shell_caches(page) == sorted([old_shell, "shell-test-update-2"])  # the old one stays until then

    page.evaluate("() => { window.__beforeReload = true; }")
    page.locator("#update-reload").click()
    # Not expect_navigation(): see test_the_update_reload_happens_once, the page may reload more than once.
    until(page, "() => !window.__beforeReload && document.readyState === 'complete'", what="the page to reload")
    until(page, """() => navigator.serviceWorker.getRegistration().then(r => !r.installing && !r.waiting
                   && r.active.state === 'activated' && navigator.serviceWorker.controller === r.active)""",
          what="the new worker to control the page")
    until(page, "(old) => caches.keys().then(k => !k.includes(old))", old_shell, what="the old shell to go")
    assert shell_caches(page) == ["shell-test-update-2"]
    expect(page.locator("#update-banner")).to_be_hidden()
    assert run(page, ARTICLE_IDS_JS)


# Every reload this document starts fires a "navigate" event (Navigation API) at once, even if it is aborted.
COUNT_RELOADS_JS = """() => { window.__reloads = 0;
    navigation.addEventListener('navigate', e => { if (e.navigationType === 'reload') window.__reloads++; }); }"""
RELOADED_JS = "() => window.__reloads === undefined && document.readyState === 'complete'"
# Run before the page's own scripts, so its listener comes first: while window.__held is a list, the page's own
# listeners never see a controllerchange (the test lets them through later, in one task).
HOLD_CONTROLLER_CHANGES_JS = """navigator.serviceWorker.addEventListener('controllerchange', event => {
  if (window.__held) { event.stopImmediatePropagation(); window.__held.push(event.type); } });"""


def test_the_update_reload_happens_once(new_context, monkeypatch):
    context = new_context()
    context.add_init_script(HOLD_CONTROLLER_CHANGES_JS)
    page = context.new_page()
    offer_update(page, monkeypatch, "test-update-3")
    page.evaluate(COUNT_RELOADS_JS)
    # An impatient reader taps Reload twice, faster than the new worker takes over (so in one task).
    page.evaluate("""() => { window.__held = [];
        document.getElementById('update-reload').click();
        document.getElementById('update-reload').click(); }""")
    # The new worker takes over; the page does not hear of it yet. (Reloading before it has, as the page never does,
    # can hang Chromium for good: the reload waits for the old worker, which the takeover makes redundant.)
    until(page, """() => navigator.serviceWorker.getRegistration().then(r => window.__held.length > 0 && !r.waiting
                   && r.active.state === 'activated' && navigator.serviceWorker.controller === r.active)""",
          what="the new worker to take over")
    # Now, in one task (so this document is surely still there): the controller change reaches the page, then
    # another one, as Chromium sent under load.
    reloads = page.evaluate("""() => { window.__held = null;
        navigator.serviceWorker.dispatchEvent(new Event('controllerchange'));
        navigator.serviceWorker.dispatchEvent(new Event('controllerchange'));
        return window.__reloads; }""")
    until(page, RELOADED_JS, what="the page to reload")
    assert reloads == 1


def test_reload_still_works_after_another_tab_took_the_update(new_context, monkeypatch):
    context = new_context()
    first, second = context.new_page(), context.new_page()
    second.goto("/")
    offer_update(first, monkeypatch, "test-update-4")
    wait_for_worker(second)
    expect(second.locator("#update-banner")).to_be_visible()  # both tabs offer it

    first.locator("#update-reload").click()  # the new worker takes over both tabs; the first one reloads
    until(first, """() => navigator.serviceWorker.getRegistration().then(r => !r.waiting
                    && navigator.serviceWorker.controller === r.active)""", what="the first tab to reload")
    until(second, "() => navigator.serviceWorker.getRegistration().then(r => !r.waiting)",
          what="the new worker to take over the second tab too")
    second.evaluate(COUNT_RELOADS_JS)
    second.locator("#update-reload").click()  # no worker is waiting any more: this tab reloads at once
    until(second, RELOADED_JS, what="the second tab to reload")
    expect(second.locator("#update-banner")).to_be_hidden()


# --- sign-out purge -------------------------------------------------------------------------------------------


def staff_only_fragments(app) -> dict[int, list[str]]:
    """Pieces of every staff-only post's text as they appear verbatim in HTML (no entities, links or mentions)."""
    found = {}
    with sessions(app)() as s:
        for post in s.scalars(select(Post).join(Source).where(Source.protected | Source.staff_only)):
            pieces = re.split(r"https?://\S+|[@#]\w+|[&<>\"'\n]", post.text)
            found[post.id] = [p.strip() for p in pieces if len(p.strip()) >= 15]
            assert found[post.id], post.text
    assert found, "the demo data should have staff-only posts"
    return found


def make_staff(app, username: str) -> None:
    with sessions(app)() as s:
        if accounts.user_by_username(s, username) is None:
            user = accounts.create_user(s, username)
            accounts.set_password(s, user, STAFF_PASSWORD)
            s.commit()


def leaks(dump: dict, fragments: dict[int, list[str]]) -> list[tuple[str, str, str]]:
    """(cache, url, fragment) for every staff-only text found in a cache dump."""
    return [(name, url, piece) for name, entries in dump.items() for url, body in entries.items()
            for pieces in fragments.values() for piece in pieces if piece in body]


def test_signing_out_leaves_no_staff_only_post_on_the_phone(new_context, site):
    fragments = staff_only_fragments(site.app)
    make_staff(site.app, "pwa-staff")
    context = new_context()
    page = context.new_page()
    page.goto("/")
    wait_for_worker(page)
    open_saved(page, "/")  # the public front page, saved for offline reading
    assert leaks(run(page, CACHE_DUMP_JS), fragments) == []

    page.goto("/login")
    page.get_by_label("Username").fill("pwa-staff")
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))
    open_saved(page, "/", cache="pages-staff")
    shown = run(page, ARTICLE_IDS_JS)
    assert any(f"p{post_id}" in shown for post_id in fragments), "the staff front page should show staff-only posts"
    before = leaks(run(page, CACHE_DUMP_JS), fragments)
    assert before and {name for name, _, _ in before} == {"pages-staff"}, before

    page.goto("/logout")
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("h1")).to_have_text("You are signed out")
    until(page, "() => caches.keys().then(k => !k.includes('pages-staff'))", what="the staff pages cache to go")
    assert leaks(run(page, CACHE_DUMP_JS), fragments) == []

    context.set_offline(True)
    page.goto("/")
    html = page.content()
    assert [p for pieces in fragments.values() for p in pieces if p in html] == []
    assert not set(run(page, ARTICLE_IDS_JS)) & {f"p{post_id}" for post_id in fragments}
    assert leaks(run(page, CACHE_DUMP_JS), fragments) == []
    context.set_offline(False)


# --- language -------------------------------------------------------------------------------------------------


def test_language_switch_is_remembered_and_posts_keep_their_own_language(new_context):
    page = new_context(locale="fr-FR").new_page()
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("h1")).to_have_text("Nouvelles de l’entreprise")
    assert page.locator(".post .tx[lang=en]").count() > 0  # English posts stay marked English

    page.locator("footer").get_by_role("link", name="English").click()
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/\??$"))  # back where the reader was
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Company news")
    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Company news")
    page.goto("/offices")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Choose your office")
    page.goto("/offices/lyon")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert page.locator(".post .tx[lang=fr]").count() > 0
    expect(page.locator("footer").get_by_role("link", name="Français")).to_have_attribute("lang", "fr")


def test_the_offline_page_follows_a_language_switch(new_context):
    context = new_context()
    page = context.new_page()
    page.goto("/")
    wait_for_worker(page)
    page.locator("footer").get_by_role("link", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    context.set_offline(True)
    page.goto("/offices/columbus")  # never opened
    expect(page.locator("h1")).to_have_text(re.compile("You are offline|Vous êtes hors ligne"))
    assert page.locator("html").get_attribute("lang") == "fr"
    expect(page.locator("h1")).to_have_text("Vous êtes hors ligne")
    context.set_offline(False)


# --- keyboard -------------------------------------------------------------------------------------------------

# Number every element a Tab can reach up to the end of the first post, in document order.
FOCUSABLE_JS = """() => {
  const sel = 'a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])';
  const first = document.querySelector('article.post');
  const all = [...document.querySelectorAll(sel)].filter(e =>
      !e.disabled && e.checkVisibility({visibilityProperty: true}) || e.matches('a.skip'));
  const out = [];
  for (const [i, e] of all.entries()) {
    if (first.compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING && !first.contains(e)) break;
    e.dataset.tabIndexProbe = String(i);
    const where = e.matches('a.skip') ? 'skip' : e.closest('.brand') ? 'brand' : e.closest('header.top nav') ? 'nav'
        : first.contains(e) ? 'post' : e.closest('main') ? 'main' : 'other';
    out.push({probe: String(i), where, text: e.textContent.trim().slice(0, 40)});
  }
  return out;
}"""
FOCUSED_JS = """() => {
  const e = document.activeElement, s = getComputedStyle(e);
  const r = e.getBoundingClientRect();
  return {probe: e.dataset.tabIndexProbe || null, text: e.textContent.trim().slice(0, 40),
          outline: s.outlineStyle, outlineWidth: parseFloat(s.outlineWidth), shadow: s.boxShadow,
          focusVisible: e.matches(':focus-visible'), width: r.width, height: r.height};
}"""


def test_tab_order_and_focus_rings(new_context):
    page = new_context().new_page()
    page.goto("/")
    expected = run(page, FOCUSABLE_JS)
    places = [e["where"] for e in expected]
    # Skip link, brand, the main navigation, the feed's scope link, then the first post.
    assert places[:2] == ["skip", "brand"], expected
    nav = [e["text"] for e in expected if e["where"] == "nav"]
    assert nav == ["Company-wide only", "Staff sign-in"], expected  # the office switcher names the office shown
    assert places == ["skip", "brand", "nav", "nav"] + ["main"] * places.count("main") + ["post"] * places.count("post")
    assert places.count("post") >= 1 and expected[-1]["text"].startswith("Reply or like on X"), expected

    for want in expected:
        page.keyboard.press("Tab")
        got = run(page, FOCUSED_JS)
        assert got["probe"] == want["probe"], (want, got)
        ring = (got["outline"] != "none" and got["outlineWidth"] > 0) or got["shadow"] not in ("none", "")
        assert ring and got["focusVisible"], f"no visible focus indicator on {got}"
        assert got["width"] > 0 and got["height"] > 0, got


# --- console --------------------------------------------------------------------------------------------------


def test_no_console_errors_with_the_worker_active(new_context):
    context = new_context()
    page = context.new_page()
    problems = watch(page)
    page.goto("/")
    wait_for_worker(page)
    for url in ("/", "/offline", "/offices", "/login", "/"):
        page.goto(url)
        assert run(page, CONTROLLED_JS), url
    load_all_images(page)  # every image, through the worker, has loaded (or logged its failure) by now
    assert problems == []


def test_an_unchanged_worker_costs_a_304(site):
    client = site.app.test_client()
    first = client.get("/sw.js")
    again = client.get("/sw.js", headers={"If-None-Match": first.headers["ETag"]})
    assert first.status_code == 200 and again.status_code == 304 and again.data == b""
    assert again.headers["Cache-Control"] == "no-cache"
