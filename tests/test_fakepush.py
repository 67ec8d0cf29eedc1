"""The fake push service refuses what a real one refuses, so delivery tests against it mean something."""

from __future__ import annotations

import json
import time

import pytest
import requests
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from tests.fakepush import FakePush

SUBJECT = "mailto:comms@example.com"


@pytest.fixture
def vapid():
    key = Vapid()
    key.generate_keys()
    return key


@pytest.fixture
def fake(vapid):
    from feedapp.push.keys import b64url

    from cryptography.hazmat.primitives import serialization

    public = b64url(vapid.public_key.public_bytes(serialization.Encoding.X962,
                                                 serialization.PublicFormat.UncompressedPoint))
    with FakePush(public, SUBJECT) as service:
        yield service


def send(subscription, vapid, claims=None, **kw):
    return webpush(subscription, data=kw.pop("data", "hello"), vapid_private_key=vapid,
                   vapid_claims=claims or {"sub": SUBJECT}, content_encoding="aes128gcm", timeout=10, **kw)


def test_a_correct_push_is_decrypted_with_its_headers(fake, vapid):
    sub_id, subscription = fake.subscribe()
    response = send(subscription, vapid, data=json.dumps({"title": "Hi"}), ttl=60,
                    headers={"Topic": "post-1", "Urgency": "high"})
    assert response.status_code == 201
    [got] = fake.received
    assert (got.subscription, json.loads(got.payload), got.topic, got.ttl, got.urgency) == (
        sub_id, {"title": "Hi"}, "post-1", "60", "high")
    assert got.claims["aud"] == fake.origin


def test_a_wrong_key_or_claim_is_refused(fake, vapid):
    _, subscription = fake.subscribe()
    other = Vapid()
    other.generate_keys()
    for key, claims in ((other, None), (vapid, {"sub": "mailto:someone@else.example"}),
                        (vapid, {"sub": SUBJECT, "aud": "https://fcm.googleapis.com"}),
                        (vapid, {"sub": SUBJECT, "exp": int(time.time()) + 3 * 86400})):
        with pytest.raises(WebPushException) as caught:
            send(subscription, key, claims)
        assert caught.value.response.status_code == 403
    assert len(fake.problems) == 4 and fake.received == []


def test_a_body_for_another_subscription_does_not_decrypt(fake, vapid):
    _, subscription = fake.subscribe()
    _, other = fake.subscribe()
    subscription["keys"] = other["keys"]
    with pytest.raises(WebPushException):
        send(subscription, vapid)
    assert "InvalidTag" in fake.problems[0] or "ECEException" in fake.problems[0]


def test_scripted_answers(fake, vapid):
    sub_id, subscription = fake.subscribe()
    fake.answer(sub_id, 429, retry_after="120")
    fake.answer(sub_id, 410)
    with pytest.raises(WebPushException) as first:
        send(subscription, vapid)
    assert first.value.response.status_code == 429 and first.value.response.headers["Retry-After"] == "120"
    with pytest.raises(WebPushException) as second:
        send(subscription, vapid)
    assert second.value.response.status_code == 410
    assert send(subscription, vapid).status_code == 201
    assert requests.post(f"{fake.origin}/push/unknown", timeout=5).status_code == 404
