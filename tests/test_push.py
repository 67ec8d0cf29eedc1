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
