"""The filtered stream worker against the fake X API, on both database engines.

Rules in step with the sources; a published post stored within seconds through store_posts;
a disconnect in the middle of a burst filled by one timeline poll, losing and duplicating
nothing; each post read (billed) once; X's back-off; a refused stream leaving polling on.
Waiting is on conditions (the database, the fake's records), with a bound only as a guard.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select, update

from feedapp.ingest.poll import PollSettings, poll_cycle
from feedapp.ingest.stream import StreamSettings, StreamWorker
from feedapp.ingest.stream_status import stream_view
from feedapp.models import ApiRead, Media, Post, Source, StreamStatus
from feedapp.xapi import XClient, XSettings
from tests.conftest import x_config
from tests.test_admin import make_user, signed_in
from tests.helpers import follow, poll, post_many, source, stored_ids, timeline_requests

ROOT = Path(__file__).resolve().parent.parent
GUARD = 60.0  # seconds: a bound against hanging, never a speed test


def eventually(check, what: str, timeout: float = GUARD):
    """Return check()'s first truthy value, checking every 20 ms; fail after `timeout` seconds."""
    done = threading.Event()
    deadline = threading.Timer(timeout, done.set)
    deadline.start()
    try:
        while not done.is_set():
            value = check()
            if value:
                return value
            done.wait(0.02)
    finally:
        deadline.cancel()
    pytest.fail(f"not within {timeout:g} s: {what}")


@pytest.fixture
def workers(app, sessions):
    """Make stream workers on this test's app; each is stopped at the end. Back-off waits are recorded by the
    worker and not slept (the test drives the clock), except the hour after a refusal, which lasts until stop()."""
    made = []

    def make(lost=None, **settings):
        def wait(event, seconds):
            return event.wait(None if seconds >= StreamSettings.refused_retry else 0)

        worker = StreamWorker(sessions, XSettings.from_config(app.config), PollSettings.from_config(app.config),
                              StreamSettings(**{"tick": 0.05, "stall": 30.0, **settings}), wait=wait, lost=lost)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.stop()


def ours(fake) -> set[str]:
    """Usernames our (feedapp-tagged) rules on the fake follow, lower-cased."""
    import re

    return {n.lower() for r in fake.rules if (r.get("tag") or "").startswith("feedapp")
            for n in re.findall(r"from:(\w+)", r["value"])}


def live(worker, sessions, username):
    return worker.covers(source(sessions, username).id)


@pytest.fixture
def crew(fake_x, runner, sessions):
    """A followed public account with 10 posts, polled once."""
    fake_x.add_user("crew", name="The Crew")
    post_many(fake_x, "crew", 10)
    follow(runner, "crew")
    assert poll(runner).exit_code == 0
    return "crew"


def test_rules_follow_public_unpaused_sources_and_leave_others_rules_alone(fake_x, runner, sessions, workers):
    for name in ("depot_one", "depot_two", "Depot_Three"):
        fake_x.add_user(name)
    fake_x.add_user("night_desk", protected=True)
    answer = requests.post(f"{fake_x.url}/2/tweets/search/stream/rules", timeout=30,
                           headers={"Authorization": f"Bearer {fake_x.bearer_token}"},
                           json={"add": [{"value": "from:marketing_team", "tag": "marketing"}]})
    assert answer.status_code == 200, answer.text
    for name in ("depot_one", "depot_two", "Depot_Three", "night_desk"):
        follow(runner, name)
    worker = workers()
    worker.start()
    eventually(lambda: ours(fake_x) == {"depot_one", "depot_two", "depot_three"}, "rules for the three public sources")

    with sessions() as s:  # paused and turned-protected sources leave the rules; the rest stay
        s.execute(update(Source).where(Source.username == "depot_one").values(paused=True))
        s.execute(update(Source).where(Source.username == "depot_two").values(protected=True))
        s.commit()
    eventually(lambda: ours(fake_x) == {"depot_three"}, "rules without the paused and the protected source")
    assert runner.invoke(args=["sources", "remove", "Depot_Three"]).exit_code == 0
    eventually(lambda: ours(fake_x) == set(), "no rule of ours once every source is gone")
    assert [(r["value"], r["tag"]) for r in fake_x.rules] == [("from:marketing_team", "marketing")]


def test_a_published_post_is_stored_like_a_polled_one_and_read_once(crew, fake_x, sessions, workers, app):
    worker = workers()
    worker.start()
    eventually(lambda: live(worker, sessions, "crew"), "the stream covering @crew after its gap fill")
    before = stored_ids(sessions)
    fake_x.reset_requests()
    new = int(fake_x.post("crew", "Shift swap board is live: https://example.com/swap @depot_seven",
                          media=[{"type": "photo"}]))
    eventually(lambda: new in stored_ids(sessions), "the streamed post stored")
    assert stored_ids(sessions) == [new] + before
    assert timeline_requests(fake_x) == []  # it came by the stream alone

    # What the timeline says of the same post normalizes to what the stream stored.
    client = XClient(XSettings.from_config(app.config))
    src = source(sessions, "crew")
    polled = [p for p in client.timeline_page(src.x_id, since_id=before[0]).page.posts if int(p.id) == new][0]
    client.close()
    with sessions() as s:
        row = s.get(Post, new)
        assert (row.text, row.links, row.author_username) == (polled.text, [asdict(link) for link in polled.links], "crew")
        assert s.scalar(select(func.count()).select_from(Media).where(Media.post_id == new)) == len(polled.media) == 1
        assert s.scalar(select(Source.since_id).where(Source.username == "crew")) == new  # polls start after it
        billed = s.scalars(select(ApiRead.object_id).where(ApiRead.kind == "post")).all()
    assert Counter(billed)[str(new)] == 1

    # The poll cycle leaves a covered source to the stream.
    fake_x.reset_requests()
    summary = poll_cycle(sessions, XClient(XSettings.from_config(app.config)), PollSettings.from_config(app.config),
                         everything=True, coverage=worker.coverage)
    assert timeline_requests(fake_x) == [] and summary.results == []
    assert any("filtered stream" in note for note in summary.notes)


def test_a_disconnect_mid_burst_loses_nothing_and_reads_nothing_twice(crew, fake_x, sessions, workers):
    worker = workers()
    worker.start()
    eventually(lambda: live(worker, sessions, "crew"), "the stream covering @crew")
    backfilled = set(stored_ids(sessions))
    first = post_many(fake_x, "crew", 5)
    eventually(lambda: set(first) <= set(stored_ids(sessions)), "the first part of the burst, streamed")

    release = threading.Event()
    fake_x.fail("/2/tweets/search/stream", "hold", event=release)  # the reconnection waits until we say
    fake_x.disconnect_stream()
    eventually(lambda: not worker.covers(source(sessions, "crew").id), "coverage ended with the connection")
    missed = post_many(fake_x, "crew", 5)  # published while disconnected: only the timeline has them
    release.set()
    eventually(lambda: set(missed) <= set(stored_ids(sessions)), "the gap filled by one timeline poll")
    eventually(lambda: live(worker, sessions, "crew"), "covered again")
    last = post_many(fake_x, "crew", 5)
    eventually(lambda: set(last) <= set(stored_ids(sessions)), "the rest of the burst, streamed")

    burst = first + missed + last
    assert set(stored_ids(sessions)) == backfilled | set(burst)
    delivered = Counter(fake_x.delivered_posts)
    assert [delivered[str(i)] for i in burst] == [1] * 15  # X handed over each post once: billed once
    assert set(map(int, fake_x.streamed)) >= set(first + last) and not set(map(int, fake_x.streamed)) & set(missed)
    with sessions() as s:
        billed = Counter(s.scalars(select(ApiRead.object_id).where(ApiRead.kind == "post")).all())
        assert all(billed[str(i)] == 1 for i in burst)
        assert s.scalar(select(Source.since_id).where(Source.username == "crew")) == max(burst)


def test_a_restart_fills_the_gap_from_the_newest_stored_post(crew, fake_x, sessions, workers):
    worker = workers()
    worker.start()
    eventually(lambda: live(worker, sessions, "crew"), "the stream covering @crew")
    streamed = post_many(fake_x, "crew", 3)
    eventually(lambda: set(streamed) <= set(stored_ids(sessions)), "streamed posts stored")
    worker.stop()
    offline = post_many(fake_x, "crew", 4)  # published while no worker ran
    fake_x.reset_requests()
    again = workers()
    again.start()
    eventually(lambda: set(offline) <= set(stored_ids(sessions)), "the posts of the downtime")
    [fill] = timeline_requests(fake_x)
    assert fill.params["since_id"] == str(max(streamed))  # one poll, from the newest stored post
    assert Counter(fake_x.delivered_posts)[str(max(streamed))] == 1


def test_reconnects_back_off_as_x_asks(crew, fake_x, sessions, workers):
    fake_x.fail("/2/tweets/search/stream", "503", count=2)
    fake_x.fail("/2/tweets/search/stream", "429")
    worker = workers(stall=1.0)
    worker.start()
    eventually(lambda: live(worker, sessions, "crew"), "connected after two 503s and a 429")
    assert [seconds for _, seconds in worker.waits] == [5.0, 10.0, 60.0]
    fake_x.stall_stream()  # no data, no keep-alive: the worker must call the connection dead itself
    eventually(lambda: len(worker.waits) == 4, "the stalled connection given up")
    why, seconds = worker.waits[3]
    assert seconds == 0.25 and "no data for 1 s" in why
    eventually(lambda: live(worker, sessions, "crew"), "connected again after the stall")


def test_a_refused_stream_says_so_once_and_polling_goes_on(crew, fake_x, sessions, workers, runner, app):
    fake_x.fail("/2/tweets/search/stream", "403", count=100)
    worker = workers()
    worker.start()
    eventually(lambda: worker.refused, "the refusal seen")
    eventually(lambda: (row := _status(sessions)) is not None and row.state == "refused", "the status row")
    out = runner.invoke(args=["sources", "list"]).output
    assert out.count("Filtered stream: refused by X") == 1 and "client-not-enrolled" in out
    make_user(sessions, "comms", admin=True)
    page = signed_in(app.test_client(), "comms").get("/admin/sources").get_data(as_text=True)
    assert page.count("Instant updates: refused by X (") == 1 and "client-not-enrolled" in page
    new = post_many(fake_x, "crew", 2)
    summary = poll_cycle(sessions, XClient(XSettings.from_config(app.config)), PollSettings.from_config(app.config),
                         everything=True, coverage=worker.coverage)
    assert [r.new_posts for r in summary.results] == [2] and set(new) <= set(stored_ids(sessions))


def _status(sessions):
    with sessions() as s:
        return s.get(StreamStatus, "filtered")


def test_stream_setting_defaults_on_with_a_bearer_token_and_says_off_otherwise(make_app, sessions):
    assert make_app().config["FEEDAPP_STREAM"] is True
    assert make_app(FEEDAPP_X_BEARER_TOKEN=None).config["FEEDAPP_STREAM"] is False
    assert make_app(FEEDAPP_STREAM="off").config["FEEDAPP_STREAM"] is False
    with pytest.raises(RuntimeError, match="FEEDAPP_STREAM='sometimes' is not valid"):
        make_app(FEEDAPP_STREAM="sometimes")
    with sessions() as s:
        assert stream_view(s, False, True, 300).sentence.startswith("Filtered stream: off (FEEDAPP_STREAM=off)")
        assert "needs FEEDAPP_X_BEARER_TOKEN" in stream_view(s, True, False, 300).sentence
        assert "needs FEEDAPP_X_BEARER_TOKEN" in stream_view(s, False, False, 300).sentence  # the default then
        assert stream_view(s, True, True, 300).state == "not-running"


def test_poll_loop_shows_a_published_post_on_the_home_page_within_seconds(tmp_path, db_url, fake_x, sessions,
                                                                          client):
    """`poll --loop` with an hour between cycles: the stream alone brings the post to `/`."""
    fake_x.add_user("crew", name="The Crew")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDAPP_")}
    env.update({k: str(v) for k, v in x_config(fake_x).items()},
               FEEDAPP_INSTANCE_PATH=str(tmp_path / "inst"), FEEDAPP_DATABASE_URL=db_url,
               FEEDAPP_POLL_INTERVAL="3600", PYTHONUNBUFFERED="1")
    subprocess.run([sys.executable, "-m", "flask", "--app", "feedapp", "sources", "add", "crew"], env=env, cwd=ROOT,
                   check=True, capture_output=True)
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "feedapp", "poll", "--loop"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)
    reader.start()
    try:
        eventually(lambda: (row := _status(sessions)) is not None and row.state == "live"
                   and row.streamed_sources == 1, "the worker's stream live and covering @crew")
        text = "Depot 7 closes at noon on Friday for the inventory"
        fake_x.post("crew", text)
        eventually(lambda: text in client.get("/").get_data(as_text=True), "the post on /")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=GUARD)
        reader.join(timeout=GUARD)
        proc.stdout.close()
    assert proc.returncode == 0
    assert _status(sessions).state == "stopped"


def test_the_console_and_sources_list_say_how_the_stream_fares(fake_x, runner, sessions, app):
    from feedapp.ingest.stream_status import write_status

    fake_x.add_user("crew")
    follow(runner, "crew")
    make_user(sessions, "comms", admin=True)
    console = signed_in(app.test_client(), "comms")
    with sessions() as s:
        write_status(s, "live", None, streamed_sources=3, delivered=41)
        s.commit()
    page = console.get("/admin/sources").get_data(as_text=True)
    assert page.count("New posts of 3 public accounts arrive within seconds") == 1
    live_line = runner.invoke(args=["sources", "list"]).output
    assert "live since" in live_line and "41 posts delivered since" in live_line
    french = console.get("/admin/sources", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Les nouveaux messages de 3 comptes publics arrivent en quelques secondes" in french
    with sessions() as s:
        write_status(s, "reconnecting", "X answered 503 to the stream connection; next try in 5 s")
        s.commit()
    assert "Instant updates: reconnecting to X" in console.get("/admin/sources").get_data(as_text=True)
    out = runner.invoke(args=["sources", "list"]).output
    assert out.count("Filtered stream: reconnecting (X answered 503") == 1
    with sessions() as s:
        write_status(s, "stopped", None)
        s.commit()
    assert "Filtered stream: not running" in runner.invoke(args=["sources", "list"]).output


def test_a_lost_lease_hangs_up_at_once_and_leaves_the_status_to_the_new_holder(crew, fake_x, sessions, workers):
    lost = threading.Event()
    worker = workers(lost=lost)
    worker.start()
    eventually(lambda: live(worker, sessions, "crew"), "the stream covering @crew")
    eventually(lambda: (row := _status(sessions)) is not None and row.state == "live", "the status row says live")
    lost.set()  # another poller took the lease
    eventually(lambda: not fake_x.stream_connected and not worker.running, "the connection given up")
    assert not worker.covers(source(sessions, "crew").id)
    worker.stop()
    assert _status(sessions).state == "live"  # not "stopped": the stream runs on in the new holder
