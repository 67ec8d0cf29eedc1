"""Tests of the fake X API's filtered stream and its rules, through tweepy.StreamingClient and plain HTTP."""

from __future__ import annotations

import json
import queue
import socket
import threading

import pytest
import requests
import tweepy

from feedapp.xapi.client import RewritingSession
from tests.fakex import RULES_PATH, STREAM_PATH, TWEET_FIELDS, FakeX

BEARER = {"Authorization": "Bearer test-bearer"}
FIELDS = dict(expansions=["author_id", "attachments.media_keys", "referenced_tweets.id"],
              tweet_fields=["created_at", "author_id", "entities", "attachments", "referenced_tweets"],
              user_fields=["username", "protected"], media_fields=["url", "type"])
WIRE = {"expansions": "author_id,attachments.media_keys,referenced_tweets.id",
        "tweet.fields": "created_at,author_id,entities,attachments,referenced_tweets",
        "user.fields": "username,protected", "media.fields": "url,type"}


class Recorder(tweepy.StreamingClient):
    """A StreamingClient pointed at the fake that records what it gets and stops when the stream closes."""

    def __init__(self, fake: FakeX):
        super().__init__("test-bearer", return_type=requests.Response, max_retries=0)
        self.session = RewritingSession(fake.url, 5)
        self.session.trust_env = False  # never route 127.0.0.1 through a proxy
        self.responses: queue.Queue = queue.Queue()
        self.errors: queue.Queue = queue.Queue()
        self.keepalives = queue.Queue()
        self.closed = threading.Event()
        self.statuses: list[int] = []

    def on_response(self, response):
        self.responses.put(response)

    def on_errors(self, errors):
        self.errors.put(errors)

    def on_keep_alive(self):
        self.keepalives.put(True)

    def on_closed(self, response):
        self.closed.set()
        self.disconnect()

    def on_request_error(self, status_code):
        self.statuses.append(status_code)
        self.disconnect()  # tweepy would sleep 5-60 s before retrying


@pytest.fixture
def fake():
    with FakeX() as f:
        f.add_user("alice", name="Alice")
        f.add_user("bob", name="Bob")
        f.add_user("hidden", protected=True)
        f.keepalive = 0.05
        yield f


@pytest.fixture
def http():
    s = requests.Session()
    s.trust_env = False
    yield s
    s.close()


@pytest.fixture
def rules_client(fake):
    client = tweepy.StreamingClient("test-bearer", return_type=requests.Response)
    client.session = RewritingSession(fake.url, 5)
    client.session.trust_env = False
    return client


@pytest.fixture
def stream(fake):
    """Start a Recorder's filter(threaded=True) with FIELDS; ends it (and joins) after the test."""
    started = []

    def start(**params):
        rec = Recorder(fake)
        rec.filter(threaded=True, **{**FIELDS, **params})
        started.append(rec)
        return rec

    yield start
    for rec in started:
        rec.disconnect()
    fake.disconnect_stream(message=False)
    for rec in started:
        rec.thread.join(5)


def add(client, *rules, **params):
    return client.add_rules([tweepy.StreamRule(v, tag=t) for v, t in rules], **params).json()


def rule_ids(client, **params):
    return [r["id"] for r in client.get_rules(**params).json().get("data", [])]


def connect(http, fake, **params):
    return http.get(fake.url + STREAM_PATH, params=params, headers=BEARER, stream=True, timeout=5)


# ------------------------------------------------------------------ rules


def test_rules_add_list_filter_delete(fake, rules_client):
    body = add(rules_client, ("from:alice OR from:bob", "feedapp:1"), ("(from:alice) -is:retweet", "feedapp:2"))
    assert body["meta"]["summary"] == {"created": 2, "not_created": 0, "valid": 2, "invalid": 0}
    assert body["meta"]["sent"].endswith("Z") and "errors" not in body
    first, second = body["data"]
    assert first["value"] == "from:alice OR from:bob" and first["tag"] == "feedapp:1"
    assert len(first["id"]) == 19 and first["id"].isdigit() and first["id"] != second["id"]
    listed = rules_client.get_rules().json()
    assert listed["data"] == body["data"] and listed["meta"]["result_count"] == 2
    assert rule_ids(rules_client, ids=[second["id"]]) == [second["id"]]
    untagged = add(rules_client, ("from:carol", None))["data"][0]
    assert "tag" not in untagged and "tag" not in fake.rules[-1]  # X omits an absent tag
    body = rules_client.delete_rules([first["id"], untagged["id"], "1234567890123456789"]).json()
    assert body["meta"]["summary"] == {"deleted": 2, "not_deleted": 1} and "data" not in body
    assert body["errors"][0]["errors"][0]["message"] == "Rule does not exist"
    assert rule_ids(rules_client) == [second["id"]]
    resp = http_delete_values(rules_client, fake, ["(from:alice) -is:retweet"])
    assert resp["meta"]["summary"] == {"deleted": 1, "not_deleted": 0}
    empty = rules_client.get_rules().json()
    assert "data" not in empty and empty["meta"]["result_count"] == 0


def http_delete_values(client, fake, values):
    return client.session.post(f"{fake.url}{RULES_PATH}", json={"delete": {"values": values}}, headers=BEARER).json()


def test_dry_run_changes_nothing(fake, rules_client):
    kept = add(rules_client, ("from:alice", "feedapp"))["data"][0]
    body = add(rules_client, ("from:bob", "feedapp"), dry_run=True)
    assert body["meta"]["summary"]["created"] == 1 and body["data"][0]["value"] == "from:bob"
    body = rules_client.delete_rules(kept["id"], dry_run=True).json()
    assert body["meta"]["summary"] == {"deleted": 1, "not_deleted": 0}
    assert [r["value"] for r in fake.rules] == ["from:alice"]


def test_duplicate_rule_is_skipped_and_others_created(fake, rules_client):
    kept = add(rules_client, ("from:alice", "feedapp"))["data"][0]
    body = add(rules_client, ("from:alice", "feedapp:again"), ("from:bob", "feedapp"))
    assert body["meta"]["summary"] == {"created": 1, "not_created": 1, "valid": 1, "invalid": 1}
    assert body["errors"] == [{"value": "from:alice", "id": kept["id"], "title": "DuplicateRule",
                               "type": "https://api.twitter.com/2/problems/duplicate-rules"}]
    assert [r["value"] for r in fake.rules] == ["from:alice", "from:bob"]


@pytest.mark.parametrize("value,detail", [
    ("coffee", "keyword 'coffee' is not supported"),
    ("from:alice or from:bob", "keyword 'or' is not supported"),  # OR must be upper case
    ("foo:bar", "Reference to invalid operator 'foo'"),
    ("from:alice OR", "no viable alternative at input '<EOF>'"),
    ("(from:alice OR from:bob", "missing ')'"),
    ("from:alice)", "extraneous input ')'"),
    ("-is:retweet", "Rules must contain a non-negation term"),
    ("from:sixteen_chars_xx", "Invalid value for operator 'from:sixteen_chars_xx'"),
    ("from:" + "a" * 15 + (" OR from:" + "a" * 15) * 25, "Rule must not be longer than 512 characters"),
])
def test_invalid_rule_refuses_the_whole_request(fake, rules_client, value, detail):
    body = add(rules_client, ("from:bob", "feedapp"), (value, "feedapp"))
    assert body["meta"]["summary"] == {"created": 0, "not_created": 2, "valid": 1, "invalid": 1}
    (err,) = body["errors"]
    assert err["title"] == "UnprocessableEntity" and err["value"] == value
    assert err["type"] == "https://api.twitter.com/2/problems/invalid-rules"
    assert detail in err["details"][0]
    assert "data" not in body and fake.rules == []


def test_rule_and_tag_length_limits(fake, rules_client):
    fake.rule_max_length = 20
    body = add(rules_client, ("from:alice OR from:bob", "feedapp"))
    assert body["errors"][0]["details"] == ["Rule must not be longer than 20 characters"]
    body = add(rules_client, ("from:alice", "t" * 129))
    assert body["errors"][0]["details"] == ["Tag must not be longer than 128 characters"]
    assert add(rules_client, ("from:alice", "t" * 128))["meta"]["summary"]["created"] == 1


def test_rule_cap_of_1000(fake, rules_client):
    body = add(rules_client, *[(f"from:user{i}", "feedapp") for i in range(1000)])
    assert body["meta"]["summary"]["created"] == 1000
    body = add(rules_client, ("from:one_more", "feedapp"))
    assert body["meta"]["summary"] == {"created": 0, "not_created": 1, "valid": 1, "invalid": 0}
    assert body["errors"][0]["title"] == "RulesCapExceeded"
    assert body["errors"][0]["type"] == "https://api.twitter.com/2/problems/rule-cap"
    assert len(fake.rules) == 1000


@pytest.mark.parametrize("raw", [b"{not json", b'{"add": [{"value": "from:a"}], "delete": {"ids": ["1"]}}', b"{}",
                                 b'{"add": []}', b'{"delete": {"ids": [1]}}', b'{"add": [{"tag": "x"}]}'])
def test_malformed_rule_requests_are_400(fake, http, raw):
    resp = http.post(fake.url + RULES_PATH, data=raw, headers={**BEARER, "Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["type"] == "https://api.twitter.com/2/problems/invalid-request"
    assert fake.rules == []


def test_rules_and_stream_refuse_user_context(fake):
    client = tweepy.Client(consumer_key="ck", consumer_secret="cs", access_token="at", access_token_secret="ats",
                           return_type=requests.Response)
    client.session = RewritingSession(fake.url, 5)
    for method, path in [("GET", RULES_PATH), ("POST", RULES_PATH), ("GET", STREAM_PATH)]:
        with pytest.raises(tweepy.Forbidden) as info:
            client.request(method, path, json={"add": [{"value": "from:alice"}]} if method == "POST" else None,
                           user_auth=True)
        body = info.value.response.json()
        assert body["title"] == "Unsupported Authentication" and body["status"] == 403
        assert body["type"] == "https://api.twitter.com/2/problems/unsupported-authentication"
        assert fake.requests[-1].auth == "oauth1"
    assert fake.rules == [] and fake.stream_connects == 0


def test_rules_endpoints_count_separately(fake, http, rules_client):
    limits = [int(rules_client.get_rules().headers["x-rate-limit-remaining"]),
              int(http.post(fake.url + RULES_PATH, json={"add": [{"value": "from:alice"}]},
                            headers=BEARER).headers["x-rate-limit-remaining"]),
              int(rules_client.get_rules().headers["x-rate-limit-remaining"])]
    assert limits == [899, 899, 898]
    fake.rate_limits[RULES_PATH] = 2
    with pytest.raises(tweepy.TooManyRequests):
        rules_client.get_rules()
    resp = connect(http, fake)
    assert resp.status_code == 200 and resp.headers["x-rate-limit-remaining"] == "899"
    resp.close()


# ------------------------------------------------------------------ the stream


def test_streamed_post_is_what_the_timeline_returns(fake, rules_client, stream):
    rule = add(rules_client, ("from:alice OR from:bob", "feedapp:a"))["data"][0]
    other = add(rules_client, ("from:alice -is:retweet", "feedapp:b"))["data"][0]
    quoted = fake.post("bob", "quoted post")  # matches a rule, but no stream is open: never streamed
    rec = stream()
    fake.wait_for_stream()
    assert fake.stream_connects == 1 and fake.stream_connected
    tid = fake.post("alice", "look at https://example.com/a &", media=[{"type": "photo"}], quote_of=quoted)
    got = rec.responses.get(timeout=5)
    assert fake.streamed == [tid]
    sent = {r.id: r.tag for r in got.matching_rules}
    assert sent == {rule["id"]: "feedapp:a", other["id"]: "feedapp:b"}  # delivered once, both rules listed
    timeline = tweepy.Client("test-bearer", return_type=requests.Response)
    timeline.session = RewritingSession(fake.url, 5)
    page = timeline.get_users_tweets(fake.user("alice")["id"], **FIELDS).json()
    assert got.data.data == page["data"][0]
    assert {k: [o.data for o in v] for k, v in got.includes.items()} == page["includes"]
    assert got.includes["tweets"][0].id == int(quoted) and got.includes["users"][0].username == "alice"
    assert fake.delivered_posts == [tid, quoted, tid, quoted]  # billed twice: stream + timeline


def test_chunked_framing_and_keepalives(fake, rules_client):
    add(rules_client, ("from:alice", "feedapp"))
    sock = socket.create_connection(("127.0.0.1", int(fake.url.rsplit(":", 1)[1])), timeout=5)
    sock.sendall(f"GET {STREAM_PATH}?tweet.fields=author_id HTTP/1.1\r\nHost: x\r\n"
                 "Authorization: Bearer test-bearer\r\n\r\n".encode())
    reader = sock.makefile("rb")
    head = []
    while (line := reader.readline()) != b"\r\n":
        head.append(line.decode().strip())
    assert head[0] == "HTTP/1.1 200 OK"
    assert "Transfer-Encoding: chunked" in head and "Content-Type: application/json" in head

    def next_chunk():
        size = int(reader.readline(), 16)
        data = reader.read(size + 2)
        assert data.endswith(b"\r\n")
        return data[:-2]

    assert next_chunk() == b"\r\n"  # a keep-alive is its own chunk
    tid = fake.post("alice", "hello")
    while (data := next_chunk()) == b"\r\n":
        pass
    assert data.endswith(b"}\r\n") and data.count(b"\r\n") == 1  # one message per chunk, \r\n-terminated
    assert json.loads(data)["data"] == {"id": tid, "text": "hello", "edit_history_tweet_ids": [tid],
                                        "author_id": fake.user("alice")["id"]}
    fake.disconnect_stream(message=False)
    while (data := next_chunk()) == b"\r\n":
        pass
    assert data == b""  # the last chunk: X ended the body
    sock.close()


def test_keepalives_reach_tweepy(fake, stream):
    rec = stream()
    assert rec.keepalives.get(timeout=5) and rec.keepalives.get(timeout=5)


def test_only_matching_public_posts_arrive(fake, rules_client, stream):
    add(rules_client, ("(from:alice OR from:hidden) -is:retweet", "feedapp"))
    rec = stream()
    fake.wait_for_stream()
    original = fake.post("bob", "not followed")
    fake.post("alice", retweet_of=original)  # a repost: excluded by -is:retweet
    fake.post("hidden", "protected: never on the stream")
    fake.post("ALICE", "")  # usernames compare case-insensitively
    last = fake.post("alice", "wanted")
    fake.wait_for(lambda f: last in f.streamed)
    texts = [rec.responses.get(timeout=5).data.text for _ in range(2)]
    assert texts == ["", "wanted"] and len(fake.streamed) == 2


def test_posts_while_disconnected_are_lost(fake, rules_client, stream, http):
    add(rules_client, ("from:alice", "feedapp"))
    missed = fake.post("alice", "nobody listening")
    resp = connect(http, fake)
    fake.wait_for_stream()
    resp.close()  # the client hangs up; the fake sees the close and frees the slot
    fake.wait_for(lambda f: not f.stream_connected)
    gap = fake.post("alice", "published in the gap")
    rec = stream()
    fake.wait_for(lambda f: f.stream_connects == 2 and f.stream_connected)
    seen = fake.post("alice", "after reconnect")
    assert rec.responses.get(timeout=5).data.id == int(seen)
    assert fake.streamed == [seen] and missed not in fake.delivered_posts and gap not in fake.delivered_posts


def test_second_connection_is_429(fake, http, stream):
    stream()
    fake.wait_for_stream()
    resp = connect(http, fake)
    assert resp.status_code == 429
    assert resp.json() == {"title": "ConnectionException", "connection_issue": "TooManyConnections",
                           "detail": "This stream is currently at the maximum allowed connection limit.",
                           "type": "https://api.twitter.com/2/problems/streaming-connection"}
    assert fake.stream_connects == 1


def test_operational_disconnect(fake, stream):
    rec = stream()
    fake.wait_for_stream()
    fake.disconnect_stream()
    assert rec.errors.get(timeout=5) == [{
        "title": "operational-disconnect", "disconnect_type": "OperationalDisconnect",
        "detail": "This stream has been disconnected for operational reasons.",
        "type": "https://api.twitter.com/2/problems/operational-disconnect"}]
    assert rec.closed.wait(5)
    fake.wait_for(lambda f: not f.stream_connected)


def test_stall_sends_nothing_until_the_client_hangs_up(fake, rules_client, http):
    add(rules_client, ("from:alice", "feedapp"))
    resp = http.get(fake.url + STREAM_PATH, headers=BEARER, stream=True, timeout=(5, 0.3))
    lines = resp.iter_lines()
    assert next(lines) == b""  # a keep-alive: the stream is live
    fake.stall_stream()
    fake.post("alice", "lost in the stall")
    assert fake.stream_connected
    # A read timeout, not the end of the body: the fake kept the connection open but sent nothing,
    # not even a keep-alive, for 6 of their periods.
    with pytest.raises(requests.exceptions.ConnectionError, match="timed out"):
        for _ in lines:
            pass
    resp.close()
    fake.wait_for(lambda f: not f.stream_connected)  # the client hung up: X sees the close
    assert fake.streamed == []
    again = connect(http, fake)
    assert again.status_code == 200
    again.close()


@pytest.mark.parametrize("kind,status", [("403", 403), ("429", 429), ("503", 503), ("500", 500), ("401", 401)])
def test_stream_faults(fake, http, kind, status):
    fake.fail(STREAM_PATH, kind)
    resp = connect(http, fake)
    assert resp.status_code == status and fake.stream_connects == 0 and not fake.stream_connected
    if kind == "403":
        assert resp.json() == {
            "client_id": fake.client_id,
            "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens "
                      "from a Twitter developer App that is attached to a Project. You can create a project via "
                      "the developer portal.",
            "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
            "title": "Client Forbidden", "required_enrollment": "Appropriate Level of API Access",
            "reason": "client-not-enrolled", "type": "https://api.twitter.com/2/problems/client-forbidden"}
    if kind == "429":
        assert resp.headers["x-rate-limit-remaining"] == "0" and resp.json()["title"] == "Too Many Requests"
    resp.close()
    resp = connect(http, fake)
    assert resp.status_code == 200  # one-shot
    resp.close()


def test_stream_connection_fault_and_tweepy_sees_status(fake, stream):
    fake.fail(STREAM_PATH, "429", connection=True)
    rec = stream()
    rec.thread.join(5)
    assert rec.statuses == [429] and fake.stream_connects == 0


def test_held_connect(fake, http):
    go = threading.Event()
    fake.fail(STREAM_PATH, "hold", event=go)
    box = []
    t = threading.Thread(target=lambda: box.append(connect(http, fake)))
    t.start()
    fake.wait_for(lambda f: any(r.path == STREAM_PATH for r in f.requests))
    assert not fake.stream_connected
    go.set()
    fake.wait_for_stream()
    t.join(5)
    assert box[0].status_code == 200
    box[0].close()


def test_stream_params_validated(fake, http):
    resp = connect(http, fake, query="from:alice", **{"tweet.fields": "nope"})
    body = resp.json()
    assert resp.status_code == 400 and body["title"] == "Invalid Request"
    assert {e["message"] for e in body["errors"]} == {
        "The query parameter [query] is not one of [backfill_minutes,end_time,expansions,media.fields,place.fields,"
        "poll.fields,start_time,tweet.fields,user.fields]",
        "The `tweet.fields` query parameter value [nope] is not one of [" + ",".join(TWEET_FIELDS) + "]"}
    assert connect(http, fake, backfill_minutes="9").status_code == 400
    assert fake.stream_connects == 0


def test_stop_ends_an_open_stream(http):
    fake = FakeX().start()
    resp = connect(http, fake)
    fake.wait_for_stream()
    stopper = threading.Thread(target=fake.stop)
    stopper.start()
    stopper.join(5)
    assert not stopper.is_alive()
    assert list(resp.iter_lines()) == []  # the body ended (a hung stream would raise a read timeout)
    resp.close()
