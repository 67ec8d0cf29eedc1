"""Web Push, the web side: the VAPID keys, /push/key, subscriptions (scope, SSRF refusal, CSRF, sign-out)."""

from __future__ import annotations

import base64
import os

import pytest

from feedapp import create_app
from feedapp.push.keys import VAPID_KEY_FILE, check_subject, ensure_vapid_keys, read_vapid_keys

SUBJECT = "mailto:comms@example.com"


def test_db_upgrade_writes_the_vapid_keys_once(make_app, tmp_path):
    app = make_app()
    first = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert "VAPID" in first.output
    path = tmp_path / "instance" / VAPID_KEY_FILE
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    pem = path.read_bytes()
    again = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert again.exit_code == 0 and "VAPID" not in again.output
    assert path.read_bytes() == pem  # never replaced: every subscription is bound to it


def test_the_public_key_is_an_uncompressed_p256_point(tmp_path):
    assert ensure_vapid_keys(str(tmp_path)) is True
    assert ensure_vapid_keys(str(tmp_path)) is False
    point = base64.urlsafe_b64decode(read_vapid_keys(str(tmp_path)).public_key + "=")
    assert len(point) == 65 and point[0] == 4


def test_create_app_only_reads_the_keys(tmp_path):
    create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path), "FEEDAPP_VAPID_SUBJECT": SUBJECT})
    assert not os.path.exists(tmp_path / VAPID_KEY_FILE)


def test_push_key_answers_with_the_public_key(make_app, tmp_path):
    ensure_vapid_keys(str(tmp_path / "instance"))
    client = make_app(FEEDAPP_VAPID_SUBJECT=SUBJECT).test_client()
    response = client.get("/push/key")
    assert response.status_code == 200
    assert response.json == {"publicKey": read_vapid_keys(str(tmp_path / "instance")).public_key}


def test_push_key_says_why_push_is_off_without_a_subject(make_app, tmp_path):
    ensure_vapid_keys(str(tmp_path / "instance"))
    response = make_app().test_client().get("/push/key")
    assert response.status_code == 404
    assert response.json["error"] == "Push off" and "FEEDAPP_VAPID_SUBJECT" in response.json["message"]


def test_push_key_says_why_push_is_off_without_keys(make_app):
    response = make_app(FEEDAPP_VAPID_SUBJECT=SUBJECT).test_client().get("/push/key")
    assert response.status_code == 404 and "db upgrade" in response.json["message"]


@pytest.mark.parametrize("subject, ok", [
    ("mailto:comms@example.com", True),
    ("https://example.com/contact", True),
    ("mailto:nobody", False),
    ("http://example.com", False),
    ("comms@example.com", False),
    ("https://localhost", False),
])
def test_vapid_subject_is_validated(subject, ok):
    assert (check_subject(subject) is None) is ok


def test_an_invalid_subject_stops_the_app_with_a_clear_message(tmp_path):
    with pytest.raises(RuntimeError, match="FEEDAPP_VAPID_SUBJECT='comms@example.com' is not valid"):
        create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path), "FEEDAPP_VAPID_SUBJECT": "comms@example.com"})


def test_a_deleted_user_takes_their_subscriptions_and_queued_pushes(sessions):
    from sqlalchemy import delete, func, select

    from feedapp.models import Office, PushMessage, PushSubscription, User

    with sessions() as s:
        office = Office(slug="lyon", name="Lyon")
        user = User(username="ana", office=office)
        s.add_all([office, user])
        s.flush()
        mine = PushSubscription(endpoint="https://fcm.googleapis.com/fcm/send/a", p256dh="k", auth="a",
                                office_id=office.id, staff=True, user_id=user.id)
        anon = PushSubscription(endpoint="https://fcm.googleapis.com/fcm/send/b", p256dh="k", auth="a",
                                office_id=office.id)
        s.add_all([mine, anon])
        s.flush()
        s.add_all([PushMessage(subscription_id=mine.id, payload="{}"), PushMessage(subscription_id=anon.id, payload="{}")])
        s.commit()
        s.execute(delete(User).where(User.id == user.id))
        s.execute(delete(Office).where(Office.id == office.id))
        s.commit()
        s.expire_all()
        left = s.scalars(select(PushSubscription)).all()
        assert [sub.endpoint for sub in left] == ["https://fcm.googleapis.com/fcm/send/b"]
        assert left[0].office_id is None  # the office went: company-wide news still reach it
        assert s.scalar(select(func.count()).select_from(PushMessage)) == 1


# --- subscriptions -------------------------------------------------------------------------------------------------

FCM = "https://fcm.googleapis.com/fcm/send/dXNlcjE:APA91b"


@pytest.fixture
def push_app(make_app, tmp_path):
    """An app with push on (keys made as `db upgrade` would) and a loopback push service allowed."""
    ensure_vapid_keys(str(tmp_path / "instance"))
    return make_app(FEEDAPP_VAPID_SUBJECT=SUBJECT, FEEDAPP_PUSH_HOSTS="http://127.0.0.1:8123")


@pytest.fixture
def push_client(push_app):
    return push_app.test_client()


def subscribe(client, body, method="POST", token=None, **headers):
    if token is not None:
        headers["X-CSRFToken"] = token
    return client.open("/push/subscriptions", method=method, json=body, headers=headers)


def subscriptions(app):
    from sqlalchemy import select

    from feedapp.db import sessions
    from feedapp.models import PushSubscription

    with sessions(app)() as s:
        return s.scalars(select(PushSubscription).order_by(PushSubscription.id)).all()


def page_token(client) -> str:
    """The CSRF token /push/key gives a signed-in reader."""
    response = client.get("/push/key")
    assert response.headers["Cache-Control"] == "no-store"
    return response.json["csrfToken"]


def add_office(app, slug="lyon"):
    from feedapp.db import sessions
    from feedapp.models import Office

    with sessions(app)() as s:
        office = Office(slug=slug, name=slug.title())
        s.add(office)
        s.commit()
        return office.id


def test_an_anonymous_reader_subscribes_with_their_office(push_app, push_client):
    from tests.fakepush import BrowserKeys

    office_id = add_office(push_app)
    push_client.set_cookie("office", "lyon")
    keys = BrowserKeys()
    response = subscribe(push_client, keys.subscription(FCM))
    assert response.status_code == 201, response.json
    assert response.json == {"office": "lyon", "staff": False}
    [row] = subscriptions(push_app)
    assert (row.endpoint, row.p256dh, row.auth, row.office_id, row.staff, row.user_id) == (
        FCM, keys.p256dh, keys.auth, office_id, False, None)
    # The same browser again: one row, not two.
    assert subscribe(push_client, keys.subscription(FCM)).status_code == 201
    assert len(subscriptions(push_app)) == 1
    # Unsubscribing needs the auth secret that goes with the endpoint.
    other = BrowserKeys().subscription(FCM)
    assert subscribe(push_client, other, method="DELETE").json == {"removed": False}
    assert subscribe(push_client, keys.subscription(FCM), method="DELETE").json == {"removed": True}
    assert subscriptions(push_app) == []


def test_anonymous_readers_get_no_csrf_token_and_no_session(push_client):
    response = push_client.get("/push/key")
    assert set(response.json) == {"publicKey"} and "Set-Cookie" not in response.headers


def test_subscribing_is_refused_while_push_is_off(make_app):
    from tests.fakepush import BrowserKeys

    response = subscribe(make_app().test_client(), BrowserKeys().subscription(FCM))
    assert response.status_code == 404 and "FEEDAPP_VAPID_SUBJECT" in response.json["message"]


@pytest.mark.parametrize("endpoint, ok", [
    ("https://fcm.googleapis.com/fcm/send/abc", True),
    ("https://updates.push.services.mozilla.com/wpush/v2/gAAAA", True),
    ("https://web.push.apple.com/QGuQyavXutnMH", True),
    ("https://wns2-par02p.notify.windows.com/w/?token=BQYAAA", True),
    ("http://127.0.0.1:8123/push/1", True),  # FEEDAPP_PUSH_HOSTS
    ("http://fcm.googleapis.com/fcm/send/abc", False),  # not https
    ("https://fcm.googleapis.com:8443/fcm/send/abc", False),
    ("https://fcm.googleapis.com.evil.example/x", False),
    ("https://evilpush.apple.com/x", False),
    ("https://user@fcm.googleapis.com/x", False),
    ("https://169.254.169.254/latest/meta-data", False),
    ("http://127.0.0.1:8124/push/1", False),
    ("https://127.0.0.1:8123/push/1", False),
    ("http://localhost:8123/push/1", False),
    ("file:///etc/passwd", False),
])
def test_endpoints_only_at_push_services(push_app, push_client, endpoint, ok):
    from tests.fakepush import BrowserKeys

    response = subscribe(push_client, BrowserKeys().subscription(endpoint))
    if ok:
        assert response.status_code == 201, response.json
    else:
        assert response.status_code == 400
        assert "not at a known push service" in response.json["message"]
        assert subscriptions(push_app) == []


@pytest.mark.parametrize("change, message", [
    (lambda s: s["keys"].update(p256dh=s["keys"]["p256dh"][:-4]), "65 bytes"),
    (lambda s: s["keys"].update(p256dh="BA" + "A" * 85), "65 bytes"),  # 65 bytes, not a point on the curve
    (lambda s: s["keys"].update(auth="AAAA"), "16 bytes"),
    (lambda s: s["keys"].update(auth="not base64!"), "base64url"),
    (lambda s: s.pop("keys"), "toJSON"),
    (lambda s: s.update(endpoint=42), "URL"),
    (lambda s: s.update(endpoint=FCM + "x" * 1000), "URL"),
])
def test_malformed_subscriptions_are_refused(push_app, push_client, change, message):
    from tests.fakepush import BrowserKeys

    body = BrowserKeys().subscription(FCM)
    change(body)
    response = subscribe(push_client, body)
    assert response.status_code == 400 and message in response.json["message"]
    assert subscriptions(push_app) == []


def test_cross_site_requests_are_refused(push_app, push_client):
    from tests.fakepush import BrowserKeys

    body = BrowserKeys().subscription(FCM)
    # A form post (what another site can send without a preflight) is not JSON.
    form = push_client.post("/push/subscriptions", data={"endpoint": FCM})
    assert form.status_code == 415
    other = subscribe(push_client, body, Origin="https://evil.example")
    assert other.status_code == 403
    assert subscriptions(push_app) == []
    assert subscribe(push_client, body, Origin="http://localhost").status_code == 201  # the test client's host


def test_staff_subscribe_with_the_page_token_and_lose_it_on_sign_out(push_app, push_client):
    from tests.auth_helpers import login, logout, make_staff
    from tests.fakepush import BrowserKeys

    from feedapp.db import sessions

    office_id = add_office(push_app)
    make_staff(sessions(push_app), "ana", office="lyon")
    login(push_client, "ana", "correct horse battery")
    keys = BrowserKeys()
    refused = subscribe(push_client, keys.subscription(FCM))  # no token
    assert refused.status_code == 400 and refused.json["error"] == "CSRF"
    assert subscribe(push_client, keys.subscription(FCM), token="forged").status_code == 400
    assert subscriptions(push_app) == []
    token = page_token(push_client)
    response = subscribe(push_client, keys.subscription(FCM), token=token)
    assert response.status_code == 201 and response.json == {"office": "lyon", "staff": True}
    [row] = subscriptions(push_app)
    assert row.staff and row.user_id is not None and row.office_id == office_id
    anonymous = push_app.test_client()
    assert subscribe(anonymous, BrowserKeys().subscription(FCM + "2")).status_code == 201
    logout(push_client)
    assert [row.endpoint for row in subscriptions(push_app)] == [FCM + "2"]


def test_deactivating_an_account_removes_its_subscriptions(push_app, push_client):
    from tests.auth_helpers import login, make_staff, set_active
    from tests.fakepush import BrowserKeys

    from feedapp.db import sessions

    make_staff(sessions(push_app), "ana")
    login(push_client, "ana", "correct horse battery")
    assert subscribe(push_client, BrowserKeys().subscription(FCM), token=page_token(push_client)).status_code == 201
    set_active(sessions(push_app), "ana", False)
    assert subscriptions(push_app) == []


def test_setting_a_password_removes_the_persons_staff_subscriptions(push_app, push_client):
    """A new password signs every browser out (accounts.set_password): a lost phone must stop getting staff news too."""
    from tests.auth_helpers import login, make_staff
    from tests.fakepush import BrowserKeys

    from feedapp import accounts
    from feedapp.db import sessions

    make_staff(sessions(push_app), "ana")
    make_staff(sessions(push_app), "bo")
    login(push_client, "ana", "correct horse battery")
    token = page_token(push_client)
    for n in range(2):  # her phone and her laptop
        assert subscribe(push_client, BrowserKeys().subscription(f"{FCM}ana{n}"), token=token).status_code == 201
    other = push_app.test_client()
    login(other, "bo", "correct horse battery")
    assert subscribe(other, BrowserKeys().subscription(f"{FCM}bo"), token=page_token(other)).status_code == 201
    assert subscribe(push_app.test_client(), BrowserKeys().subscription(f"{FCM}anon")).status_code == 201
    with sessions(push_app)() as s:
        accounts.set_password(s, accounts.user_by_username(s, "ana"), "a brand new passphrase")
        s.commit()
    assert [row.endpoint for row in subscriptions(push_app)] == [f"{FCM}bo", f"{FCM}anon"]


def test_each_person_keeps_a_few_staff_subscriptions(push_app, push_client):
    from tests.auth_helpers import login, make_staff
    from tests.fakepush import BrowserKeys

    from feedapp.db import sessions
    from feedapp.push.subscriptions import STAFF_DEVICES

    make_staff(sessions(push_app), "ana")
    login(push_client, "ana", "correct horse battery")
    token = page_token(push_client)
    for n in range(STAFF_DEVICES + 2):
        assert subscribe(push_client, BrowserKeys().subscription(f"{FCM}{n}"), token=token).status_code == 201
    kept = [row.endpoint for row in subscriptions(push_app)]
    assert len(kept) == STAFF_DEVICES and f"{FCM}{STAFF_DEVICES + 1}" in kept and f"{FCM}0" not in kept


def test_subscribing_is_throttled_per_client(push_app, push_client):
    from tests.fakepush import BrowserKeys

    from feedapp.web.push import SUBSCRIBE_LIMIT

    for n in range(SUBSCRIBE_LIMIT.count):
        assert subscribe(push_client, BrowserKeys().subscription(f"{FCM}{n}")).status_code == 201
    refused = subscribe(push_client, BrowserKeys().subscription(f"{FCM}x"))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0


def test_other_keys_for_a_known_endpoint_are_refused(push_app, push_client):
    from tests.fakepush import BrowserKeys

    keys = BrowserKeys()
    assert subscribe(push_client, keys.subscription(FCM)).status_code == 201
    hijack = subscribe(push_client, BrowserKeys().subscription(FCM))
    assert hijack.status_code == 409 and "other keys" in hijack.json["message"]
    assert [row.p256dh for row in subscriptions(push_app)] == [keys.p256dh]


def test_fetch_metadata_of_another_site_is_refused(push_app, push_client):
    from tests.fakepush import BrowserKeys

    refused = subscribe(push_client, BrowserKeys().subscription(FCM), **{"Sec-Fetch-Site": "cross-site"})
    assert refused.status_code == 403 and subscriptions(push_app) == []


def test_a_subscription_nested_past_the_recursion_limit_is_refused(push_app, push_client):
    response = push_client.post("/push/subscriptions", data="[" * 5000 + "]" * 5000, content_type="application/json")
    assert response.status_code == 400
    assert subscriptions(push_app) == []
