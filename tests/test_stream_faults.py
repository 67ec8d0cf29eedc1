"""The filtered stream worker against faults: malformed lines, renamed and paused sources, a database
error while storing, stop() at awkward moments, rules X refuses; on both database engines.

Each test states what must hold (nothing crashes, nothing is lost or stored twice, stop() returns
without waiting for a stall); waits are on conditions, with a bound only as a guard.
"""

from __future__ import annotations

import json
import threading

from sqlalchemy import update

from feedapp.models import Source
from tests.helpers import post_many, source, stored_ids
from tests.test_stream import GUARD, crew, eventually, live, ours, workers  # noqa: F401 - fixtures

__all__ = ["crew", "workers"]


def test_malformed_lines_are_skipped_without_dropping_the_connection(crew, fake_x, sessions, workers):
    worker = workers()
    worker.start()
    eventually(lambda: live(worker, sessions, "crew"), "the stream covering @crew")
    crew_id = fake_x.user("crew")["id"]
    for line in (b"not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"null",
                 b'{"errors": [{"title": "Invalid Request", "detail": "odd"}]}', b'{"errors": "odd"}',
                 b'{"data": "x"}', b'{"data": {"id": "abc", "author_id": "1"}}',
                 json.dumps({"data": {"id": "7", "author_id": "999", "text": "someone else"},
                             "includes": {"tweets": 7, "users": "x"}, "matching_rules": 3}).encode(),
                 json.dumps({"data": {"id": "8", "author_id": crew_id, "text": "odd includes"},
                             "includes": {"tweets": {"id": "9"}}}).encode()):
        fake_x.send_stream(line)
    new = int(fake_x.post("crew", "after the garbage"))
    eventually(lambda: new in stored_ids(sessions), "the next real post stored")
    assert fake_x.stream_connects == 1 and not worker.waits  # every bad line skipped on the same connection


def test_a_post_x_sends_broken_is_read_from_the_timeline_instead(crew, fake_x, sessions, workers):
    worker = workers()
    worker.start()
    eventually(lambda: live(worker, sessions, "crew"), "the stream covering @crew")

    def garble(message):
        del message["data"]["created_at"]  # normalize_page refuses it: MalformedResponse
        return message

    fake_x.garble_streamed(garble)
    broken = int(fake_x.post("crew", "the stream sends this one broken"))
    after = int(fake_x.post("crew", "and this one whole"))
    eventually(lambda: {broken, after} <= set(stored_ids(sessions)), "both posts stored, the broken one by a poll")


def test_a_source_renamed_on_x_is_followed_under_its_new_name_and_loses_nothing(crew, fake_x, sessions, workers):
    worker = workers()
    worker.start()
    eventually(lambda: live(worker, sessions, "crew"), "the stream covering @crew")
    fake_x.rename_user("crew", "crew_ops")
    unseen = int(fake_x.post("crew_ops", "from:crew no longer matches this one"))
    with sessions() as s:  # what the profile check does when it sees the new name
        s.execute(update(Source).where(Source.username == "crew").values(username="crew_ops"))
        s.commit()
    eventually(lambda: ours(fake_x) == {"crew_ops"}, "the rule following the new name")
    eventually(lambda: live(worker, sessions, "crew_ops"), "covered again")
    streamed = int(fake_x.post("crew_ops", "streamed under the new name"))
    eventually(lambda: streamed in stored_ids(sessions), "a post under the new name streamed")
    eventually(lambda: unseen in stored_ids(sessions), "the post published before the rule followed, by a poll")


def test_a_source_paused_and_resumed_gets_its_gap_filled(crew, fake_x, sessions, workers):
    worker = workers()
    worker.start()
    eventually(lambda: live(worker, sessions, "crew"), "the stream covering @crew")
    streamed = post_many(fake_x, "crew", 2)
    eventually(lambda: set(streamed) <= set(stored_ids(sessions)), "streamed posts stored")
    with sessions() as s:
        s.execute(update(Source).where(Source.username == "crew").values(paused=True))
        s.commit()
    eventually(lambda: ours(fake_x) == set() and not live(worker, sessions, "crew"), "crew left the stream")
    while_paused = post_many(fake_x, "crew", 2)
    with sessions() as s:
        s.execute(update(Source).where(Source.username == "crew").values(paused=False))
        s.commit()
    eventually(lambda: live(worker, sessions, "crew"), "covered again")
    # As a poll after a pause would: from the newest stored post on.
    assert set(while_paused) <= set(stored_ids(sessions))


def test_a_database_error_while_storing_reconnects_and_the_gap_fill_recovers_the_post(crew, fake_x, sessions,
                                                                                       workers, monkeypatch):
    from sqlalchemy.exc import OperationalError

    import feedapp.ingest.stream as stream_module

    real, failed = stream_module.store_posts, threading.Event()

    def store_once_failing(session, src, posts):
        if not failed.is_set():
            failed.set()
            raise OperationalError("INSERT INTO posts", {}, Exception("the database went away"))
        return real(session, src, posts)

    worker = workers()
    worker.start()
    eventually(lambda: live(worker, sessions, "crew"), "the stream covering @crew")
    monkeypatch.setattr(stream_module, "store_posts", store_once_failing)
    lost = int(fake_x.post("crew", "stored only on the second try"))
    eventually(lambda: lost in stored_ids(sessions), "the post recovered by the gap fill")
    eventually(lambda: live(worker, sessions, "crew"), "covered again")
    later = int(fake_x.post("crew", "streamed as usual"))
    eventually(lambda: later in stored_ids(sessions), "the next post streamed")
    assert stored_ids(sessions).count(lost) == 1


def test_stop_returns_while_x_holds_the_connection_attempt(crew, fake_x, sessions, workers):
    release = threading.Event()
    fake_x.fail("/2/tweets/search/stream", "hold", event=release, timeout=GUARD * 2)
    worker = workers(stall=GUARD * 10)  # a stop() that waits for the stall would outlast the guard
    worker.start()
    try:
        fake_x.wait_for(lambda f: any(r.path == "/2/tweets/search/stream" for r in f.requests), GUARD)
        stopper = threading.Thread(target=worker.stop)
        stopper.start()
        stopper.join(GUARD)
        assert not stopper.is_alive(), "stop() waited for the held connection attempt"
        assert not worker.running
    finally:
        release.set()


def test_a_rule_x_refuses_leaves_its_source_to_polling(fake_x, runner, sessions, workers, app):
    from feedapp.ingest.poll import PollSettings, poll_cycle
    from feedapp.xapi import XClient, XSettings
    from tests.helpers import follow

    fake_x.add_user("depot_seventeen")
    fake_x.rule_max_length = 12  # "from:depot_seventeen" is longer: X refuses the rule
    follow(runner, "depot_seventeen")
    worker = workers()
    worker.start()
    eventually(lambda: worker._synced is not None and fake_x.stream_connected, "rules synced, stream connected")
    assert fake_x.rules == [] and not live(worker, sessions, "depot_seventeen")
    new = post_many(fake_x, "depot_seventeen", 2)
    summary = poll_cycle(sessions, XClient(XSettings.from_config(app.config)), PollSettings.from_config(app.config),
                         everything=True, coverage=worker.coverage)
    assert [r.new_posts > 0 for r in summary.results] == [True] and set(new) <= set(stored_ids(sessions))


def test_a_rules_call_refused_with_429_is_retried_once_the_window_resets(crew, fake_x, sessions, workers):
    fake_x.fail("/2/tweets/search/stream/rules", "429", reset_in=1)
    worker = workers()
    worker.start()
    eventually(lambda: live(worker, sessions, "crew"), "covered once the rules window reset")
    assert ours(fake_x) == {"crew"} and not worker.waits
