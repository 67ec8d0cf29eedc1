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
