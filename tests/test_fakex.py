"""Tests of the fake X API server itself, driven through a real tweepy.Client."""

from __future__ import annotations

import html
import itertools
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
import tweepy

from tests.fakex import FakeX

X = "https://api.twitter.com"
_names = itertools.count()
ALL_TWEET_FIELDS = ["created_at", "entities", "attachments", "referenced_tweets", "note_tweet", "author_id",
                    "conversation_id", "in_reply_to_user_id", "lang", "possibly_sensitive", "public_metrics"]


class RewritingSession(requests.Session):
    """Sends tweepy's https://api.twitter.com calls to the fake, rewriting before signing."""

    def __init__(self, base: str):
        super().__init__()
        self.base = base
        self.trust_env = False  # never route 127.0.0.1 through a proxy

    def request(self, method, url, *args, **kwargs):
        if url.startswith(X):
            url = self.base + url[len(X):]
        return super().request(method, url, *args, **kwargs)


class LateRewritingSession(requests.Session):
    """Rewrites only after the request was signed: the signature covers the wrong URL."""

    def __init__(self, base: str):
        super().__init__()
        self.base = base
        self.trust_env = False

    def send(self, request, **kwargs):
        request.url = request.url.replace(X, self.base, 1)
        return super().send(request, **kwargs)


def make_client(fake, raw=False, session_cls=RewritingSession, **creds):
    """A tweepy.Client pointed at the fake; raw=True returns requests.Response."""
    args = dict(bearer_token="test-bearer", consumer_key="ck", consumer_secret="cs",
                access_token="at", access_token_secret="ats")
    args.update(creds)
    client = tweepy.Client(**args, **({"return_type": requests.Response} if raw else {}))
    client.session = session_cls(fake.url)
    return client


@pytest.fixture(scope="module")
def fake():
    with FakeX() as f:
        f.add_user("northwind_crew", name="Northwind Crew")
        f.add_user("someone", name="Some One", verified=True)
        f.post("someone", "first post")  # the fault tests read this timeline, whatever ran before them
        f.add_user("locked_box", protected=True)
        f.add_user("gone_user", suspended=True)
        yield f


@pytest.fixture(autouse=True)
def _clean(fake):
    fake.clear_faults()
    fake.reset_requests()
    fake.latency = 0
    fake.problem_host = "https://api.twitter.com"
    yield


@pytest.fixture
def raw(fake):
    return make_client(fake, raw=True)


@pytest.fixture
def pager_user(fake):
    """A fresh user with 25 tweets (created oldest first)."""
    name = f"pager{next(_names)}"
    user = fake.add_user(name)
    ids = [fake.post(name, f"post number {i}") for i in range(25)]
    return user, ids


def timeline(raw, uid, **params):
    resp = raw.get_users_tweets(uid, **params)
    return resp.json()


# ------------------------------------------------------------------ timeline paging


def test_paging_three_pages_with_next_token(fake, raw, pager_user):
    user, ids = pager_user
    seen, token, pages = [], None, []
    while True:
        body = timeline(raw, user["id"], max_results=10, pagination_token=token)
        pages.append(body)
        seen += [t["id"] for t in body["data"]]
        assert body["meta"]["result_count"] == len(body["data"])
        assert body["meta"]["newest_id"] == body["data"][0]["id"]
        assert body["meta"]["oldest_id"] == body["data"][-1]["id"]
        token = body["meta"].get("next_token")
        if not token:
            break
    assert [len(p["data"]) for p in pages] == [10, 10, 5]
    assert seen == list(reversed(ids))  # newest first, strictly older page after page
    assert [int(i) for i in seen] == sorted((int(i) for i in seen), reverse=True)
    assert {p["meta"]["next_token"] for p in pages[:2]}.isdisjoint(ids)  # opaque

    # tweepy's Paginator follows the same tokens
    client = make_client(fake)
    got = [t.id for t in tweepy.Paginator(client.get_users_tweets, user["id"], max_results=10).flatten()]
    assert [str(i) for i in got] == seen


def test_since_and_until_are_exclusive(raw, pager_user):
    user, ids = pager_user  # ids oldest..newest
    body = timeline(raw, user["id"], since_id=ids[10], until_id=ids[15], max_results=100)
    assert [t["id"] for t in body["data"]] == list(reversed(ids[11:15]))
    assert "next_token" not in body["meta"]
    empty = timeline(raw, user["id"], since_id=ids[-1])
    assert empty == {"meta": {"result_count": 0}}


def test_ids_increase_with_created_at_and_render_millis(fake):
    name = "clock_user"
    fake.add_user(name)
    later = fake.post(name, "b", created_at=datetime(2025, 3, 14, 16, 5, 9, tzinfo=timezone.utc))
    earlier = fake.post(name, "a", created_at=datetime(2025, 3, 14, 16, 5, 8, 250000, tzinfo=timezone.utc))
    auto = fake.post(name, "c")
    assert int(earlier) < int(later) < int(auto)
    assert fake.tweet(later)["created_at"] == "2025-03-14T16:05:09.000Z"
    assert fake.tweet(earlier)["created_at"] == "2025-03-14T16:05:08.250Z"
    ms = (int(later) >> 22) + 1288834974657
    assert datetime.fromtimestamp(ms / 1000, timezone.utc) == datetime(2025, 3, 14, 16, 5, 9, tzinfo=timezone.utc)


def test_max_results_out_of_range_is_400(fake, raw, pager_user):
    user, _ = pager_user
    resp = raw.session.get(f"{fake.url}/2/users/{user['id']}/tweets", params={"max_results": 3},
                           headers={"Authorization": "Bearer test-bearer"})
    assert resp.status_code == 400
    body = resp.json()
    assert body["title"] == "Invalid Request"
    assert body["type"] == "https://api.twitter.com/2/problems/invalid-request"
    assert body["errors"][0]["parameters"] == {"max_results": ["3"]}
    with pytest.raises(tweepy.BadRequest):
        make_client(fake).get_users_tweets(user["id"], max_results=101)
    with pytest.raises(tweepy.BadRequest):  # unknown field names are rejected like real X
        make_client(fake).get_users_tweets(user["id"], tweet_fields=["bogus"])


# ------------------------------------------------------------------ fields, entities, media


def test_default_fields_are_minimal(fake, raw):
    fake.add_user("minimal")
    fake.post("minimal", "hi https://example.com", media=[{"type": "photo"}])
    body = timeline(raw, fake.user("minimal")["id"])
    assert set(body["data"][0]) == {"id", "text", "edit_history_tweet_ids"}
    assert "includes" not in body


def test_fields_and_expansions_filtering(fake, raw):
    fake.add_user("fields_user")
    tid = fake.post("fields_user", "pic", media=[{"type": "photo", "alt_text": "A cat", "width": 800, "height": 600}])
    body = timeline(raw, fake.user("fields_user")["id"], tweet_fields=["created_at", "attachments"],
                    expansions=["attachments.media_keys", "author_id"], media_fields=["alt_text"],
                    user_fields=["protected"])
    tweet = body["data"][0]
    assert set(tweet) == {"id", "text", "edit_history_tweet_ids", "created_at", "attachments"}
    assert tweet["edit_history_tweet_ids"] == [tid]
    assert tweet["attachments"] == {"media_keys": [f"3_{tid}_1"]}
    assert body["includes"]["media"] == [{"media_key": f"3_{tid}_1", "type": "photo", "alt_text": "A cat"}]
    assert body["includes"]["users"] == [{"id": fake.user("fields_user")["id"], "name": "fields_user",
                                          "username": "fields_user", "protected": False}]


def test_escaped_text_and_code_point_indices(fake, raw):
    tid = fake.post("northwind_crew", "Launch 🚀 Hello & welcome <b> https://example.com/a/really/long/path?q=1&x=2 "
                                      "@someone @nobody_here #Safety", media=[{"type": "photo"}])
    tweet = timeline(raw, fake.user("northwind_crew")["id"], tweet_fields=["entities"], max_results=5)["data"][0]
    assert tweet["id"] == tid
    text = tweet["text"]
    assert "Hello &amp; welcome &lt;b&gt;" in text
    ents = tweet["entities"]
    link, pic = ents["urls"]
    assert text[link["start"]:link["end"]] == link["url"] and link["url"].startswith("https://t.co/")
    assert len(link["url"]) == len("https://t.co/") + 10
    assert link["expanded_url"] == "https://example.com/a/really/long/path?q=1&x=2"
    assert link["unwound_url"] == link["expanded_url"]
    assert link["display_url"] == "example.com/a/really/lo…"
    assert text[pic["start"]:pic["end"]] == pic["url"] and text.endswith(" " + pic["url"])
    assert pic["media_key"] == f"3_{tid}_1"
    assert pic["expanded_url"] == f"https://x.com/northwind_crew/status/{tid}/photo/1"
    assert pic["display_url"] == "pic.x.com/" + pic["url"].rsplit("/", 1)[1]
    known, unknown = ents["mentions"]
    assert text[known["start"]:known["end"]] == "@someone" and known["id"] == fake.user("someone")["id"]
    assert text[unknown["start"]:unknown["end"]] == "@nobody_here" and "id" not in unknown
    tag = ents["hashtags"][0]
    assert text[tag["start"]:tag["end"]] == "#Safety" and tag["tag"] == "Safety"
    # indices count "&amp;" as five code points and the emoji as one
    assert html.unescape(text[:link["start"]]).startswith("Launch 🚀 Hello & welcome <b>")


def test_video_variants(fake, raw):
    tid = fake.post("someone", "clip", media=[{"type": "video", "duration_ms": 42000}])
    body = timeline(raw, fake.user("someone")["id"], expansions=["attachments.media_keys"],
                    media_fields=["variants", "duration_ms", "preview_image_url"], tweet_fields=["entities"])
    video = body["includes"]["media"][0]
    assert video["media_key"] == f"7_{tid}_1" and video["type"] == "video" and video["duration_ms"] == 42000
    assert video["preview_image_url"].startswith("https://pbs.twimg.com/")
    kinds = [(v["content_type"], "bit_rate" in v) for v in video["variants"]]
    assert kinds == [("application/x-mpegURL", False), ("video/mp4", True), ("video/mp4", True)]
    assert body["data"][0]["entities"]["urls"][0]["expanded_url"].endswith(f"/status/{tid}/video/1")


def test_reply_quote_retweet_and_long_text(fake, raw):
    fake.add_user("refs_user")
    orig = fake.post("someone", "Original & " + "words " * 30 + "#end", media=[{"type": "photo"}])
    reply = fake.post("refs_user", "@someone agreed", reply_to=orig)
    quote = fake.post("refs_user", "look at this", quote_of=orig)
    rt = fake.post("refs_user", retweet_of=orig)
    long_id = fake.post("refs_user", "Long & " + "x" * 400 + " https://blog.example.com/ingest", long_text=True)
    body = timeline(raw, fake.user("refs_user")["id"], tweet_fields=ALL_TWEET_FIELDS,
                    expansions=["referenced_tweets.id", "referenced_tweets.id.author_id",
                                "referenced_tweets.id.attachments.media_keys", "in_reply_to_user_id"])
    by_id = {t["id"]: t for t in body["data"]}
    someone = fake.user("someone")["id"]

    r = by_id[reply]
    assert r["referenced_tweets"] == [{"type": "replied_to", "id": orig}]
    assert r["in_reply_to_user_id"] == someone and r["conversation_id"] == orig

    q = by_id[quote]
    assert q["referenced_tweets"] == [{"type": "quoted", "id": orig}]
    qurl = q["entities"]["urls"][-1]
    assert qurl["expanded_url"] == f"https://x.com/someone/status/{orig}"
    assert q["text"].endswith(qurl["url"])

    t = by_id[rt]
    assert t["referenced_tweets"] == [{"type": "retweeted", "id": orig}]
    assert t["text"].startswith("RT @someone: Original &amp; words") and t["text"].endswith("…")
    original_plain = html.unescape(fake.tweet(orig)["text"])
    assert html.unescape(t["text"]) == "RT @someone: " + original_plain[:140] + "…"
    assert t["entities"]["mentions"][0] == {"start": 3, "end": 11, "username": "someone", "id": someone}

    n = by_id[long_id]
    assert html.unescape(n["text"]).startswith("Long & " + "x" * 273 + "… https://t.co/")
    assert n["note_tweet"]["text"].startswith("Long &amp; " + "x" * 400)
    nurl = n["note_tweet"]["entities"]["urls"][0]
    assert n["note_tweet"]["text"][nurl["start"]:nurl["end"]] == nurl["url"]
    assert nurl["expanded_url"] == "https://blog.example.com/ingest"

    inc = body["includes"]
    assert [x["id"] for x in inc["tweets"]] == [orig]  # deduplicated across reply/quote/retweet
    assert [u["id"] for u in inc["users"]] == [someone]
    assert inc["media"][0]["media_key"] == f"3_{orig}_1"


def test_exclude_replies_and_retweets(fake, raw):
    fake.add_user("excl_user")
    base = fake.post("excl_user", "plain")
    fake.post("excl_user", "re", reply_to=base)
    fake.post("excl_user", retweet_of=base)
    body = timeline(raw, fake.user("excl_user")["id"], exclude=["replies", "retweets"])
    assert [t["id"] for t in body["data"]] == [base]


# ------------------------------------------------------------------ auth


def test_protected_user_needs_oauth1(fake):
    fake.post("locked_box", "secret")
    uid = fake.user("locked_box")["id"]
    bearer = make_client(fake).get_users_tweets(uid)
    assert bearer.data is None
    err = bearer.errors[0]
    assert err["type"] == "https://api.twitter.com/2/problems/not-authorized-for-resource"
    assert err["title"] == "Authorization Error" and err["resource_id"] == uid and err["value"] == uid
    assert err["detail"] == f"Sorry, you are not authorized to see the user with id: [{uid}]."
    user_ctx = make_client(fake).get_users_tweets(uid, user_auth=True)
    assert [t.text for t in user_ctx.data] == ["secret"]
    assert [r.auth for r in fake.requests] == ["bearer", "oauth1"]


def test_bad_credentials_are_rejected(fake):
    uid = fake.user("someone")["id"]
    with pytest.raises(tweepy.Unauthorized) as exc:
        make_client(fake, session_cls=LateRewritingSession).get_users_tweets(uid, user_auth=True)
    assert exc.value.response.json() == {"title": "Unauthorized", "type": "about:blank", "status": 401,
                                         "detail": "Unauthorized"}
    for creds in ({"consumer_secret": "wrong"}, {"access_token": "other"}, {"access_token_secret": "nope"}):
        with pytest.raises(tweepy.Unauthorized):
            make_client(fake, **creds).get_users_tweets(uid, user_auth=True)
    with pytest.raises(tweepy.Unauthorized):
        make_client(fake, bearer_token="nope").get_users_tweets(uid)
    resp = requests.get(f"{fake.url}/2/users/{uid}")
    assert resp.status_code == 401 and fake.requests[-1].auth == "none"


# ------------------------------------------------------------------ users lookup


def test_users_lookup_found_unknown_and_suspended(fake):
    client = make_client(fake)
    resp = client.get_users(usernames=["NORTHWIND_CREW", "ghost", "gone_user"],
                            user_fields=["protected", "verified", "profile_image_url"])
    assert [u.username for u in resp.data] == ["northwind_crew"]
    assert resp.data[0].protected is False and resp.data[0].profile_image_url.startswith("https://pbs.twimg.com/")
    missing, suspended = resp.errors
    assert missing == {"value": "ghost", "detail": "Could not find user with usernames: [ghost].",
                       "title": "Not Found Error", "resource_type": "user", "parameter": "usernames",
                       "resource_id": "ghost", "type": "https://api.twitter.com/2/problems/resource-not-found"}
    assert suspended["detail"] == "User has been suspended: [gone_user]." and suspended["title"] == "Forbidden"
    assert suspended["type"].endswith("/2/problems/resource-not-found")

    plain = client.get_users(usernames=["someone"]).data[0]
    assert set(plain.data) == {"id", "name", "username"}
    assert client.get_user(id=fake.user("someone")["id"]).data.username == "someone"


def test_single_user_errors_have_no_data(fake, raw):
    fake.problem_host = "https://api.x.com"
    body = raw.get_user(username="ghost").json()
    assert "data" not in body
    assert body["errors"][0]["detail"] == "Could not find user with username: [ghost]."
    assert body["errors"][0]["type"] == "https://api.x.com/2/problems/resource-not-found"
    body = raw.get_user(id="42").json()
    assert body["errors"][0]["detail"] == "Could not find user with id: [42]."
    gone = fake.user("gone_user")["id"]
    assert raw.get_user(id=gone).json()["errors"][0]["detail"] == f"User has been suspended: [{gone}]."
    with pytest.raises(tweepy.BadRequest):
        make_client(fake).get_users(usernames=[f"u{i}" for i in range(101)])


def test_timeline_of_unknown_and_suspended_users(fake, raw):
    gone = fake.user("gone_user")["id"]
    body = timeline(raw, gone)
    assert "data" not in body and body["errors"][0]["detail"] == f"User has been suspended: [{gone}]."
    body = timeline(raw, "123")
    assert body["errors"][0]["detail"] == "Could not find user with id: [123]."


# ------------------------------------------------------------------ faults, headers, plumbing


@pytest.mark.parametrize("kind,exc", [("500", tweepy.TwitterServerError), ("503", tweepy.TwitterServerError),
                                      ("401", tweepy.Unauthorized), ("403", tweepy.Forbidden)])
def test_http_error_faults(fake, kind, exc):
    uid = fake.user("someone")["id"]
    fake.fail("/2/users/*/tweets", kind)
    with pytest.raises(exc) as info:
        make_client(fake).get_users_tweets(uid)
    assert info.value.response.status_code == int(kind)
    assert make_client(fake).get_users_tweets(uid).meta["result_count"] >= 1  # one-shot


def test_429_fault_and_count(fake):
    uid = fake.user("someone")["id"]
    fake.fail("/2/users/*/tweets", "429", count=2, reset_in=120)
    for _ in range(2):
        before = time.time()
        with pytest.raises(tweepy.TooManyRequests) as info:
            make_client(fake).get_users_tweets(uid)
        after = time.time()
        headers = info.value.response.headers
        assert headers["x-rate-limit-remaining"] == "0"
        assert int(before + 120) <= int(headers["x-rate-limit-reset"]) <= after + 120  # 120 s after the call
    make_client(fake).get_users_tweets(uid)
    make_client(fake).get_user(username="someone")  # other paths never matched


def test_body_faults(fake, raw):
    uid = fake.user("someone")["id"]
    fake.fail("/2/users/*/tweets", "malformed")
    resp = raw.get_users_tweets(uid)
    assert resp.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.text)
    fake.fail("/2/users/*/tweets", "truncated")
    body = raw.get_users_tweets(uid).json()
    assert "data" not in body and body["meta"] == "x"
    fake.fail("/2/users/*/tweets", "errors", type="not-authorized-for-resource")
    body = raw.get_users_tweets(uid).json()
    assert list(body) == ["errors"]
    assert body["errors"][0]["type"].endswith("/2/problems/not-authorized-for-resource")
    assert body["errors"][0]["resource_id"] == uid
    fake.fail("/2/users/*/tweets", "remaining0")
    resp = raw.get_users_tweets(uid)
    assert resp.headers["x-rate-limit-remaining"] == "0" and resp.json()["data"]
    assert int(raw.get_users_tweets(uid).headers["x-rate-limit-remaining"]) > 0


def test_slow_fault_and_latency(fake, raw):
    fake.fail("/2/users/by/username/*", "slow", delay=0.3)
    fake.fail("/2/users/by/username/*", "500")  # queued behind it: reached only once the slow fault is spent
    t0 = time.perf_counter()
    assert raw.get_user(username="someone").json()["data"]["username"] == "someone"
    assert time.perf_counter() - t0 >= 0.3
    with pytest.raises(tweepy.TwitterServerError):  # so the slow fault was one-shot
        raw.get_user(username="someone")
    fake.latency = 0.1
    t0 = time.perf_counter()
    raw.get_user(username="someone")
    assert time.perf_counter() - t0 >= 0.1


def test_rate_limit_headers_and_exhaustion(fake, raw):
    resp = raw.get_user(username="someone")
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.headers["x-rate-limit-limit"] == "900"
    first = int(resp.headers["x-rate-limit-remaining"])
    assert int(raw.get_user(username="someone").headers["x-rate-limit-remaining"]) == first - 1
    assert int(resp.headers["x-rate-limit-reset"]) > time.time()
    fake.rate_limit = 900 - first + 1  # exactly the calls made so far + 0: the next one is over
    try:
        with pytest.raises(tweepy.TooManyRequests):
            make_client(fake).get_user(username="someone")
    finally:
        fake.rate_limit = 900


def test_unknown_path_is_404_and_requests_are_recorded(fake, raw):
    resp = raw.session.get(f"{fake.url}/2/tweets/search/recent", params={"query": "x"},
                           headers={"Authorization": "Bearer test-bearer"})
    assert resp.status_code == 404 and resp.json()["status"] == 404
    assert fake.requests[-1] == ("GET", "/2/tweets/search/recent", {"query": "x"}, "bearer")
    fake.reset_requests()
    assert fake.requests == []
    with pytest.raises(ValueError):
        fake.fail("/2/*", "teapot")


def test_start_time_end_time_window(fake, raw):
    fake.add_user("window_user")
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    ids = [fake.post("window_user", f"day {d}", created_at=base + timedelta(days=d)) for d in range(5)]
    body = timeline(raw, fake.user("window_user")["id"], start_time="2024-01-02T00:00:00Z",
                    end_time="2024-01-04T00:00:00Z")
    assert [t["id"] for t in body["data"]] == [ids[2], ids[1]]
