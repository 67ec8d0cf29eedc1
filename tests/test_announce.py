"""The must-read push: audience, lock-screen rule, quiet hours, exactly-once fan-out, reminders, cancelling.

Real parts only: the outbox on SQLite and PostgreSQL, pywebpush, and the loopback push service that checks
VAPID and decrypts each message with the subscription's private key (tests/fakepush.py).
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from feedapp import moderation, mustread
from feedapp.db import make_engine, make_session_factory
from feedapp.db import sessions as app_sessions
from feedapp.models import Acknowledgement, MustRead, Office, Post, PushMessage, PushSubscription, Source, User
from feedapp.push.announce import AnnounceSettings, announce_due, cancel_post_pushes, remind_due, topic_for
from feedapp.push.keys import ensure_vapid_keys
from feedapp.push.outbox import DeliverySettings, deliver
from feedapp.push.quiet import (QuietDefaults, QuietHoursError, QuietWindow, office_window, parse_hhmm,
                                parse_quiet_hours, parse_time_zone, release_time)
from feedapp.push.subscriptions import parse_subscription, save_subscription
from feedapp.roles import Actor
from tests.fakepush import FakePush

SUBJECT = "mailto:comms@example.com"
BASE = "https://feed.example.com"
T0 = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)  # 13:00 in Paris, 07:00 in New York
TEXT = "Ligne 4 fermée demain matin : détour par le quai B. Plan sur https://t.co/abc"
LINKS = [{"kind": "url", "start": TEXT.index("https://t.co"), "end": len(TEXT),
          "href": "https://example.com/plan-quai-b"}]


class Clock:
    """A clock the test moves by hand (not_before is compared with it, never waited for)."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def push_app(make_app, tmp_path):
    ensure_vapid_keys(str(tmp_path / "instance"))
    return make_app(FEEDAPP_VAPID_SUBJECT=SUBJECT, FEEDAPP_BASE_URL=BASE)


@pytest.fixture
def fake(push_app):
    with FakePush(push_app.extensions["feedapp.push"].keys.public_key, SUBJECT) as service:
        yield service


@pytest.fixture
def factory(push_app):
    return app_sessions(push_app)


@pytest.fixture
def delivery(push_app):
    return DeliverySettings.from_push(push_app.extensions["feedapp.push"], concurrency=4)


@pytest.fixture
def announce(push_app):
    return AnnounceSettings.from_config(push_app.config)


# --- building the world, straight into the tables (MustRead rows as feedapp.mustread.mark writes them) ---------------

def add(factory, row):
    with factory() as s:
        s.add(row)
        s.commit()
        return row.id if hasattr(row, "id") else None


def office(factory, slug, **kw) -> int:
    return add(factory, Office(slug=slug, name=slug.title(), **kw))


def source(factory, username, office_id=None, staff_only=False) -> int:
    return add(factory, Source(x_id=str(abs(hash(username)) % 10**12), username=username, display_name=username,
                               office_id=office_id, staff_only=staff_only))


def post(factory, source_id, post_id, text=TEXT, links=LINKS, author="Harbor Comms", **kw) -> int:
    return add(factory, Post(id=post_id, source_id=source_id, created_at=T0 - timedelta(hours=1), author_id="42",
                             author_username="harborcomms", author_name=author, text=text, links=links,
                             canonical_id=post_id, **kw))


def user(factory, username, office_id=None) -> int:
    return add(factory, User(username=username, display_name=username, office_id=office_id, role="staff"))


def subscribe(factory, fake, office_id=None, user_id=None) -> str:
    """A browser subscribed at the fake push service with this scope: its id there."""
    sub_id, body = fake.subscribe()
    with factory() as s:
        save_subscription(s, parse_subscription(body, (fake.origin,)), office_id, user_id)
        s.commit()
    return sub_id


def must_read(factory, post_id, office_id=None, staff_only=False, marked_at=T0, remind_hours=24, **kw):
    with factory() as s:
        s.add(MustRead(post_id=post_id, office_id=office_id, staff_only=staff_only, marked_by="editor",
                       marked_at=marked_at, remind_at=marked_at + timedelta(hours=remind_hours) if remind_hours
                       else None, **kw))
        s.commit()


def outbox(factory) -> list[PushMessage]:
    with factory() as s:
        return s.scalars(select(PushMessage).order_by(PushMessage.id)).all()


def got(fake, sub_id) -> list[dict]:
    return [json.loads(p) for p in fake.payloads(sub_id)]


# --- audience ------------------------------------------------------------------------------------------------------

def test_a_company_must_read_reaches_every_subscription_once_with_its_post(factory, fake, announce, delivery):
    lyon, paris = office(factory, "lyon"), office(factory, "paris")
    company = source(factory, "harborcomms")
    post(factory, company, 1900000000000000001)
    alice = user(factory, "alice", lyon)
    subs = [subscribe(factory, fake), subscribe(factory, fake, lyon), subscribe(factory, fake, paris),
            subscribe(factory, fake, lyon, alice)]
    must_read(factory, 1900000000000000001)

    assert announce_due(factory, T0, announce) == 4
    assert announce_due(factory, T0 + timedelta(seconds=2), announce) == 0  # announced once
    summary = deliver(factory, delivery, clock=Clock(T0))
    assert (summary.sent, fake.problems) == (4, [])
    expected = {"title": "Must read: Harbor Comms",
                "body": "Ligne 4 fermée demain matin : détour par le quai B. Plan sur example.com/plan-quai-b",
                "url": f"{BASE}/posts/1900000000000000001", "tag": "mr1900000000000000001",
                "postId": "1900000000000000001"}
    for sub_id in subs:
        assert got(fake, sub_id) == [expected]
    assert {(r.topic, r.urgency) for r in fake.received} == {("mr1900000000000000001", "high")}
    with factory() as s:
        assert s.get(MustRead, 1900000000000000001).announced_at == T0


def test_an_office_must_read_reaches_that_office_only(factory, fake, announce, delivery):
    lyon, paris = office(factory, "lyon"), office(factory, "paris")
    post(factory, source(factory, "lyonhub", lyon), 11)
    in_lyon = [subscribe(factory, fake, lyon), subscribe(factory, fake, lyon, user(factory, "bob", lyon))]
    elsewhere = [subscribe(factory, fake), subscribe(factory, fake, paris)]
    must_read(factory, 11, office_id=lyon)
    assert announce_due(factory, T0, announce) == 2
    deliver(factory, delivery, clock=Clock(T0))
    assert [len(got(fake, s)) for s in in_lyon + elsewhere] == [1, 1, 0, 0]


def test_a_staff_only_must_read_reaches_staff_subscriptions_without_its_text_or_author(factory, fake, announce,
                                                                                         delivery):
    lyon = office(factory, "lyon")
    post(factory, source(factory, "insiders", staff_only=True), 12)
    staff = [subscribe(factory, fake, None, user(factory, "carol")),
             subscribe(factory, fake, lyon, user(factory, "dan", lyon))]
    anonymous = [subscribe(factory, fake), subscribe(factory, fake, lyon)]
    must_read(factory, 12, staff_only=True)
    assert announce_due(factory, T0, announce) == 2
    deliver(factory, delivery, clock=Clock(T0))
    assert [len(got(fake, s)) for s in anonymous] == [0, 0]
    for sub_id in staff:
        [message] = fake.payloads(sub_id)
        # The decrypted bytes, not only the parsed fields: nothing of the post may be on a lock screen.
        for secret in (b"Ligne", b"quai", b"Harbor", b"harborcomms", b"insiders"):
            assert secret not in message
        assert json.loads(message) == {"title": "A must-read post for staff", "body": "Sign in to read it.",
                                       "url": f"{BASE}/posts/12", "tag": "mr12", "postId": "12"}


def test_a_source_turned_staff_only_after_marking_loses_its_text_on_lock_screens(factory, fake, announce, delivery):
    src = source(factory, "harborcomms")
    post(factory, src, 13)
    staff = subscribe(factory, fake, None, user(factory, "erin"))
    anonymous = subscribe(factory, fake)
    must_read(factory, 13)  # marked while the source was public
    with factory() as s:
        s.execute(update(Source).where(Source.id == src).values(staff_only=True))
        s.commit()
    announce_due(factory, T0, announce)
    deliver(factory, delivery, clock=Clock(T0))
    assert got(fake, anonymous) == []
    assert [m["title"] for m in got(fake, staff)] == ["A must-read post for staff"]


def test_the_body_is_plain_text_cut_at_a_word_and_a_post_without_text_says_to_open_it(factory, fake, announce,
                                                                                        delivery):
    src = source(factory, "harborcomms")
    long_text = "Tous les &amp; <b>chantiers</b> " + "ferment demain " * 20
    post(factory, src, 14, text=long_text, links=[])
    post(factory, src, 15, text="", links=[], author="")
    sub_id = subscribe(factory, fake)
    must_read(factory, 14)
    must_read(factory, 15)
    announce_due(factory, T0, announce)
    deliver(factory, delivery, clock=Clock(T0))
    long_one, empty = sorted(got(fake, sub_id), key=lambda m: m["postId"])
    assert long_one["body"].startswith("Tous les &amp; <b>chantiers</b> ferment")  # as text, never as markup
    assert long_one["body"].endswith("demain…") and len(long_one["body"]) <= 140
    assert (empty["title"], empty["body"]) == ("Must read: @harborcomms", "Open it to see it.")


# --- never pushed: pending, hidden, ended ---------------------------------------------------------------------------

def test_pending_and_hidden_posts_are_never_pushed_until_published(factory, fake, announce, delivery):
    src = source(factory, "harborcomms")
    post(factory, src, 21, pending=True)
    post(factory, src, 22, hidden_at=T0 - timedelta(minutes=5), hidden_by="editor")
    post(factory, src, 23)
    sub_id = subscribe(factory, fake)
    must_read(factory, 21)
    must_read(factory, 22)
    must_read(factory, 23, ended_at=T0 - timedelta(minutes=1))
    assert announce_due(factory, T0, announce) == 0
    with factory() as s:
        assert all(m.announced_at is None for m in s.scalars(select(MustRead)))
    with factory() as s:  # an editor approves the pending one
        s.execute(update(Post).where(Post.id == 21).values(pending=False))
        s.commit()
    assert announce_due(factory, T0 + timedelta(minutes=1), announce) == 1
    deliver(factory, delivery, clock=Clock(T0 + timedelta(minutes=1)))
    assert [m["postId"] for m in got(fake, sub_id)] == ["21"]


def test_hiding_a_post_cancels_its_pushes_not_yet_sent(factory, fake, announce, delivery):
    paris = office(factory, "paris", time_zone="Europe/Paris", quiet_start="12:00", quiet_end="14:00")
    src = source(factory, "harborcomms")
    post(factory, src, 31)
    post(factory, src, 32)
    sub_id = subscribe(factory, fake, paris)  # in quiet hours at T0: its rows wait
    must_read(factory, 31)
    must_read(factory, 32)
    assert announce_due(factory, T0, announce) == 2
    with factory() as s:
        moderation.hide(s, Actor.cli(), 31, "posted by mistake")
        s.commit()
    assert [r.topic for r in outbox(factory)] == [topic_for(32)]
    deliver(factory, delivery, clock=Clock(T0 + timedelta(hours=2)))
    assert [m["postId"] for m in got(fake, sub_id)] == ["32"]
    with factory() as s:  # cancelling again, or a post with nothing queued, is harmless
        assert cancel_post_pushes(s, 31) == 0 and cancel_post_pushes(s, 32) == 0


def test_ending_a_must_read_cancels_its_pushes_not_yet_sent(factory, fake, announce, delivery):
    paris = office(factory, "paris", time_zone="Europe/Paris", quiet_start="12:00", quiet_end="14:00")
    src = source(factory, "harborcomms")
    post(factory, src, 33)
    post(factory, src, 34)
    sub_id = subscribe(factory, fake, paris)  # in quiet hours at T0: its rows wait
    must_read(factory, 33)
    must_read(factory, 34, ends_at=T0 + timedelta(minutes=30))
    assert announce_due(factory, T0, announce) == 2
    with factory() as s:  # an editor ends one; the other's end date passes while both wait
        mustread.end(s, Actor.cli(), 33, now=T0 + timedelta(minutes=1))
        assert mustread.expire(s, T0 + timedelta(hours=1)) == 1
        s.commit()
    assert outbox(factory) == []
    deliver(factory, delivery, clock=Clock(T0 + timedelta(hours=2)))
    assert got(fake, sub_id) == []


def test_a_source_turned_staff_only_while_its_push_waits_for_morning_never_sends_its_text(push_app, factory, fake):
    # Queued with the post's text in quiet hours; the source turns staff-only (or protected on X) before the
    # morning: the waiting rows must not put that text on any lock screen, nor reach anonymous subscriptions.
    now = datetime.now(timezone.utc)
    start, end = (now - timedelta(hours=1)).strftime("%H:%M"), (now + timedelta(hours=1)).strftime("%H:%M")
    quiet = office(factory, "night", time_zone="UTC", quiet_start=start, quiet_end=end)
    src = source(factory, "harborcomms")
    post(factory, src, 35)
    anonymous = subscribe(factory, fake, quiet)
    staff = subscribe(factory, fake, quiet, user(factory, "frank", quiet))
    must_read(factory, 35, marked_at=now)
    runner = push_app.test_cli_runner()
    assert "must-read: 2 pushes queued" in runner.invoke(args=["push", "deliver"]).output
    with factory() as s:
        s.execute(update(Source).where(Source.id == src).values(protected=True))
        # The morning has come: the window is over, and the rows are due.
        s.execute(update(Office).where(Office.id == quiet).values(quiet_start=end, quiet_end=start))
        s.execute(update(PushMessage).values(not_before=now - timedelta(seconds=1)))
        s.commit()
    result = runner.invoke(args=["push", "deliver"])
    assert result.exit_code == 0, result.output
    assert got(fake, anonymous) == []
    assert all(b"Ligne" not in m and b"Harbor" not in m for m in fake.payloads(staff))
    assert [(m["title"], m["body"]) for m in got(fake, staff)] == [("A must-read post for staff", "Sign in to read it.")]
    assert [r for r in outbox(factory) if r.state == "pending"] == []


def test_the_worker_still_sends_the_generic_line_to_staff_of_a_source_turned_staff_only(push_app, factory, fake):
    src = source(factory, "harborcomms")
    post(factory, src, 37)
    staff, anonymous = subscribe(factory, fake, None, user(factory, "gina")), subscribe(factory, fake)
    must_read(factory, 37, marked_at=datetime.now(timezone.utc))  # marked while public
    with factory() as s:
        s.execute(update(Source).where(Source.id == src).values(staff_only=True))
        s.commit()
    result = push_app.test_cli_runner().invoke(args=["push", "deliver"])
    assert result.exit_code == 0, result.output
    assert got(fake, anonymous) == []
    assert [m["title"] for m in got(fake, staff)] == ["A must-read post for staff"]


def test_marking_again_after_the_end_date_passed_queues_one_push_per_phone(factory, fake, announce, delivery):
    # The end date passed while the push waited for quiet hours to end, before the poller's expire() ran;
    # an editor marks the post again: the phone is to get the new push, not the old one as well.
    paris = office(factory, "paris", time_zone="Europe/Paris", quiet_start="12:00", quiet_end="14:00")
    src = source(factory, "harborcomms")
    post(factory, src, 36)
    sub_id = subscribe(factory, fake, paris)  # in quiet hours at T0: its rows wait
    must_read(factory, 36, ends_at=T0 + timedelta(minutes=30))
    assert announce_due(factory, T0, announce) == 1
    with factory() as s:
        mustread.mark(s, Actor.cli(), 36, now=T0 + timedelta(minutes=45))
        s.commit()
    assert announce_due(factory, T0 + timedelta(minutes=46), announce) == 1
    assert [r.subscription_id for r in outbox(factory)] == [outbox(factory)[0].subscription_id]
    deliver(factory, delivery, clock=Clock(T0 + timedelta(hours=2)))
    assert len(got(fake, sub_id)) == 1


# --- quiet hours ---------------------------------------------------------------------------------------------------

def test_an_office_in_quiet_hours_gets_its_push_at_the_end_of_its_window(factory, fake, announce, delivery):
    # T0 22:30 UTC: 23:30 in Paris (quiet until 07:00), 17:30 in New York.
    t0 = datetime(2026, 12, 3, 22, 30, tzinfo=timezone.utc)
    paris = office(factory, "paris", time_zone="Europe/Paris", quiet_start="21:00", quiet_end="07:00")
    new_york = office(factory, "new-york", time_zone="America/New_York", quiet_start="21:00", quiet_end="07:00")
    post(factory, source(factory, "harborcomms"), 41)
    in_paris, in_new_york = subscribe(factory, fake, paris), subscribe(factory, fake, new_york)
    must_read(factory, 41, marked_at=t0)
    announce_due(factory, t0, announce)
    with factory() as s:
        wait = dict(s.execute(select(PushSubscription.office_id, PushMessage.not_before)
                              .join(PushSubscription, PushSubscription.id == PushMessage.subscription_id)).all())
    morning = datetime(2026, 12, 4, 6, 0, tzinfo=timezone.utc)  # 07:00 in Paris (CET, UTC+1)
    assert wait == {paris: morning, new_york: t0}
    clock = Clock(t0)
    deliver(factory, delivery, clock=clock)
    assert (len(got(fake, in_paris)), len(got(fake, in_new_york))) == (0, 1)
    clock.now = morning - timedelta(seconds=1)
    assert deliver(factory, delivery, clock=clock).sent == 0
    clock.now = morning
    assert deliver(factory, delivery, clock=clock).sent == 1
    assert len(got(fake, in_paris)) == 1


def test_a_push_that_comes_due_in_its_office_quiet_hours_waits_for_morning_whenever_it_was_queued(push_app, factory,
                                                                                                      fake):
    # Rows queued before the quiet hours began (a worker stopped for the evening, a backlog) or retried into them
    # (a 429's Retry-After, a 5xx backoff) are due when the worker next looks, inside the window: they wait too.
    from feedapp.push.outbox import queue_push

    now = datetime.now(timezone.utc)
    start, end = (now - timedelta(hours=1)).strftime("%H:%M"), (now + timedelta(hours=1)).strftime("%H:%M")
    quiet = office(factory, "night", time_zone="UTC", quiet_start=start, quiet_end=end)
    awake = office(factory, "day")
    sleeper, worker = subscribe(factory, fake, quiet), subscribe(factory, fake, awake)
    with factory() as s:
        ids = list(s.scalars(select(PushSubscription.id).order_by(PushSubscription.id)))
        queue_push(s, ids, {"title": "x"}, topic="mr1", not_before=now - timedelta(hours=3))
        s.commit()
    result = push_app.test_cli_runner().invoke(args=["push", "deliver"])
    assert result.exit_code == 0, result.output
    assert (len(got(fake, sleeper)), len(got(fake, worker))) == (0, 1)
    with factory() as s:
        window = office_window(s.get(Office, quiet), AnnounceSettings.from_config(push_app.config).quiet)
        [held] = s.scalars(select(PushMessage).where(PushMessage.state == "pending")).all()
    assert held.subscription_id == ids[0] and held.attempts == 0
    assert held.not_before == release_time(now, window) > now  # the end of this window, in the office's zone


def test_offices_without_quiet_hours_and_subscriptions_without_an_office_use_the_site_defaults(make_app, tmp_path):
    ensure_vapid_keys(str(tmp_path / "instance"))
    app = make_app(FEEDAPP_VAPID_SUBJECT=SUBJECT, FEEDAPP_TIME_ZONE="America/New_York",
                   FEEDAPP_QUIET_HOURS="06:00-08:00")
    factory, settings = app_sessions(app), AnnounceSettings.from_config(app.config)
    paris = office(factory, "paris", time_zone="Europe/Paris")  # its own zone, the site's hours
    night_owls = office(factory, "owls", quiet_start="03:00", quiet_end="04:00")  # its own hours, the site's zone
    post(factory, source(factory, "harborcomms"), 42)
    with FakePush(app.extensions["feedapp.push"].keys.public_key, SUBJECT) as fake:
        for office_id in (None, paris, night_owls):
            subscribe(factory, fake, office_id)
        must_read(factory, 42)
        announce_due(factory, T0, settings)  # 07:00 in New York, 13:00 in Paris
    with factory() as s:
        wait = dict(s.execute(select(PushSubscription.office_id, PushMessage.not_before)
                              .join(PushSubscription, PushSubscription.id == PushMessage.subscription_id)).all())
    assert wait == {None: T0 + timedelta(hours=1), paris: T0, night_owls: T0}
    assert app.config["FEEDAPP_TIME_ZONE"] == "America/New_York"


PARIS, NEW_YORK = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize(("zone", "start", "end", "now", "release"), [
    # Outside the window: at once. Inside, before midnight: the next morning.
    (PARIS, "21:00", "07:00", utc(2026, 12, 3, 12, 0), utc(2026, 12, 3, 12, 0)),
    (PARIS, "21:00", "07:00", utc(2026, 12, 3, 20, 0), utc(2026, 12, 4, 6, 0)),
    (PARIS, "21:00", "07:00", utc(2026, 12, 4, 5, 59), utc(2026, 12, 4, 6, 0)),
    (PARIS, "12:00", "14:00", utc(2026, 12, 3, 12, 0), utc(2026, 12, 3, 13, 0)),  # a window within a day
    # Spring forward (Paris 29 March 2026, 02:00 CET -> 03:00 CEST): 07:00 is UTC+2 the morning after.
    (PARIS, "22:00", "07:00", utc(2026, 3, 28, 22, 0), utc(2026, 3, 29, 5, 0)),
    # ... and a window ending in the gap (02:30 never happens) ends when the clocks jump, at 03:00 CEST.
    (PARIS, "01:00", "02:30", utc(2026, 3, 29, 0, 15), utc(2026, 3, 29, 1, 0)),
    # Fall back (Paris 25 October 2026, 03:00 CEST -> 02:00 CET): 07:00 is UTC+1 the morning after.
    (PARIS, "22:00", "07:00", utc(2026, 10, 24, 21, 0), utc(2026, 10, 25, 6, 0)),
    # ... and 02:30 happens twice: the first 02:30 still ahead (CEST from 02:15 CEST, CET from 02:15 CET).
    (PARIS, "01:00", "02:30", utc(2026, 10, 25, 0, 15), utc(2026, 10, 25, 0, 30)),
    (PARIS, "01:00", "02:30", utc(2026, 10, 25, 1, 15), utc(2026, 10, 25, 1, 30)),
    # New York springs forward on 8 March 2026 (02:00 EST -> 03:00 EDT) and falls back on 1 November 2026.
    (NEW_YORK, "21:00", "07:00", utc(2026, 3, 8, 3, 0), utc(2026, 3, 8, 11, 0)),
    (NEW_YORK, "01:30", "02:15", utc(2026, 3, 8, 6, 45), utc(2026, 3, 8, 7, 0)),
    (NEW_YORK, "21:00", "07:00", utc(2026, 11, 1, 2, 0), utc(2026, 11, 1, 12, 0)),
    (NEW_YORK, "00:30", "01:45", utc(2026, 11, 1, 6, 0), utc(2026, 11, 1, 6, 45)),  # 01:00 EST, the second 01:00
])
def test_release_time_is_the_window_end_on_the_local_clock_across_dst(zone, start, end, now, release):
    window = QuietWindow(zone, parse_hhmm(start), parse_hhmm(end))
    assert release_time(now, window) == release
    assert release_time(release, window) == release  # the end itself is outside the window
    assert release_time(now, None) == now


@pytest.mark.parametrize(("call", "message"), [
    (lambda: parse_hhmm("7:00"), "HH:MM"),
    (lambda: parse_hhmm("24:00"), "HH:MM"),
    (lambda: parse_hhmm("07h30"), "HH:MM"),
    (lambda: parse_quiet_hours("21:00"), "HH:MM-HH:MM"),
    (lambda: parse_quiet_hours("21:00-21:00"), "different times"),
    (lambda: parse_time_zone("Europe/Pariss"), "IANA"),
    (lambda: parse_time_zone("../../etc/passwd"), "IANA"),
    (lambda: QuietDefaults.from_config({"FEEDAPP_TIME_ZONE": "CEST"}), "FEEDAPP_TIME_ZONE"),
    (lambda: QuietDefaults.from_config({"FEEDAPP_QUIET_HOURS": "late"}), "FEEDAPP_QUIET_HOURS"),
])
def test_bad_time_zones_and_times_are_refused_with_a_reason(call, message):
    with pytest.raises(QuietHoursError, match=message):
        call()


def test_office_windows_fall_back_part_by_part():
    defaults = QuietDefaults.from_config({"FEEDAPP_TIME_ZONE": "Europe/Paris", "FEEDAPP_QUIET_HOURS": "21:00-07:00"})
    assert office_window(None, defaults) == QuietWindow(PARIS, time(21), time(7))
    assert office_window(Office(time_zone="America/New_York"), defaults) == QuietWindow(NEW_YORK, time(21), time(7))
    assert office_window(Office(quiet_start="22:00", quiet_end="06:00"), defaults) == QuietWindow(PARIS, time(22),
                                                                                                  time(6))
    assert office_window(None, QuietDefaults.from_config({})) is None


# --- exactly once, with two workers --------------------------------------------------------------------------------

def test_two_workers_announce_each_must_read_exactly_once(push_app, factory, fake, announce, db_url):
    src = source(factory, "harborcomms")
    for n in range(6):
        post(factory, src, 50 + n)
    subs = [subscribe(factory, fake, None, user(factory, f"s{n}") if n % 2 else None) for n in range(25)]
    for n in range(6):
        must_read(factory, 50 + n)
    other = make_session_factory(make_engine(db_url))  # a second worker: its own engine and connections
    start, counts, errors = threading.Barrier(2), [], []

    def work(sessions):
        try:
            start.wait()
            counts.append(announce_due(sessions, T0, announce))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f,)) for f in (factory, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    other.kw["bind"].dispose()
    assert errors == []
    rows = [(r.subscription_id, r.topic) for r in outbox(factory)]
    assert len(rows) == len(set(rows)) == 6 * len(subs) == sum(counts)


# --- reminders -----------------------------------------------------------------------------------------------------

def test_one_reminder_goes_to_staff_who_have_not_acknowledged(factory, fake, announce, delivery):
    lyon = office(factory, "lyon")
    post(factory, source(factory, "harborcomms"), 61)
    alice, bob = user(factory, "alice", lyon), user(factory, "bob", lyon)
    acked, forgetful = subscribe(factory, fake, lyon, alice), subscribe(factory, fake, lyon, bob)
    anonymous = subscribe(factory, fake, lyon)
    must_read(factory, 61)
    announce_due(factory, T0, announce)
    deliver(factory, delivery, clock=Clock(T0))
    add(factory, Acknowledgement(post_id=61, user_id=alice, at=T0 + timedelta(hours=1)))
    assert remind_due(factory, T0 + timedelta(hours=23), announce) == 0  # not yet
    assert remind_due(factory, T0 + timedelta(hours=24), announce) == 1
    assert remind_due(factory, T0 + timedelta(hours=25), announce) == 0  # once
    deliver(factory, delivery, clock=Clock(T0 + timedelta(hours=24)))
    assert [m["title"] for m in got(fake, forgetful)] == ["Must read: Harbor Comms",
                                                          "Reminder — must read: Harbor Comms"]
    assert len(got(fake, acked)) == len(got(fake, anonymous)) == 1
    assert {r.topic for r in fake.received} == {"mr61"}  # the reminder replaces an undelivered first push
    with factory() as s:
        assert s.get(MustRead, 61).reminded_at == T0 + timedelta(hours=24)


def test_no_reminder_for_an_ended_must_read_nor_before_the_delay_after_a_late_announcement(factory, fake, announce):
    src = source(factory, "harborcomms")
    post(factory, src, 62)
    post(factory, src, 63, pending=True)
    subscribe(factory, fake, None, user(factory, "bob"))
    must_read(factory, 62)
    must_read(factory, 63)
    announce_due(factory, T0, announce)
    with factory() as s:
        s.execute(update(MustRead).where(MustRead.post_id == 62).values(ended_at=T0 + timedelta(hours=2)))
        s.execute(update(Post).where(Post.id == 63).values(pending=False))  # approved 30 hours late
        s.commit()
    late = T0 + timedelta(hours=30)
    assert announce_due(factory, late, announce) == 1
    assert remind_due(factory, late, announce) == 0
    assert remind_due(factory, late + timedelta(hours=24), announce) == 1
    with factory() as s:
        assert s.get(MustRead, 62).reminded_at is None


def test_a_staff_only_reminder_keeps_the_lock_screen_rule(factory, fake, announce, delivery):
    post(factory, source(factory, "insiders", staff_only=True), 64)
    sub_id = subscribe(factory, fake, None, user(factory, "bob"))
    must_read(factory, 64, staff_only=True)
    announce_due(factory, T0, announce)
    remind_due(factory, T0 + timedelta(days=1), announce)
    deliver(factory, delivery, clock=Clock(T0 + timedelta(days=1)))
    assert sorted((m["title"], m["body"]) for m in got(fake, sub_id)) == [
        ("A must-read post for staff", "Sign in to read it."),
        ("Reminder: a must-read post for staff", "Sign in to read it.")]


# --- language ------------------------------------------------------------------------------------------------------

def test_a_french_office_gets_its_push_in_french(factory, fake, announce, delivery):
    lyon = office(factory, "lyon", language="fr")
    post(factory, source(factory, "harborcomms"), 71)
    post(factory, source(factory, "insiders", staff_only=True), 72)
    french, english = subscribe(factory, fake, lyon, user(factory, "bob", lyon)), subscribe(factory, fake, None)
    must_read(factory, 71)
    must_read(factory, 72, staff_only=True)
    announce_due(factory, T0, announce)
    deliver(factory, delivery, clock=Clock(T0))
    assert sorted((m["title"], m["body"][:8]) for m in got(fake, french)) == [
        ("Message à lire pour le personnel", "Connecte"), ("À lire : Harbor Comms", "Ligne 4 ")]
    assert [m["title"] for m in got(fake, english)] == ["Must read: Harbor Comms"]


# --- the worker's commands, end to end ------------------------------------------------------------------------------

def test_push_deliver_announces_then_delivers_and_a_410_removes_the_subscription(push_app, factory, fake):
    post(factory, source(factory, "harborcomms"), 81)
    kept, gone = subscribe(factory, fake), subscribe(factory, fake)
    fake.answer(gone, 410)
    must_read(factory, 81, marked_at=datetime.now(timezone.utc))
    result = push_app.test_cli_runner().invoke(args=["push", "deliver"])
    assert result.exit_code == 0, result.output
    assert "must-read: 2 pushes queued, 0 reminders queued" in result.output
    assert "push: 1 sent, 0 to retry, 0 failed, 1 subscriptions gone" in result.output
    assert [m["postId"] for m in got(fake, kept)] == ["81"]
    with factory() as s:
        assert len(s.scalars(select(PushSubscription)).all()) == 1
        assert s.get(MustRead, 81).announced_at is not None


def test_the_poll_loop_announces_a_must_read_at_its_next_wake(push_app, factory, fake, monkeypatch):
    import types

    from feedapp.cli import poll

    post(factory, source(factory, "harborcomms"), 82)
    sub_id = subscribe(factory, fake)
    must_read(factory, 82, marked_at=datetime.now(timezone.utc))
    now = [0.0]
    monkeypatch.setattr(poll, "time", types.SimpleNamespace(monotonic=lambda: now[0],
                                                            sleep=lambda s: now.__setitem__(0, now[0] + s)))
    with push_app.app_context():
        poll._wait(types.SimpleNamespace(held=True), factory, None, None, until=poll.REQUEST_WAKE)
    assert [m["postId"] for m in got(fake, sub_id)] == ["82"]


def test_a_bad_quiet_hours_setting_stops_the_worker_with_the_reason(make_app, tmp_path):
    ensure_vapid_keys(str(tmp_path / "instance"))
    app = make_app(FEEDAPP_VAPID_SUBJECT=SUBJECT, FEEDAPP_QUIET_HOURS="9pm-7am")
    result = app.test_cli_runner().invoke(args=["push", "deliver"])
    assert result.exit_code == 1 and "FEEDAPP_QUIET_HOURS" in result.output
