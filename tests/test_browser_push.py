"""Notifications of must-read posts in a real headless Chromium: the service worker's push, notificationclick and
pushsubscriptionchange handlers, and the opt-in block (static/push.js) against the app's /push/ routes.

Like tests/test_pwa.py: Debian's Chromium driven by Playwright, the demo company on its own SQLite copy served on
127.0.0.1, every context sealed off the network. Push is on: VAPID keys made as `db upgrade` makes them,
FEEDAPP_VAPID_SUBJECT set, and FEEDAPP_PUSH_HOSTS naming the loopback push service (tests/fakepush.py).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from feedapp import create_app
from feedapp.db import sessions
from feedapp.models import Office, PushSubscription
from feedapp.push.keys import ensure_vapid_keys, read_vapid_keys
from feedapp.push.outbox import DeliverySettings, deliver, queue_push
from tests.browser import PHONE, PageOpener, fits, serve, watch
from tests.fakepush import FakePush
from tests.test_browser_auth import PASSWORD, _user, sign_in
from tests.test_pwa import run, until, wait_for_worker

SUBJECT = "mailto:comms@example.com"
ON = "Must-read posts will be sent to this device."
BLOCKED = "Notifications are blocked for this site in your browser settings."
IOS_STEPS = ("To get notifications on iPhone: tap Share, then Add to Home Screen, then open the app from your home "
             "screen (iOS 16.4 or later).")
IPHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
             "Version/17.4 Mobile/15E148 Safari/604.1")
IPAD_UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
           "Version/17.4 Safari/605.1.15")  # iPadOS's Safari asks for desktop pages: it says it is a Mac


@dataclass
class Site:
    app: object
    url: str
    seals: list
    push: FakePush


def push_demo_app(tmp_path, sqlite_template, **config):
    """The demo company with push on (keys as `db upgrade` makes them); config overrides."""
    db = tmp_path / "browser.db"
    shutil.copy(sqlite_template, db)
    instance = tmp_path / "instance"
    ensure_vapid_keys(str(instance))
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(instance), "FEEDAPP_DATABASE_URL": f"sqlite:///{db}",
                      "FEEDAPP_STATE_TTL": 0, "FEEDAPP_VAPID_SUBJECT": SUBJECT, **config})
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    with sessions(app)() as s:
        _user(s, "docker", office="columbus")
        _user(s, "harbourmaster", admin=True)
        s.commit()
    return app


@pytest.fixture
def site(tmp_path, sqlite_template):
    """The demo site with push on, the loopback push service allowed, served on 127.0.0.1."""
    ensure_vapid_keys(str(tmp_path / "instance"))
    public_key = read_vapid_keys(str(tmp_path / "instance")).public_key
    with FakePush(public_key, SUBJECT) as push:
        app = push_demo_app(tmp_path, sqlite_template, FEEDAPP_PUSH_HOSTS=push.origin)
        with serve(app) as url:
            yield Site(app, url, [], push)
        sessions(app).kw["bind"].dispose()


@pytest.fixture
def new_page(chromium, site):
    opener = PageOpener(chromium, site.url, site.seals)
    yield opener
    opener.close()


def rows(app) -> list[PushSubscription]:
    with sessions(app)() as s:
        return s.scalars(select(PushSubscription).order_by(PushSubscription.id)).all()


def office_id(app, slug: str) -> int:
    with sessions(app)() as s:
        return s.scalar(select(Office.id).where(Office.slug == slug))


def posted(method: str):
    """Matches the page's request to /push/subscriptions with method (wait for it with page.expect_response:
    Playwright lets the page's requests through only while the test waits on it, never while it sleeps)."""
    return lambda r: r.url.endswith("/push/subscriptions") and r.request.method == method


# --- the service worker: push, notificationclick, pushsubscriptionchange -------------------------------------------

NOTIFICATIONS_JS = """(tag) => navigator.serviceWorker.getRegistration().then(r => r.getNotifications(tag ? {tag} : {}))
  .then(list => list.map(n => ({title: n.title, body: n.body, tag: n.tag, data: n.data, icon: n.icon,
                                badge: n.badge, lang: n.lang, dir: n.dir, requireInteraction: n.requireInteraction})))
  .then(list => list.length ? list : null)"""  # null while there is none, for until()


def push_ready_page(new_page, site, path="/"):
    """A page under the active service worker, with notifications allowed, and a DevTools session on it."""
    page = new_page(service_workers="allow")
    page.context.grant_permissions(["notifications"], origin=site.url)
    page.goto(path)
    wait_for_worker(page)
    cdp = page.context.new_cdp_session(page)
    registrations: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    until(page, "() => true")  # lets Playwright hand over the events ServiceWorker.enable sent
    ours = [r for r in registrations if r["scopeURL"] == site.url + "/" and not r["isDeleted"]]
    assert ours, registrations
    return page, cdp, ours[0]["registrationId"]


def deliver_push(cdp, site, registration_id: str, data: str) -> None:
    """A push message as the browser's push service would hand it to the worker (DevTools: no network)."""
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": site.url, "registrationId": registration_id, "data": data})


def test_a_push_shows_its_notification_and_an_unreadable_one_a_generic_line(new_page, site):
    page, cdp, registration = push_ready_page(new_page, site)
    problems = watch(page)
    message = {"title": "Must read: depot closed", "body": "Lyon depot closed Friday; use Gate B.",
               "url": "/posts/123", "tag": "must-read-123", "postId": "123", "lang": "en", "dir": "ltr"}
    deliver_push(cdp, site, registration, json.dumps(message))
    [shown] = until(page, NOTIFICATIONS_JS, "must-read-123", what="the must-read notification")
    assert (shown["title"], shown["body"], shown["tag"]) == (message["title"], message["body"], "must-read-123")
    assert shown["data"] == {"url": site.url + "/posts/123"}
    assert shown["lang"] == "en" and shown["dir"] == "ltr" and shown["requireInteraction"] is False
    manifest = page.request.get("/manifest.webmanifest").json()
    assert shown["icon"] == site.url + manifest["icons"][0]["src"]  # the site's icon, branded or not
    assert shown["badge"].startswith(site.url + "/static/") and page.request.get(shown["badge"]).ok
    # Another with the same tag replaces it rather than stacking up.
    deliver_push(cdp, site, registration, json.dumps({**message, "body": "Reminder: Gate B."}))
    until(page, f"async () => {{ const l = await ({NOTIFICATIONS_JS})('must-read-123');"
                " return l && l.length === 1 && l[0].body === 'Reminder: Gate B.'; }", what="the replaced notification")

    for bad in ("not json {", "", json.dumps([1, 2]), json.dumps({"body": "no title"})):
        run(page, "() => navigator.serviceWorker.getRegistration().then(r => r.getNotifications())"
                  ".then(l => l.forEach(n => n.close()))")
        deliver_push(cdp, site, registration, bad)
        [generic] = until(page, NOTIFICATIONS_JS, None, what=f"a notification for the push {bad!r}")
        assert (generic["title"], generic["body"]) == (
            "Must-read post", "There is a new must-read post. Open the app to read it."), bad
        assert generic["data"] == {"url": site.url + "/"} and generic["tag"] == ""
    # A push naming another site's page: the notification opens our root instead.
    deliver_push(cdp, site, registration, json.dumps({**message, "tag": "evil", "url": "https://evil.example/x"}))
    [evil] = until(page, NOTIFICATIONS_JS, "evil", what="the notification naming another site")
    assert evil["data"] == {"url": site.url + "/"}
    assert problems == []


def worker_of(page, site):
    """The service worker (Playwright's handle on it, to run script inside it)."""
    workers = [w for w in page.context.service_workers if w.url.startswith(site.url + "/sw.js")]
    assert len(workers) == 1, [w.url for w in page.context.service_workers]
    return workers[0]


# In the worker: the handler runs on a real notification from getNotifications(), dispatched as the browser would
# dispatch a tap. Only the browser's part is stood in for: a script-made event has no waitUntil of its own (Chromium
# throws "already finished"), so the test keeps the promise the handler hands to it and awaits it, as the browser
# keeps the worker alive for it.
CLICK_JS = """async (tag) => {
  const [notification] = await self.registration.getNotifications({tag});
  const event = new NotificationEvent("notificationclick", {notification});
  const kept = [];
  Object.defineProperty(event, "waitUntil", {value: (promise) => kept.push(promise)});
  self.dispatchEvent(event);
  const settled = await Promise.allSettled(kept);
  return {kept: kept.length, left: (await self.registration.getNotifications({tag})).length,
          outcomes: settled.map(s => s.status === "fulfilled" ? "fulfilled" : String(s.reason))};
}"""


def test_tapping_a_notification_takes_the_open_tab_to_the_post_and_never_to_another_site(new_page, site):
    page, cdp, registration = push_ready_page(new_page, site, "/offices")
    worker = worker_of(page, site)
    deliver_push(cdp, site, registration, json.dumps({"title": "Must read", "body": "Gate B", "url": "/posts/9?x=1#top",
                                                      "tag": "t1"}))
    until(page, NOTIFICATIONS_JS, "t1", what="the notification")
    outcome = worker.evaluate(CLICK_JS, "t1")
    assert outcome == {"kept": 1, "left": 0, "outcomes": ["fulfilled"]}  # handled, and the notification closed
    page.wait_for_url(site.url + "/posts/9?x=1#top")

    page.goto("/offices")
    wait_for_worker(page)
    deliver_push(cdp, site, registration, json.dumps({"title": "Must read", "url": "https://evil.example/phish",
                                                      "tag": "t2"}))
    until(page, NOTIFICATIONS_JS, "t2", what="the notification naming another site")
    assert worker.evaluate(CLICK_JS, "t2")["outcomes"] == ["fulfilled"]
    page.wait_for_url(site.url + "/")  # the site's root, not the other site
    # Sealed: had the page gone to the other site, the seal would have seen (and failed) it at close.


def test_with_no_tab_open_a_tap_opens_a_window_only_with_the_browsers_tap(new_page, site):
    """With no tab of the site open the handler calls clients.openWindow, which Chromium allows only during a real
    tap on the notification (a script-made event has no user activation, and DevTools cannot tap a notification):
    the test sees the handler ask for the post's URL and Chromium refuse it for want of that tap."""
    page, cdp, registration = push_ready_page(new_page, site)
    worker = worker_of(page, site)
    deliver_push(cdp, site, registration, json.dumps({"title": "Must read", "url": "/posts/7", "tag": "t3"}))
    until(page, NOTIFICATIONS_JS, "t3", what="the notification")
    page.goto("about:blank")  # no window of the site is left
    # Which URL the handler asks to open, recorded on the way to the browser's own openWindow.
    worker.evaluate("""() => { const open = self.clients.openWindow.bind(self.clients);
        self.__opened = []; self.clients.openWindow = (url) => { self.__opened.push(url); return open(url); }; }""")
    outcome = worker.evaluate(CLICK_JS, "t3")
    assert outcome == {"kept": 1, "left": 0, "outcomes": ["InvalidAccessError: Not allowed to open a window."]}
    assert worker.evaluate("() => self.__opened") == [site.url + "/posts/7"]


CHANGE_JS = """async (subscription) => {
  const standIn = {endpoint: subscription.endpoint, toJSON: () => subscription};
  const event = new Event("pushsubscriptionchange");
  Object.assign(event, {oldSubscription: null, newSubscription: standIn});
  const kept = [];
  Object.defineProperty(event, "waitUntil", {value: (promise) => kept.push(promise)});
  self.dispatchEvent(event);
  const settled = await Promise.allSettled(kept);
  return settled.map(s => s.status === "fulfilled" ? "fulfilled" : String(s.reason));
}"""


def test_a_renewed_subscription_is_sent_to_the_server_by_the_worker(new_page, site):
    """pushsubscriptionchange (fired by Firefox when the push service renews a subscription): the worker posts the new
    one, filed under the reader's office (the worker's requests carry the site's cookies)."""
    page, _, _ = push_ready_page(new_page, site)
    page.context.add_cookies([{"name": "office", "value": "lyon", "url": site.url}])
    _, subscription = site.push.subscribe()
    assert worker_of(page, site).evaluate(CHANGE_JS, subscription) == ["fulfilled"]
    [row] = rows(site.app)
    assert (row.endpoint, row.office_id, row.staff) == (subscription["endpoint"], office_id(site.app, "lyon"), False)


# --- the opt-in block ---------------------------------------------------------------------------------------------

# Only the browser's link to its push service is replaced: headless Chromium's pushManager.subscribe() would ask
# Google's push service (unreachable here), so subscribe/getSubscription give a subscription at the loopback push
# service, with keys the test made (FakePush holds the private key and decrypts what the server sends). Everything
# else is the browser's own: permissions, the service worker, fetch, the page's script. The page's calls to
# Notification.requestPermission are counted, with whether the page had a user gesture at the time.
STAND_IN_JS = """((subscription) => {
  const KEY = "__standInSubscribed";
  const make = () => ({endpoint: subscription.endpoint, expirationTime: null, options: {userVisibleOnly: true},
    toJSON: () => subscription,
    unsubscribe: async () => { localStorage.removeItem(KEY); return true; }});
  PushManager.prototype.subscribe = async function (options) {
    const key = new Uint8Array(options.applicationServerKey);
    window.__subscribedWith = {userVisibleOnly: options.userVisibleOnly,
      key: btoa(String.fromCharCode(...key)).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "")};
    localStorage.setItem(KEY, "1");
    return make();
  };
  PushManager.prototype.getSubscription = async function () { return localStorage.getItem(KEY) ? make() : null; };
  const ask = Notification.requestPermission.bind(Notification);
  window.__permissionAsked = [];
  Notification.requestPermission = function () {
    window.__permissionAsked.push(navigator.userActivation.isActive);
    return ask();
  };
})(%s);"""


def opt_in_page(new_page, site, subscription, grant=True, **options):
    page = new_page(service_workers="allow", **options)
    if grant:
        page.context.grant_permissions(["notifications"], origin=site.url)
    page.add_init_script(STAND_IN_JS % json.dumps(subscription))
    return page


def block(page) -> None:
    """Scroll to the notifications block (hidden until push.js, which loads as what holds it nears the screen)."""
    page.evaluate("() => document.getElementById('push').parentNode.scrollIntoView({block: 'end'})")


def test_an_anonymous_reader_opts_in_for_their_office_gets_pushes_and_stops(new_page, site):
    sub_id, subscription = site.push.subscribe()
    page = opt_in_page(new_page, site, subscription)
    problems = watch(page)
    page.context.add_cookies([{"name": "office", "value": "lyon", "url": site.url}])
    page.goto("/")
    go = page.get_by_role("button", name="Notify me of must-read posts")
    # Never on load: push.js is not even fetched until its block nears the screen.
    assert page.evaluate("() => [...document.scripts].some(s => s.src.includes('/push.'))") is False
    block(page)
    expect(go).to_be_visible()
    expect(page.locator("#push .push-what")).to_have_text(
        "Get a notification on this device when a must-read post is published.")
    assert page.evaluate("() => window.__permissionAsked") == []
    go.click()
    status = page.get_by_role("status").filter(has_text=ON)
    expect(status).to_be_visible()
    stop = page.get_by_role("button", name="Stop notifications")
    expect(stop).to_be_focused()
    expect(go).to_be_hidden()
    assert page.evaluate("() => window.__permissionAsked") == [True]  # once, inside the tap
    key = page.request.get("/push/key").json()["publicKey"]
    assert page.evaluate("() => window.__subscribedWith") == {"userVisibleOnly": True, "key": key}
    [row] = rows(site.app)
    assert (row.endpoint, row.p256dh, row.auth) == (subscription["endpoint"], subscription["keys"]["p256dh"],
                                                     subscription["keys"]["auth"])
    assert (row.office_id, row.staff, row.user_id) == (office_id(site.app, "lyon"), False, None)

    # What the page sent works: the worker's delivery reaches the loopback push service, which decrypts it.
    with sessions(site.app)() as s:
        queue_push(s, [row.id], {"title": "Must read", "body": "Gate B", "url": "/posts/1"}, topic="must-read-1")
        s.commit()
    summary = deliver(sessions(site.app), DeliverySettings.from_push(site.app.extensions["feedapp.push"]))
    assert summary.sent == 1 and site.push.problems == []
    assert json.loads(site.push.payloads(sub_id)[0])["body"] == "Gate B"

    # Another page, or later: the block says so from the browser's own subscription (the HTML is shared).
    page.goto("/offices")
    block(page)
    expect(page.get_by_role("status").filter(has_text=ON)).to_be_visible()
    expect(go).to_be_hidden()
    stop.click()
    # The block turns back to the button only once the server has answered the DELETE (push.js tells the server,
    # then unsubscribes): the row is gone by then. (The page is under the service worker now, whose fetches
    # Playwright does not report as the page's responses.)
    expect(go).to_be_visible()
    expect(go).to_be_focused()
    assert rows(site.app) == []
    assert run(page, "() => navigator.serviceWorker.ready.then(r => r.pushManager.getSubscription())") is None  # bounded
    assert page.evaluate("() => window.__permissionAsked") == []  # this page never asked
    assert problems == []


def test_a_signed_in_reader_subscribes_as_staff_and_back_as_public_after_signing_out(new_page, site):
    _, subscription = site.push.subscribe()
    page = opt_in_page(new_page, site, subscription)
    problems = watch(page)
    sign_in(page, "docker")
    page.goto("/account")  # the block sits in the page itself, under the feed links
    go = page.get_by_role("button", name="Notify me of must-read posts")
    go.click()
    expect(page.get_by_role("status").filter(has_text=ON)).to_be_visible()
    [row] = rows(site.app)
    assert row.staff and row.user_id is not None and row.office_id == office_id(site.app, "columbus")
    page.goto("/logout")
    # Signing out drops the staff subscription on the server; the next page files this phone under public news.
    with page.expect_response(posted("POST")) as answer:
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("You are signed out")
        block(page)
    assert answer.value.status == 201
    expect(page.get_by_role("status").filter(has_text=ON)).to_be_visible()
    [row] = rows(site.app)
    assert not row.staff and row.user_id is None and row.endpoint == subscription["endpoint"]
    assert problems == []


def test_the_browser_that_changes_the_password_is_filed_as_staff_again(new_page, site):
    """A new password drops every staff subscription of the person (a lost phone must stop getting staff news); the
    account page shown right after it has this browser send its own again."""
    _, subscription = site.push.subscribe()
    page = opt_in_page(new_page, site, subscription)
    problems = watch(page)
    sign_in(page, "docker")
    page.goto("/account")
    page.get_by_role("button", name="Notify me of must-read posts").click()
    expect(page.get_by_role("status").filter(has_text=ON)).to_be_visible()
    [row] = rows(site.app)
    docker = row.user_id
    assert row.staff and docker is not None
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill("a lighthouse at noon 7")
    page.get_by_label("New password again").fill("a lighthouse at noon 7")
    with page.expect_response(posted("POST")) as answer:
        page.get_by_role("button", name="Change password").click()
        expect(page.get_by_text("Password changed. Other phones and browsers are signed out.")).to_be_visible()
        block(page)
    assert answer.value.status == 201
    [row] = rows(site.app)
    assert (row.endpoint, row.staff, row.user_id) == (subscription["endpoint"], True, docker)
    expect(page.get_by_role("status").filter(has_text=ON)).to_be_visible()
    # Only that page asks (the flag is taken once): the next shows the subscription as it is.
    page.goto("/account")
    block(page)
    expect(page.get_by_role("status").filter(has_text=ON)).to_be_visible()
    assert page.locator("#push[data-refile]").count() == 0
    assert problems == []


def test_blocked_notifications_say_where_to_change_it(new_page, site):
    _, subscription = site.push.subscribe()
    page = opt_in_page(new_page, site, subscription, grant=False)
    page.goto("/offices")
    # What the reader's "Block" in the browser's settings does (Playwright can only grant): DevTools, for this context.
    context_id = page.context.new_cdp_session(page).send("Target.getTargetInfo")["targetInfo"]["browserContextId"]
    page.context.browser.new_browser_cdp_session().send("Browser.setPermission", {
        "permission": {"name": "notifications"}, "setting": "denied", "origin": site.url,
        "browserContextId": context_id})
    page.reload()
    assert page.evaluate("() => Notification.permission") == "denied"
    block(page)
    expect(page.locator("#push").get_by_role("status")).to_have_text(BLOCKED)
    expect(page.get_by_role("button", name="Notify me of must-read posts")).to_be_hidden()
    assert rows(site.app) == []


def test_a_prompt_answered_without_permission_subscribes_nothing(new_page, site):
    """Headless Chromium answers a permission prompt nobody can see with "default" or "denied": either way no
    subscription is made, and the page says why."""
    _, subscription = site.push.subscribe()
    page = opt_in_page(new_page, site, subscription, grant=False)
    page.goto("/offices")
    block(page)
    page.get_by_role("button", name="Notify me of must-read posts").click()
    status = page.locator("#push").get_by_role("status")
    expect(status).not_to_have_text("")
    permission = page.evaluate("() => Notification.permission")
    expect(status).to_have_text(BLOCKED if permission == "denied" else "Notifications were not allowed.")
    assert page.evaluate("() => window.__permissionAsked") == [True]
    assert rows(site.app) == []


@pytest.mark.parametrize("user_agent, touch_points", [(IPHONE_UA, 5), (IPAD_UA, 5)])
def test_safari_on_iphone_and_ipad_shows_install_steps_instead_of_a_button(new_page, site, user_agent, touch_points):
    page = new_page(service_workers="allow", user_agent=user_agent)
    page.add_init_script(f"Object.defineProperty(Navigator.prototype, 'maxTouchPoints', {{get: () => {touch_points}}});"
                         "Object.defineProperty(Navigator.prototype, 'standalone', {get: () => false});")
    page.goto("/offices")
    block(page)
    expect(page.locator("#push .push-ios")).to_have_text(IOS_STEPS)
    expect(page.get_by_role("button", name="Notify me of must-read posts")).to_be_hidden()


def test_a_mac_without_touch_is_not_taken_for_an_ipad(new_page, site):
    _, subscription = site.push.subscribe()
    page = opt_in_page(new_page, site, subscription, user_agent=IPAD_UA)  # maxTouchPoints is 0 without touch
    page.goto("/offices")
    block(page)
    expect(page.get_by_role("button", name="Notify me of must-read posts")).to_be_visible()
    expect(page.locator("#push .push-ios")).to_be_hidden()


def test_the_block_fits_a_phone_in_french_and_dark_mode(new_page, site):
    _, subscription = site.push.subscribe()
    page = opt_in_page(new_page, site, subscription, color_scheme="dark", locale="fr-FR")
    page.goto("/offices")
    block(page)
    go = page.get_by_role("button", name="M’avertir des messages à lire absolument")
    expect(go).to_be_visible()
    assert page.evaluate("() => document.querySelector('#push .push-status').getAttribute('aria-live')") == "polite"
    assert fits(page, PHONE["viewport"]["width"])
    go.click()
    expect(page.get_by_role("status").filter(has_text="Les messages à lire absolument seront envoyés sur cet "
                                                      "appareil.")).to_be_visible()
    assert fits(page, PHONE["viewport"]["width"])


def test_with_push_off_pages_show_nothing_and_the_account_page_says_why(chromium, tmp_path, sqlite_template):
    app = push_demo_app(tmp_path, sqlite_template, FEEDAPP_VAPID_SUBJECT=None)
    with serve(app) as url:
        opener = PageOpener(chromium, url, [])
        try:
            page = opener()
            page.goto("/")
            assert page.locator("#push").count() == 0
            sign_in(page, "harbourmaster")
            page.goto("/account")
            section = page.locator("#push")
            expect(section).to_contain_text("Notifications are not available on this site.")
            expect(section).to_contain_text("FEEDAPP_VAPID_SUBJECT")  # the reason, for the administrator
            expect(page.get_by_role("button", name="Notify me of must-read posts")).to_have_count(0)
        finally:
            opener.close()
    sessions(app).kw["bind"].dispose()
