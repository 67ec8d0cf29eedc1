"""The sign-in and password-check throttles: shared counts, counted before the check, no lock-outs from elsewhere.

Every test runs on each storage the README offers: the app's database (SQLite and PostgreSQL)
and Redis (a key prefix of its own per test, from the redis_url fixture). Windows are moved
on with a fake clock, never by waiting.
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
import urllib.request
from collections import Counter

import pytest
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from feedapp.db import sessions as app_sessions
from feedapp.models import ThrottleCount
from feedapp.throttle import DatabaseStorage, Limit, RedisStorage, Throttle
from feedapp.web import limits
from tests.auth_helpers import PASSWORD, cookie, csrf, csrf_in, login, make_staff, signed_in, user_row
from tests.browser import serve

USER_LIMIT = "Too many wrong passwords for this username. Wait 15 minutes and try again."
NETWORK_LIMIT = "Too many sign-in attempts from this network. Wait a few minutes and try again."
ELSEWHERE_LIMIT = "Too many wrong passwords for this username from different places."
GUESS = "guess guess guess"

ON_EVERY_STORAGE = pytest.mark.parametrize(
    "db_url, storage", [("sqlite", "database"), ("postgresql", "database"), ("sqlite", "redis")],
    indirect=["db_url"], ids=["database-sqlite", "database-postgresql", "redis"])


class FakeClock:
    """time.time, but moved on by the test."""

    def __init__(self, start: float):
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make_throttled(make_app, storage, request):
    """Apps whose throttle counts on this test's storage (one Redis prefix shared by all apps of the test)."""
    url = request.getfixturevalue("redis_url") if storage == "redis" else None

    def _make(**overrides):
        return make_app(FEEDAPP_RATELIMIT_STORAGE_URL=url, **overrides)

    return _make


@pytest.fixture
def throttled(make_throttled):
    return make_throttled()


def client_at(app, address: str, forwarded_for: str | None = None):
    """A browser connecting from address (optionally through a proxy that says the client is forwarded_for)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    if forwarded_for:
        client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return client


def clock_of(app) -> FakeClock:
    """Put the app's throttle on a fake clock starting now."""
    throttle = app.extensions["feedapp.throttle"]
    clock = throttle.clock = FakeClock(throttle.clock())
    return clock


# --------------------------------------------------------------------------- the counters themselves


@ON_EVERY_STORAGE
def test_counting_is_atomic_under_concurrency(throttled):
    storage = throttled.extensions["feedapp.throttle"].storage
    barrier = threading.Barrier(32)
    counts, errors = [], []

    def hit():
        try:
            barrier.wait()
            counts.append(storage.hit("atomic:test", 900, 2_000_000_000.0)[0])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=hit) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(counts) == list(range(1, 33))  # every hit saw its own count: none lost, none shared


@ON_EVERY_STORAGE
def test_a_window_ends_and_a_late_give_back_does_not_touch_the_next(throttled):
    throttle = Throttle(throttled.extensions["feedapp.throttle"].storage, clock=FakeClock(2_000_000_000.0))
    limit = Limit("window-test", 3, 60)
    attempts = [throttle.attempt([(limit, "subject")]) for _ in range(3)]
    assert all(a.allowed for a in attempts)
    refused = throttle.attempt([(limit, "subject")])
    assert not refused.allowed and refused.refused_by is limit and 0 < refused.retry_after <= 60
    throttle.clock.now += 60  # the window is over
    fresh = throttle.attempt([(limit, "subject")])
    assert fresh.allowed
    attempts[0].succeeded()  # an attempt of the old window ends late: it must not free a slot of this one
    assert [throttle.attempt([(limit, "subject")]).allowed for _ in range(3)] == [True, True, False]


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_finished_windows_are_deleted_now_and_then(app):
    storage = DatabaseStorage(app_sessions(app).kw["bind"], purge_every=3)
    for i in range(3):
        storage.hit(f"old:{i}", 60, 1_000.0)
    with app_sessions(app)() as s:
        assert s.scalar(select(func.count()).select_from(ThrottleCount)) == 3
    storage.hit("new", 60, 5_000.0)  # the 4th hit of this process purges: the three windows ended at 1060
    with app_sessions(app)() as s:
        assert s.scalars(select(ThrottleCount.key)).all() == ["new"]


# --------------------------------------------------------------------------- sign-in over a real server


def _post_login(url: str, session_cookie: str, token: str, username: str, password: str) -> int:
    body = urllib.parse.urlencode({"csrf_token": token, "username": username, "password": password}).encode()
    request = urllib.request.Request(url + "/login", data=body, headers={"Cookie": f"session={session_cookie}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)
    try:
        with opener.open(request, timeout=120) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@ON_EVERY_STORAGE
def test_32_concurrent_wrong_passwords_get_exactly_five_tries(throttled):
    # The real (slow) password hash, as in production: the window between checking and counting is wide.
    with app_sessions(throttled)() as s:
        from feedapp import accounts

        user = accounts.create_user(s, "alice")
        user.password_hash = generate_password_hash(PASSWORD)
        s.commit()
    page = throttled.test_client()
    token = csrf(page, "/login")
    session_cookie = cookie(page, "session")
    barrier = threading.Barrier(32)
    statuses = []
    with serve(throttled) as url:

        def guess():
            barrier.wait()
            statuses.append(_post_login(url, session_cookie, token, "alice", GUESS))

        threads = [threading.Thread(target=guess) for _ in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert Counter(statuses) == {401: 5, 429: 27}


@ON_EVERY_STORAGE
def test_every_worker_and_node_counts_together(make_throttled):
    first, second = make_throttled(), make_throttled()  # two processes (or machines) on one database / Redis
    make_staff(app_sessions(first), "alice")
    for i in range(5):
        app = first if i % 2 else second
        assert login(client_at(app, "192.0.2.10"), "alice", GUESS).status_code == 401
    for app in (first, second):
        refused = login(client_at(app, "192.0.2.10"), "alice", PASSWORD)
        assert refused.status_code == 429 and USER_LIMIT in refused.get_data(as_text=True)


@ON_EVERY_STORAGE
def test_failing_on_purpose_does_not_lock_a_person_out(throttled):
    make_staff(app_sessions(throttled), "alice")
    attacker = client_at(throttled, "198.51.100.66")
    for _ in range(5):
        assert login(attacker, "alice", GUESS).status_code == 401
    blocked = login(attacker, "alice", PASSWORD)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert USER_LIMIT in blocked.get_data(as_text=True)
    phone = client_at(throttled, "192.0.2.10")  # alice, from her own network, never signed in on this phone
    assert login(phone, "alice", PASSWORD).status_code == 303 and signed_in(phone)


@ON_EVERY_STORAGE
def test_a_success_gives_its_slot_back(throttled):
    make_staff(app_sessions(throttled), "alice")
    for _ in range(4):
        assert login(client_at(throttled, "192.0.2.10"), "alice", GUESS).status_code == 401
    for _ in range(4):
        assert login(client_at(throttled, "192.0.2.10"), "alice", PASSWORD).status_code == 303
    assert login(client_at(throttled, "192.0.2.10"), "alice", GUESS).status_code == 401  # the 5th failure
    assert login(client_at(throttled, "192.0.2.10"), "alice", PASSWORD).status_code == 429


@ON_EVERY_STORAGE
def test_rotating_addresses_meet_the_per_username_limit_and_her_own_phone_gets_past(make_throttled):
    app = make_throttled(FEEDAPP_PROXY_COUNT=1)  # behind a proxy at 127.0.0.1 that sends X-Forwarded-For
    make_staff(app_sessions(app), "alice")
    phone = client_at(app, "127.0.0.1", "192.0.2.10")
    assert login(phone, "alice", PASSWORD).status_code == 303  # she signed in on this phone before
    assert login(client_at(app, "127.0.0.1", "192.0.2.10"), "bob-who-does-not-exist", GUESS).status_code == 401
    for i in range(10):  # a botnet, or one client rotating X-Forwarded-For through the proxy
        assert login(client_at(app, "127.0.0.1", f"203.0.113.{i + 1}"), "alice", GUESS).status_code == 401, i
    refused = login(client_at(app, "127.0.0.1", "203.0.113.200"), "alice", PASSWORD)
    assert refused.status_code == 429
    assert ELSEWHERE_LIMIT in refused.get_data(as_text=True)
    new_phone = client_at(app, "127.0.0.1", "192.0.2.11")
    assert login(new_phone, "alice", PASSWORD).status_code == 429  # a browser that never signed in as alice waits
    phone.post("/logout", data={"csrf_token": csrf(phone, "/logout")})
    assert not signed_in(phone)
    again = login(phone, "alice", PASSWORD)  # the device cookie survives signing out
    assert again.status_code == 303 and signed_in(phone)
    assert login(client_at(app, "127.0.0.1", "192.0.2.10"), "bob", PASSWORD).status_code == 401  # only for alice


@ON_EVERY_STORAGE
def test_a_device_cookie_only_counts_when_it_is_genuine(make_throttled):
    app = make_throttled()
    make_staff(app_sessions(app), "alice")
    make_staff(app_sessions(app), "bob")
    bobs = client_at(app, "192.0.2.20")
    assert login(bobs, "bob", PASSWORD).status_code == 303
    found = bobs.get_cookie(limits.DEVICE_COOKIE, path="/login")
    assert found and found.http_only and found.path == "/login"  # sent to the sign-in form only
    device = found.value
    for i in range(10):
        assert login(client_at(app, f"203.0.113.{i + 1}"), "alice", GUESS).status_code == 401
    for value in (device, device[:-2] + ("AA" if not device.endswith("AA") else "BB")):  # bob's, and forged
        browser = client_at(app, "192.0.2.21")
        browser.set_cookie(limits.DEVICE_COOKIE, value, path="/login")
        assert login(browser, "alice", PASSWORD).status_code == 429


@ON_EVERY_STORAGE
def test_forwarded_for_from_a_peer_that_is_not_the_proxy_does_not_escape_the_client_limit(make_throttled):
    app = make_throttled(FEEDAPP_PROXY_COUNT=1)
    make_staff(app_sessions(app), "alice")
    for i in range(20):  # straight to the app, past the proxy, inventing a new client each time
        direct = client_at(app, "198.51.100.7", f"203.0.113.{i + 1}")
        assert login(direct, f"user{i}", GUESS).status_code == 401, i
    blocked = login(client_at(app, "198.51.100.7", "203.0.113.99"), "alice", PASSWORD)
    assert blocked.status_code == 429 and NETWORK_LIMIT in blocked.get_data(as_text=True)
    # Through the real proxy, X-Forwarded-For names the client: someone else is not blocked.
    assert login(client_at(app, "127.0.0.1", "192.0.2.50"), "alice", PASSWORD).status_code == 303


@ON_EVERY_STORAGE
def test_twenty_failures_from_one_network_block_it_but_not_its_known_browsers(throttled):
    make_staff(app_sessions(throttled), "alice")
    honest = client_at(throttled, "192.0.2.30")  # a depot behind one NAT address
    assert login(honest, "alice", PASSWORD).status_code == 303
    assert honest.post("/logout", data={"csrf_token": csrf(honest, "/logout")}).status_code == 200
    stuffing = client_at(throttled, "192.0.2.30")
    token = csrf(stuffing, "/login")
    for i in range(20):
        assert login(stuffing, f"u{i}", GUESS, token=token).status_code == 401
    blocked = login(stuffing, "alice", PASSWORD, token=token)
    assert blocked.status_code == 429 and NETWORK_LIMIT in blocked.get_data(as_text=True)
    assert int(blocked.headers["Retry-After"]) > 0
    assert login(honest, "alice", PASSWORD).status_code == 303  # a phone that signed in as alice before
    assert login(client_at(throttled, "192.0.2.31"), "alice", PASSWORD).status_code == 303  # another address


@ON_EVERY_STORAGE
def test_refused_attempts_are_not_counted(throttled):
    make_staff(app_sessions(throttled), "alice")
    clock = clock_of(throttled)
    for _ in range(5):
        assert login(client_at(throttled, "192.0.2.40"), "alice", GUESS).status_code == 401
    for _ in range(30):  # hammering a locked pair: none of it reaches a password, none of it counts elsewhere
        assert login(client_at(throttled, "192.0.2.40"), "alice", GUESS).status_code == 429
    assert login(client_at(throttled, "192.0.2.40"), "bob", GUESS).status_code == 401  # the address is not spent
    clock.now += 15 * 60
    assert login(client_at(throttled, "192.0.2.40"), "alice", PASSWORD).status_code == 303


@ON_EVERY_STORAGE
def test_the_current_password_check_is_throttled(throttled):
    make_staff(app_sessions(throttled), "alice")
    clock = clock_of(throttled)
    client = client_at(throttled, "192.0.2.60")
    assert login(client, "alice", PASSWORD).status_code == 303
    stored = user_row(app_sessions(throttled), "alice").password_hash

    def change(current: str):
        token = csrf_in(client.get("/account").get_data(as_text=True))
        return client.post("/account/password", data={"csrf_token": token, "current": current,
                                                       "password": "a brand new passphrase",
                                                       "confirm": "a brand new passphrase"})

    for _ in range(5):
        assert change("a wrong guess here").status_code == 400
    refused = change(PASSWORD)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Too many wrong passwords. Wait 15 minutes and try again." in refused.get_data(as_text=True)
    assert user_row(app_sessions(throttled), "alice").password_hash == stored
    clock.now += 15 * 60
    assert change(PASSWORD).status_code == 303
    assert login(client_at(throttled, "192.0.2.61"), "alice", "a brand new passphrase").status_code == 303


# --------------------------------------------------------------------------- where the counts live


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_the_database_is_the_default_storage(make_app, caplog):
    app = make_app()
    assert isinstance(app.extensions["feedapp.throttle"].storage, DatabaseStorage)
    make_staff(app_sessions(app), "alice")
    assert login(client_at(app, "192.0.2.70"), "alice", GUESS).status_code == 401
    with app_sessions(app)() as s:
        keys = set(s.scalars(select(ThrottleCount.key)))
    assert {"login-client:192.0.2.70", "login-user-client:alice:192.0.2.70", "login-user:alice"} <= keys
    with caplog.at_level(logging.WARNING, logger="feedapp"):
        old = make_app(FEEDAPP_RATELIMIT_STORAGE_URL="memory://")  # the old per-worker default
    assert isinstance(old.extensions["feedapp.throttle"].storage, DatabaseStorage)
    assert "memory:// is no longer used" in caplog.text
    with pytest.raises(RuntimeError, match="FEEDAPP_RATELIMIT_STORAGE_URL='memcached://x' is not valid"):
        make_app(FEEDAPP_RATELIMIT_STORAGE_URL="memcached://x")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_redis_counts_live_under_the_sites_prefix(make_app, redis_url):
    import redis

    app = make_app(FEEDAPP_RATELIMIT_STORAGE_URL=redis_url)
    storage = app.extensions["feedapp.throttle"].storage
    assert isinstance(storage, RedisStorage) and storage.prefix.startswith("feedapp-test-")
    make_staff(app_sessions(app), "alice")
    assert login(client_at(app, "192.0.2.80"), "alice", GUESS).status_code == 401
    client = redis.Redis.from_url(redis_url.split("?")[0])
    try:
        keys = {k.decode() for k in client.scan_iter(match=f"{storage.prefix}*")}
        assert f"{storage.prefix}login-user:alice" in keys
        assert client.pttl(f"{storage.prefix}login-user:alice") > 0  # Redis forgets the window by itself
    finally:
        client.close()
    with app_sessions(app)() as s:
        assert s.scalar(select(func.count()).select_from(ThrottleCount)) == 0
