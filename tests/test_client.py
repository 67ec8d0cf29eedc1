"""The tweepy wrapper: host rewrite, credentials choice, error mapping."""

from __future__ import annotations

import logging

import pytest
import requests
from requests.adapters import BaseAdapter

from feedapp.xapi import AuthError, XClient, XSettings
from feedapp.xapi.client import RewritingSession, source_error


class Recorder(BaseAdapter):
    """A transport that records the prepared request instead of sending it."""

    def __init__(self):
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):
        self.sent.append(request)
        self.kwargs = kwargs
        response = requests.Response()
        response.status_code, response._content, response.request = 200, b"{}", request
        return response

    def close(self):
        pass


@pytest.mark.parametrize(
    "base, expected",
    [
        (None, "https://api.twitter.com/2/users/by?usernames=a"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/2/users/by?usernames=a"),
        ("http://127.0.0.1:8080/xproxy/", "http://127.0.0.1:8080/xproxy/2/users/by?usernames=a"),
    ],
)
def test_rewriting_session_swaps_host_only_when_configured(base, expected):
    session = RewritingSession(base, timeout=3.5)
    recorder = Recorder()
    session.mount("http://", recorder)
    session.mount("https://", recorder)
    session.request("GET", "https://api.twitter.com/2/users/by", params={"usernames": "a"})
    assert recorder.sent[0].url == expected
    assert recorder.kwargs["timeout"] == 3.5


def test_oauth1_signature_covers_the_rewritten_url(fake_x):
    """The fake verifies HMAC-SHA1 over its own URL: this only passes if signing follows the rewrite."""
    fake_x.add_user("depot7_hr", protected=True)
    fake_x.post("depot7_hr", "staff only")
    client = XClient(XSettings(consumer_key="ck", consumer_secret="cs", access_token="at",
                               access_token_secret="ats", api_url=fake_x.url))
    uid = fake_x.user("depot7_hr")["id"]
    page = client.timeline_page(uid, user_auth=True).page
    assert [p.text for p in page.posts] == ["staff only"]
    assert fake_x.requests[-1].auth == "oauth1"


def test_public_reads_fall_back_to_the_reader_account_without_bearer(fake_x):
    fake_x.add_user("northwind")
    client = XClient(XSettings(consumer_key="ck", consumer_secret="cs", access_token="at",
                               access_token_secret="ats", api_url=fake_x.url))
    assert [u.username for u in client.lookup_users(["northwind"]).users] == ["northwind"]
    assert fake_x.requests[-1].auth == "oauth1"


def test_user_auth_without_reader_credentials_is_an_auth_error(fake_x):
    client = XClient(XSettings(bearer_token="test-bearer", api_url=fake_x.url))
    with pytest.raises(AuthError, match="FEEDAPP_X_CONSUMER_KEY"):
        client.timeline_page("1", user_auth=True)
    assert fake_x.requests == []


def test_lookup_batches_100_usernames_per_call(fake_x):
    names = [f"user{i}" for i in range(150)]
    for n in names:
        fake_x.add_user(n)
    client = XClient(XSettings(bearer_token="test-bearer", api_url=fake_x.url))
    lookup = client.lookup_users(names + ["nobody"])
    assert len(lookup.users) == 150 and "nobody" in lookup.problems
    assert [len(r.params["usernames"].split(",")) for r in fake_x.requests] == [100, 51]


@pytest.mark.parametrize("host", ["https://api.twitter.com", "https://api.x.com"])
@pytest.mark.parametrize(
    "suffix, detail, kind",
    [
        ("not-authorized-for-resource", "Sorry, you are not authorized to see the user with id: [1].", "not-authorized"),
        ("resource-not-found", "User has been suspended: [1].", "suspended"),
        ("resource-not-found", "Could not find user with id: [1].", "not-found"),
        ("something-new", "A problem", "unavailable"),
    ],
)
def test_problem_types_match_by_suffix_on_both_hosts(host, suffix, detail, kind):
    err = source_error({"type": f"{host}/2/problems/{suffix}", "detail": detail})
    assert err.kind == kind and detail in str(err)


def test_tweepy_debug_logging_is_off_so_tokens_never_reach_logs(fake_x, caplog):
    fake_x.add_user("northwind")
    client = XClient(XSettings(bearer_token="test-bearer", api_url=fake_x.url))
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("tweepy").setLevel(logging.WARNING)  # what importing the client did
        client.lookup_users(["northwind"])
    assert "test-bearer" not in caplog.text


class RecordingLimits:
    """A RateLimits store that remembers what the client told it and blocks what the test says."""

    def __init__(self):
        self.recorded, self.blocked = [], {}

    def blocked_until(self, key):
        return self.blocked.get(key)

    def record(self, key, info):
        self.recorded.append((key, info))


def test_the_client_checks_every_call_and_records_every_response(fake_x):
    from datetime import datetime, timedelta, timezone

    from feedapp.xapi import RateLimited

    fake_x.add_user("northwind")
    limits = RecordingLimits()
    client = XClient(XSettings(bearer_token="test-bearer", api_url=fake_x.url), limits)
    client.lookup_users(["northwind"])
    uid = fake_x.user("northwind")["id"]
    client.lookup_ids([uid])
    fake_x.fail("/2/users/*/tweets", "500")
    with pytest.raises(Exception, match="X server error"):
        client.timeline_page(uid)

    keys = [key for key, _ in limits.recorded]
    assert [k.endpoint for k in keys] == ["/2/users/by", "/2/users", "/2/users/:id/tweets"]
    assert {k.kind for k in keys} == {"bearer"} and all("test-bearer" not in k.credential for k in keys)
    assert [(i.limit, i.remaining) for _, i in limits.recorded] == [(900, 899), (900, 899), (900, 899)]

    until = datetime.now(timezone.utc) + timedelta(minutes=7)
    limits.blocked[client.rate_key("/2/users/:id/tweets")] = until
    fake_x.reset_requests()
    with pytest.raises(RateLimited) as caught:
        client.timeline_page(uid)
    assert caught.value.reset_at == until and not caught.value.called
    assert "(bearer token, timelines)" in str(caught.value)
    assert fake_x.requests == []  # a known window: nothing was sent
    client.lookup_users(["northwind"])  # another endpoint has a window of its own
    assert [r.path for r in fake_x.requests] == ["/2/users/by"]


def test_a_429_records_an_exhausted_window_at_xs_reset(fake_x):
    from feedapp.xapi import RateLimited

    fake_x.add_user("northwind")
    limits = RecordingLimits()
    client = XClient(XSettings(bearer_token="test-bearer", api_url=fake_x.url), limits)
    fake_x.fail("/2/users/by", "429", reset_in=600)
    with pytest.raises(RateLimited) as caught:
        client.lookup_users(["northwind"])
    key, info = limits.recorded[-1]
    assert (key.endpoint, info.remaining) == ("/2/users/by", 0) and info.reset_at == caught.value.reset_at
    assert caught.value.called and str(caught.value).startswith("X answered 429 Too Many Requests; rate-limited until")


def test_rate_info_reads_x_headers_and_a_24_hour_cap():
    import time
    from datetime import datetime, timezone

    from feedapp.xapi.limits import DEFAULT_WINDOW, rate_info

    now = int(time.time())
    info = rate_info({"x-rate-limit-limit": "900", "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(now + 60)})
    assert (info.limit, info.remaining, info.exhausted) == (900, 0, True)
    assert info.reset_at == datetime.fromtimestamp(now + 60, timezone.utc)
    assert rate_info({}) is None  # no headers, nothing learned
    # X documents 24-hour caps beside the 15-minute window: a 429 caused by one lasts until its reset.
    capped = rate_info({"x-rate-limit-remaining": "12", "x-rate-limit-reset": str(now + 60),
                        "x-user-limit-24hour-remaining": "0", "x-user-limit-24hour-reset": str(now + 7200)},
                       refused=True)
    assert capped.remaining == 0 and capped.reset_at == datetime.fromtimestamp(now + 7200, timezone.utc)
    garbled = rate_info({"x-rate-limit-remaining": "0", "x-rate-limit-reset": "soon"})
    assert DEFAULT_WINDOW - (garbled.reset_at - datetime.now(timezone.utc)) < DEFAULT_WINDOW / 10


def test_credentials_are_named_by_a_hash_that_changes_with_the_token():
    from feedapp.xapi.limits import credential_id

    a, b = credential_id("bearer", "token-a"), credential_id("bearer", "token-b")
    assert a.startswith("bearer:") and a != b and "token" not in a
    assert credential_id("reader", "ck", "at") != credential_id("reader", "ck", "at2")
