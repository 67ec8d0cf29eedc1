"""Delivering the push outbox to a real (loopback) push service: encryption, VAPID, retries, cleanup, sharing."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from feedapp.db import sessions as app_sessions
from feedapp.models import PUSH_PENDING, PushMessage, PushSubscription
from feedapp.push.keys import ensure_vapid_keys
from feedapp.push.outbox import DeliverySettings, PushInputError, deliver, queue_push, retry_after_seconds
from feedapp.push.subscriptions import parse_subscription, save_subscription
from tests.fakepush import FakePush

SUBJECT = "mailto:comms@example.com"
T0 = datetime(2026, 12, 3, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def push_app(make_app, tmp_path):
    ensure_vapid_keys(str(tmp_path / "instance"))
    return make_app(FEEDAPP_VAPID_SUBJECT=SUBJECT)


@pytest.fixture
def fake(push_app):
    with FakePush(push_app.extensions["feedapp.push"].keys.public_key, SUBJECT) as service:
        yield service


@pytest.fixture
def factory(push_app):
    return app_sessions(push_app)


@pytest.fixture
def settings(push_app):
    return DeliverySettings.from_push(push_app.extensions["feedapp.push"], concurrency=4, backoff_base=30)


class Clock:
    """A clock the test moves by hand: retries are checked against not_before, never by sleeping."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def subscribe(factory, fake, n=1) -> list[tuple[str, int]]:
    """n browsers subscribed at the fake service: (fake id, subscription row id)."""
    made = []
    with factory() as s:
        for _ in range(n):
            sub_id, body = fake.subscribe()
            row = save_subscription(s, parse_subscription(body, (fake.origin,)), None, None)
            made.append((sub_id, row.id))
        s.commit()
    return made


def queue(factory, ids, payload, **kw):
    with factory() as s:
        queue_push(s, ids, payload, **kw)
        s.commit()


def rows(factory):
    with factory() as s:
        return s.scalars(select(PushMessage).order_by(PushMessage.id)).all()


def test_a_queued_push_arrives_decrypted_with_its_headers(factory, fake, settings):
    [(sub_id, row_id)] = subscribe(factory, fake)
    payload = {"title": "Must read", "body": "Ligne 4 fermée — détour par le quai B", "url": "/posts/1"}
    queue(factory, [row_id], payload, topic="post-1900000000000000001"[:32], urgency="high", ttl=3600)
    summary = deliver(factory, settings)
    assert (summary.sent, summary.failed, fake.problems) == (1, 0, [])
    [got] = fake.received
    assert json.loads(got.payload) == payload
    assert (got.topic, got.urgency, got.ttl) == ("post-1900000000000000001", "high", "3600")
    [row] = rows(factory)
    assert row.state == "sent" and row.sent_at is not None and row.attempts == 1
    with factory() as s:
        assert s.get(PushSubscription, row_id).last_success_at is not None


def test_410_and_404_remove_the_subscription(factory, fake, settings):
    (gone_id, gone_row), (lost_id, lost_row), (ok_id, ok_row) = subscribe(factory, fake, 3)
    fake.answer(gone_id, 410)
    fake.answer(lost_id, 404)
    queue(factory, [gone_row, lost_row, ok_row], {"title": "x"})
    summary = deliver(factory, settings)
    assert (summary.sent, summary.gone) == (1, 2)
    with factory() as s:
        assert s.scalars(select(PushSubscription.id)).all() == [ok_row]
    assert [r.state for r in rows(factory)] == ["sent"]  # the gone ones' rows went with them


def test_429_waits_for_retry_after_then_sends(factory, fake, settings):
    [(sub_id, row_id)] = subscribe(factory, fake)
    fake.answer(sub_id, 429, retry_after="120")
    queue(factory, [row_id], {"title": "x"}, topic="post-1", not_before=T0)  # due at the test's clock, not the real one
    clock = Clock(T0)
    first = deliver(factory, settings, clock=clock)
    assert (first.sent, first.retried) == (0, 1)
    [row] = rows(factory)
    assert row.state == "pending" and row.not_before == T0 + timedelta(seconds=120) and row.attempts == 1
    clock.now = T0 + timedelta(seconds=119)
    assert deliver(factory, settings, clock=clock).sent == 0  # not before Retry-After
    clock.now = T0 + timedelta(seconds=120)
    assert deliver(factory, settings, clock=clock).sent == 1
    [row] = rows(factory)
    assert row.state == "sent" and row.attempts == 2
    assert [r.topic for r in fake.received] == ["post-1"]  # the retry carries the same Topic: it replaces


def test_5xx_backs_off_then_fails_after_max_attempts(factory, fake, settings):
    [(sub_id, row_id)] = subscribe(factory, fake)
    for _ in range(3):
        fake.answer(sub_id, 503)
    queue(factory, [row_id], {"title": "x"}, not_before=T0)  # due at the test's clock, not the real one
    settings = DeliverySettings(settings.private_pem, settings.subject, max_attempts=3, backoff_base=30)
    clock = Clock(T0)
    waits = []
    for _ in range(3):
        deliver(factory, settings, clock=clock)
        [row] = rows(factory)
        waits.append((row.not_before - clock.now).total_seconds())
        clock.now = row.not_before
    [row] = rows(factory)
    assert row.state == "failed" and row.attempts == 3 and row.last_error.startswith("503")
    assert 24 <= waits[0] <= 36 and 48 <= waits[1] <= 72  # doubling, with jitter
    with factory() as s:
        assert s.get(PushSubscription, row_id).failures == 3


def test_a_5xx_with_retry_after_waits_that_long(factory, fake, settings):
    [(sub_id, row_id)] = subscribe(factory, fake)
    fake.answer(sub_id, 503, retry_after="600")
    queue(factory, [row_id], {"title": "x"}, not_before=T0)
    clock = Clock(T0)
    assert deliver(factory, settings, clock=clock).retried == 1
    [row] = rows(factory)
    assert row.not_before == T0 + timedelta(seconds=600) and row.last_error.startswith("503")  # not the 30 s backoff
    clock.now = row.not_before
    assert deliver(factory, settings, clock=clock).sent == 1


def test_a_redirect_from_a_push_service_is_not_followed(push_app, factory, fake, settings):
    # The endpoint was checked against the allowed push services when the browser subscribed; a 307 or 308
    # (which keeps the POST and its body) would send the worker wherever the answer points (SSRF).
    with FakePush(push_app.extensions["feedapp.push"].keys.public_key, SUBJECT) as elsewhere:
        target_id, target = elsewhere.subscribe()
        [(sub_id, row_id)] = subscribe(factory, fake)
        fake.answer(sub_id, 307, location=target["endpoint"])
        queue(factory, [row_id], {"title": "x"})
        summary = deliver(factory, settings)
        assert elsewhere.problems == [] and elsewhere.counts[target_id] == 0
    assert (summary.sent, summary.failed) == (0, 1)
    [row] = rows(factory)
    assert row.state == "failed" and row.last_error.startswith("307")


def test_a_retry_after_date_is_honoured():
    assert retry_after_seconds("Thu, 03 Dec 2026 09:05:00 GMT", T0) == 300
    assert retry_after_seconds("soon", T0) is None


def test_messages_no_push_service_takes_are_refused_when_queued(factory):
    with factory() as s, pytest.raises(PushInputError, match="32 characters"):
        queue_push(s, [1], {}, topic="a topic with spaces")
    with factory() as s, pytest.raises(PushInputError, match="bytes"):
        queue_push(s, [1], {"body": "x" * 4000})


def test_two_workers_never_send_one_row_twice(factory, fake, settings):
    subs = subscribe(factory, fake, 20)
    for n in range(3):
        queue(factory, [row_id for _, row_id in subs], {"n": n})
    settings = DeliverySettings(settings.private_pem, settings.subject, concurrency=4, batch=7)
    summaries, errors = [], []

    def work():
        try:
            summaries.append(deliver(factory, settings))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    got = sorted((r.subscription, json.loads(r.payload)["n"]) for r in fake.received)
    assert got == sorted((sub_id, n) for sub_id, _ in subs for n in range(3))  # each exactly once
    assert sum(s.sent for s in summaries) == 60
    assert all(r.state == "sent" and r.attempts == 1 for r in rows(factory))


# --- the worker's commands -----------------------------------------------------------------------------------------

def test_push_deliver_sends_what_is_due(push_app, factory, fake):
    [(sub_id, row_id)] = subscribe(factory, fake)
    queue(factory, [row_id], {"title": "x"})
    result = push_app.test_cli_runner().invoke(args=["push", "deliver"])
    assert result.exit_code == 0, result.output
    assert "push: 1 sent, 0 to retry, 0 failed, 0 subscriptions gone" in result.output
    assert fake.payloads(sub_id) == [b'{"title":"x"}']


def test_push_deliver_says_why_push_is_off(make_app):
    result = make_app().test_cli_runner().invoke(args=["push", "deliver"])
    assert result.exit_code == 1 and "FEEDAPP_VAPID_SUBJECT" in result.output


def test_the_poll_loop_delivers_between_cycles(push_app, factory, fake, monkeypatch):
    """poll --loop's wait (it wakes every 2 s for the console's requests) also drains the outbox."""
    import types

    from feedapp.cli import poll

    [(sub_id, row_id)] = subscribe(factory, fake)
    queue(factory, [row_id], {"title": "x"})
    now = [0.0]
    fake_time = types.SimpleNamespace(monotonic=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    monkeypatch.setattr(poll, "time", fake_time)
    keeper = types.SimpleNamespace(held=True)
    with push_app.app_context():
        poll._wait(keeper, factory, None, None, until=poll.REQUEST_WAKE * 2)
    assert fake.payloads(sub_id) == [b'{"title":"x"}']
    assert now[0] == poll.REQUEST_WAKE * 2


def test_sent_rows_are_deleted_after_a_week(factory, fake, settings):
    [(sub_id, row_id)] = subscribe(factory, fake)
    queue(factory, [row_id], {"title": "old"})
    deliver(factory, settings, clock=Clock(datetime.now(timezone.utc)))
    assert [r.state for r in rows(factory)] == ["sent"]
    deliver(factory, settings, clock=Clock(datetime.now(timezone.utc) + timedelta(days=8)))
    assert rows(factory) == []


def test_a_send_that_runs_into_quiet_hours_holds_the_rest_for_morning(factory, fake, settings):
    """The quiet-hours hold runs before every batch: rows still queued when the window begins wait for its end."""
    from datetime import time
    from zoneinfo import ZoneInfo

    from feedapp.push.outbox import hold_for_quiet_hours
    from feedapp.push.quiet import QuietDefaults
    from feedapp.push.sender import Sender

    quiet = QuietDefaults(zone=ZoneInfo("UTC"), hours=(time(21, 0), time(7, 0)))
    subs = subscribe(factory, fake, 3)
    evening = datetime(2026, 12, 3, 20, 59, 59, tzinfo=timezone.utc)
    queue(factory, [row for _, row in subs], {"title": "t", "body": "b", "url": "/"}, not_before=evening)
    clock = Clock(evening)

    def send_then_tick(item):
        clock.now += timedelta(seconds=1)  # the first batch ends at 21:00:00: the window has begun
        return sender(item)

    sender = Sender(settings, clock)
    one_at_a_time = dataclasses.replace(settings, batch=1)
    summary = deliver(factory, one_at_a_time, clock=clock, send=send_then_tick,
                      before_batch=lambda now: hold_for_quiet_hours(factory, now, quiet))
    assert summary.sent == 1 and sum(fake.counts.values()) == 1
    morning = datetime(2026, 12, 4, 7, 0, tzinfo=timezone.utc)
    waiting = [r for r in rows(factory) if r.state == PUSH_PENDING]
    assert len(waiting) == 2 and all(r.not_before.replace(tzinfo=timezone.utc) == morning for r in waiting)
    clock.now = morning
    assert deliver(factory, settings, clock=clock,
                   before_batch=lambda now: hold_for_quiet_hours(factory, now, quiet)).sent == 2
    assert sorted(fake.counts.values()) == [1, 1, 1]
