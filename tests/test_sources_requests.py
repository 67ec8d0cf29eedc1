"""Sources and offices through the CLI and the poller: the new flags, the filters, pause, and the console's
requests served by the poller (in a cycle and under `poll --loop`), with X's reasons in words."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading

import pytest
from sqlalchemy import func, select

from feedapp import ROOT
from feedapp.db import sessions as app_sessions
from feedapp.ingest.sources import SourceFlags
from feedapp.manage import sources as manage
from feedapp.models import AuditEvent, Office, Post, Source, SourceRequest, User
from feedapp.roles import Actor
from tests.conftest import x_config
from tests.helpers import follow, poll, post_many, source, stored_ids, timeline_requests
from tests.test_admin import csrf, make_user, signed_in


def requests_of(sessions) -> list[tuple[str, str, str, str | None]]:
    with sessions() as s:
        return [(r.kind, r.username, r.state, r.outcome)
                for r in s.scalars(select(SourceRequest).order_by(SourceRequest.id))]


def queue_add(sessions, username, names, office=None, **flags) -> None:
    """What the console's add form does, as the signed-in user `username`."""
    with sessions() as s:
        user = s.scalar(select(User).where(User.username == username))
        manage.queue_add(Actor.of(user), s, names, office, SourceFlags(**flags))
        s.commit()


# --- CLI -------------------------------------------------------------------------------------------------------------

def test_sources_add_with_every_flag_then_update_and_list(fake_x, runner, sessions):
    fake_x.add_user("lyon_hub", name="Lyon Hub")
    assert runner.invoke(args=["offices", "add", "lyon", "Lyon"]).exit_code == 0
    out = follow(runner, "x.com/lyon_hub", "--office", "lyon", "--staff-only", "--review", "--no-replies",
                 "--no-reposts").output
    assert "added @lyon_hub: office lyon (staff-only) [review, no-replies, no-reposts]" in out
    src = source(sessions, "lyon_hub")
    assert (src.staff_only, src.review, src.no_replies, src.no_reposts, src.paused) == (True, True, True, True, False)
    listing = runner.invoke(args=["sources", "list"]).output
    assert "@lyon_hub\tlyon\tstaff-only,review,no-replies,no-reposts\tnever polled\tnext " in listing

    out = follow(runner, "@lyon_hub", "--review").output  # adding again: these settings, nothing else
    assert "updated @lyon_hub: company-wide [review]" in out
    src = source(sessions, "lyon_hub")
    assert (src.office_id, src.staff_only, src.review, src.no_replies, src.no_reposts) == (None, False, True, False,
                                                                                           False)
    with sessions() as s:
        assert [a for a, in s.execute(select(AuditEvent.action).where(AuditEvent.actor == "cli")
                                      .order_by(AuditEvent.id))][-2:] == ["add_source", "update_source"]


def test_sources_list_shows_a_paused_source_and_remove_counts_the_posts(fake_x, runner, sessions):
    fake_x.add_user("crew")
    post_many(fake_x, "crew", 3)
    follow(runner, "crew")
    poll(runner)
    with sessions() as s:
        manage.set_paused(Actor.cli(), s, s.scalar(select(Source)), True)
        s.commit()
    assert "\tpaused; ok at " in runner.invoke(args=["sources", "list"]).output
    assert "\tnot polled" in runner.invoke(args=["sources", "list"]).output
    result = runner.invoke(args=["sources", "remove", "crew"])
    assert result.exit_code == 0 and "removed @crew and its 3 stored posts" in result.output


def test_offices_rename_language_and_remove_only_when_empty(fake_x, runner, sessions):
    assert runner.invoke(args=["offices", "add", "lyon", "Lyon"]).exit_code == 0
    assert runner.invoke(args=["offices", "rename", "lyon", "Lyon Saint-Priest"]).exit_code == 0
    assert runner.invoke(args=["offices", "set-language", "lyon", "fr"]).exit_code == 0
    bad = runner.invoke(args=["offices", "set-language", "lyon", "klingon"])
    assert bad.exit_code != 0 and "use one of en, fr" in bad.output
    assert "lyon\tLyon Saint-Priest\tfr\t0 sources" in runner.invoke(args=["offices", "list"]).output
    fake_x.add_user("lyon_hub")
    follow(runner, "lyon_hub", "--office", "lyon")
    make_user(sessions, "deckhand", office="lyon")
    refused = runner.invoke(args=["offices", "remove", "lyon"])
    assert refused.exit_code != 0
    assert "Lyon Saint-Priest still has 1 source and 1 staff account: move or remove them first" in refused.output
    runner.invoke(args=["sources", "remove", "lyon_hub"])
    with sessions() as s:
        s.scalar(select(User)).office_id = None
        s.commit()
    assert runner.invoke(args=["offices", "remove", "lyon"]).exit_code == 0
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Office)) == 0


# --- filters and pause -----------------------------------------------------------------------------------------------

def test_no_reposts_asks_x_to_leave_them_out(fake_x, runner, sessions):
    fake_x.add_user("crew")
    fake_x.add_user("other")
    original = fake_x.post("other", "shared news")
    own = fake_x.post("crew", "our own news")
    fake_x.post("crew", retweet_of=original)
    follow(runner, "crew", "--no-reposts")

    result = poll(runner)

    assert result.exit_code == 0, result.output
    assert [r.params.get("exclude") for r in timeline_requests(fake_x)] == ["retweets"]  # never read, never billed
    assert stored_ids(sessions) == [int(own)]
    assert "1 new, 1 requests, 1 post reads" in result.output


def test_no_replies_drops_replies_to_others_keeps_threads_and_moves_on(fake_x, runner, sessions):
    fake_x.add_user("crew")
    fake_x.add_user("other")
    question = fake_x.post("other", "when does the depot open?")
    head = fake_x.post("crew", "Safety week, a thread 1/2")
    part = fake_x.post("crew", "2/2: hard hats", reply_to=head)
    answer = fake_x.post("crew", "@other at 7", reply_to=question)  # the newest post is the one left out
    follow(runner, "crew", "--no-replies")

    poll(runner)

    assert "exclude" not in timeline_requests(fake_x)[0].params  # X's exclude=replies would drop the thread too
    assert stored_ids(sessions) == [int(part), int(head)]
    assert source(sessions, "crew").since_id == int(answer)  # past the filtered post: never fetched again
    fake_x.reset_requests()
    again = poll(runner, "--all")
    assert [r.params.get("since_id") for r in timeline_requests(fake_x)] == [answer]
    assert "0 new, 1 requests, 0 post reads" in again.output


def test_without_the_filter_replies_to_others_stay(fake_x, runner, sessions):
    fake_x.add_user("crew")
    fake_x.add_user("other")
    answer = fake_x.post("crew", "@other at 7", reply_to=fake_x.post("other", "when?"))
    follow(runner, "crew")
    poll(runner)
    assert stored_ids(sessions) == [int(answer)]


def test_a_paused_source_is_not_polled(fake_x, runner, sessions):
    fake_x.add_user("crew")
    post_many(fake_x, "crew", 2)
    follow(runner, "crew")
    with sessions() as s:
        manage.set_paused(Actor.cli(), s, s.scalar(select(Source)), True)
        s.commit()
    fake_x.reset_requests()
    result = poll(runner, "--all")
    assert timeline_requests(fake_x) == [] and stored_ids(sessions) == []
    assert "total: 0 sources" in result.output


# --- the console's requests, served by the poller --------------------------------------------------------------------

def test_an_add_request_resolves_to_the_name_and_its_posts_arrive(app, fake_x, runner, sessions):
    fake_x.add_user("lyon_hub", name="Lyon Hub")
    post_many(fake_x, "lyon_hub", 4)
    runner.invoke(args=["offices", "add", "lyon", "Lyon"])
    make_user(sessions, "lyonnais", role="editor", office="lyon")
    queue_add(sessions, "lyonnais", ["lyon_hub"], "lyon", review=True, no_reposts=True)
    assert requests_of(sessions) == [("add", "lyon_hub", "pending", None)]

    result = poll(runner)

    assert result.exit_code == 0, result.output
    assert "request #1 (add @lyon_hub): done; @lyon_hub: 4 new" in result.output
    assert requests_of(sessions) == [("add", "lyon_hub", "done", "Lyon Hub")]
    src = source(sessions, "lyon_hub")
    assert (src.review, src.no_reposts, src.no_replies) == (True, True, False)
    assert len(stored_ids(sessions)) == 4
    assert all(r.params.get("exclude") == "retweets" for r in timeline_requests(fake_x))
    with sessions() as s:
        assert s.scalar(select(SourceRequest.source_id)) == src.id
        assert ("lyonnais", "add_source") in s.execute(select(AuditEvent.actor, AuditEvent.action)).all()
    client = signed_in(app.test_client(), "lyonnais")
    page = client.get("/admin/sources").get_data(as_text=True)
    assert "<strong>Lyon Hub</strong>" in page and 'class="avatar' in page


@pytest.mark.parametrize("setup, reason", [
    (lambda fake: None, "not found on X"),
    (lambda fake: fake.add_user("gone", suspended=True), "suspended on X"),
])
def test_an_add_request_fails_with_x_reason(fake_x, runner, sessions, setup, reason):
    setup(fake_x)
    make_user(sessions, "boss", admin=True)
    queue_add(sessions, "boss", ["gone"])
    poll(runner)
    [(kind, name, state, outcome)] = requests_of(sessions)
    assert (kind, name, state) == ("add", "gone", "failed") and outcome.startswith(reason), outcome
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Source)) == 0


def test_protected_without_a_reader_account_is_said(make_app, fake_x):
    config = {k: None for k in x_config(fake_x) if "CONSUMER" in k or "ACCESS" in k}
    app = make_app(**config)
    sessions = app_sessions(app)
    fake_x.add_user("locked", protected=True)
    make_user(sessions, "boss", admin=True)
    queue_add(sessions, "boss", ["locked"])
    app.test_cli_runner().invoke(args=["poll"])
    [(_, _, state, outcome)] = requests_of(sessions)
    assert state == "failed" and outcome.startswith("protected on X and no reader account"), outcome


def test_refused_credentials_are_said(make_app, fake_x):
    app = make_app(FEEDAPP_X_BEARER_TOKEN="not-the-token", FEEDAPP_X_CONSUMER_KEY=None)
    sessions = app_sessions(app)
    fake_x.add_user("crew")
    make_user(sessions, "boss", admin=True)
    queue_add(sessions, "boss", ["crew"])
    app.test_cli_runner().invoke(args=["poll"])
    [(_, _, state, outcome)] = requests_of(sessions)
    assert state == "failed" and outcome.startswith("credentials refused: X rejected"), outcome


def test_scope_is_checked_again_when_the_poller_serves_the_request(fake_x, runner, sessions):
    """A company-wide source cannot be taken into an office by re-adding it there; a switched-off user's requests fail."""
    fake_x.add_user("hq_news")
    follow(runner, "hq_news")
    runner.invoke(args=["offices", "add", "lyon", "Lyon"])
    make_user(sessions, "lyonnais", role="editor", office="lyon")
    make_user(sessions, "leaver", role="editor")
    queue_add(sessions, "lyonnais", ["hq_news"], "lyon")
    queue_add(sessions, "leaver", ["hq_news"], "lyon")
    with sessions() as s:
        s.scalar(select(User).where(User.username == "leaver")).active = False
        s.commit()
    poll(runner)
    assert [r[2:] for r in requests_of(sessions)] == [
        ("failed", "followed already, outside your office"),
        ("failed", "the account that asked is switched off or gone")]
    assert source(sessions, "hq_news").office_id is None


def test_a_check_request_polls_the_source_now(app, fake_x, runner, sessions):
    fake_x.add_user("crew")
    follow(runner, "crew")
    poll(runner)  # polled: not due for FEEDAPP_POLL_INTERVAL
    new = post_many(fake_x, "crew", 2)
    make_user(sessions, "boss", admin=True)
    client = signed_in(app.test_client(), "boss")
    src = source(sessions, "crew")
    token = csrf(client.get(f"/admin/sources/{src.id}").get_data(as_text=True))
    assert client.post(f"/admin/sources/{src.id}/check", data={"csrf_token": token}).status_code == 303
    assert requests_of(sessions) == [("check", "crew", "pending", None)]

    poll(runner)  # not due: only the request reads it

    assert requests_of(sessions) == [("check", "crew", "done", "2 new posts")]
    assert stored_ids(sessions) == new


def test_a_check_of_a_failing_source_says_why(fake_x, runner, sessions):
    fake_x.add_user("crew")
    follow(runner, "crew")
    make_user(sessions, "boss", admin=True)
    with sessions() as s:
        manage.queue_check(Actor.of(s.scalar(select(User))), s, s.scalar(select(Source)))
        s.commit()
    fake_x.fail("/2/users/*/tweets", "503")
    poll(runner)
    [(_, _, state, outcome)] = requests_of(sessions)
    assert state == "failed" and "X server error (503)" in outcome


def test_poll_loop_serves_a_request_within_seconds_between_cycles(tmp_path, db_url, fake_x, sessions):
    """`poll --loop` with an hour between cycles still serves the console's request at its next wake (2 s)."""
    fake_x.add_user("crew", name="The Crew")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDAPP_")}
    env.update({k: str(v) for k, v in x_config(fake_x).items()},
               FEEDAPP_INSTANCE_PATH=str(tmp_path / "inst"), FEEDAPP_DATABASE_URL=db_url,
               FEEDAPP_POLL_INTERVAL="3600", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "feedapp", "poll", "--loop"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)
    reader.start()

    def wait_for(text: str) -> None:
        seen = []
        while True:
            line = lines.get(timeout=60)  # a bound, not a pause: returns as soon as the line is printed
            seen.append(line)
            if text in line:
                return

    try:
        wait_for("total: 0 sources")  # the first cycle is over: the loop waits an hour for the next one
        make_user(sessions, "boss", admin=True)
        queue_add(sessions, "boss", ["crew"])
        wait_for("request #1 (add @crew): done")
        assert requests_of(sessions) == [("add", "crew", "done", "The Crew")]
        with sessions() as s:
            assert s.scalar(select(Source.username)) == "crew"
    finally:
        proc.send_signal(signal.SIGTERM)  # as systemd stops it: the lease is released on the way out
        proc.wait(timeout=60)
        reader.join(timeout=60)  # the pipe is at its end once the process is gone
        proc.stdout.close()
    assert proc.returncode == 0


def test_lookup_problems_in_words():
    from datetime import datetime, timezone

    from feedapp.ingest.sources import lookup_problem
    from feedapp.xapi import AuthError, RateLimited, TransientError

    assert lookup_problem(AuthError("X rejected FEEDAPP_X_BEARER_TOKEN (401 Unauthorized): no")).startswith(
        "credentials refused: X rejected")
    assert lookup_problem(AuthError("no X credentials: set FEEDAPP_X_BEARER_TOKEN")) == (
        "no X credentials: set FEEDAPP_X_BEARER_TOKEN")
    assert lookup_problem(RateLimited(datetime(2026, 1, 1, 14, 5, tzinfo=timezone.utc), "bearer token, look-ups")
                          ).startswith("X rate limit: ")
    assert lookup_problem(TransientError("X server error (503)")) == "not looked up: X server error (503)"


def test_the_poll_total_uses_the_configured_prices(make_app, fake_x):
    app = make_app(FEEDAPP_X_PRICE_POST_READ=1.0)
    runner = app.test_cli_runner()
    fake_x.add_user("crew")
    post_many(fake_x, "crew", 3)
    follow(runner, "crew")
    assert "3 post reads, 0 user reads (about $3.000)" in poll(runner).output


def test_answered_requests_go_after_30_days(fake_x, runner, sessions):
    from datetime import timedelta

    from feedapp.models import utcnow

    with sessions() as s:
        s.add_all([SourceRequest(kind="add", username="old", requested_by="boss", state="done",
                                 done_at=utcnow() - timedelta(days=31)),
                   SourceRequest(kind="add", username="recent", requested_by="boss", state="failed",
                                 done_at=utcnow() - timedelta(days=29))])
        s.commit()
    poll(runner)
    assert [r[1] for r in requests_of(sessions)] == ["recent"]


def test_a_request_another_poller_took_is_not_run_twice(fake_x, runner, sessions):
    """Two pollers (a lease that lapsed mid-cycle) never both run a request; a claim of a poller that died is taken."""
    from datetime import timedelta

    from feedapp.ingest.requests import CLAIM_STALE
    from feedapp.models import utcnow

    fake_x.add_user("crew", name="Crew")
    make_user(sessions, "boss", admin=True)
    queue_add(sessions, "boss", ["crew"])
    with sessions() as s:  # what the other poller's claim leaves, committed before its call to X
        s.scalar(select(SourceRequest)).done_at = utcnow()
        s.commit()
    fake_x.requests.clear()

    poll(runner)

    assert requests_of(sessions) == [("add", "crew", "pending", None)]
    assert not [r for r in fake_x.requests if "/users/by" in r.path]
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Source)) == 0
        s.scalar(select(SourceRequest)).done_at = utcnow() - CLAIM_STALE - timedelta(minutes=1)
        s.commit()

    poll(runner)

    assert requests_of(sessions) == [("add", "crew", "done", "Crew")]


def test_a_request_that_met_a_database_error_is_retried_next_cycle(fake_x, runner, sessions, monkeypatch):
    from sqlalchemy.exc import OperationalError

    fake_x.add_user("crew", name="Crew")
    make_user(sessions, "boss", admin=True)
    queue_add(sessions, "boss", ["crew"])

    def broken(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    with monkeypatch.context() as patch:
        patch.setattr(manage, "requester", broken)
        assert "database error (OperationalError); retried next time" in poll(runner).output
    assert requests_of(sessions) == [("add", "crew", "pending", None)]

    poll(runner)

    assert requests_of(sessions) == [("add", "crew", "done", "Crew")]  # the claim was given back
