"""The poll cycle against the fake X API: catch-up, faults, rate limits, protected accounts."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from feedapp.db import sessions as app_sessions
from feedapp.ingest.poll import PollJob, PollSettings, poll_source
from feedapp.models import Post, RateWindow, utcnow
from feedapp.xapi import XClient, XSettings
from tests.helpers import follow, media_count, poll, post_many, source, stored_ids, timeline_requests


@pytest.fixture
def crew(fake_x, runner):
    """One followed public account with 10 posts, polled once."""
    fake_x.add_user("northwind_crew", name="Northwind Crew")
    post_many(fake_x, "northwind_crew", 10)
    follow(runner, "northwind_crew")
    result = poll(runner)
    assert result.exit_code == 0, result.output
    return fake_x.user("northwind_crew")


def test_first_poll_backfills_a_bounded_number(fake_x, runner, sessions):
    fake_x.add_user("northwind_crew")
    ids = post_many(fake_x, "northwind_crew", 120)
    follow(runner, "northwind_crew")

    result = poll(runner)

    assert result.exit_code == 0, result.output
    assert stored_ids(sessions) == ids[:50]
    assert source(sessions, "northwind_crew").since_id == ids[0]
    reqs = timeline_requests(fake_x)
    assert len(reqs) == 1 and reqs[0].params["max_results"] == "50" and "since_id" not in reqs[0].params
    assert "@northwind_crew: 50 new, 1 requests, 50 post reads, 0 user reads" in result.output


def test_catch_up_pages_through_next_token_then_idles_for_free(crew, fake_x, runner, sessions):
    before = stored_ids(sessions)
    new = post_many(fake_x, "northwind_crew", 230)
    fake_x.reset_requests()

    result = poll(runner, "--all")

    assert result.exit_code == 0, result.output
    assert stored_ids(sessions) == new + before
    reqs = timeline_requests(fake_x)
    assert [r.params.get("since_id") for r in reqs] == [str(before[0])] * 3
    assert [r.params["max_results"] for r in reqs] == ["100"] * 3
    assert source(sessions, "northwind_crew").since_id == new[0]
    assert "230 new, 3 requests, 230 post reads" in result.output

    fake_x.reset_requests()
    idle = poll(runner, "--all")
    assert "0 new, 1 requests, 0 post reads, 0 user reads" in idle.output
    assert "about $0.000" in idle.output
    assert len(timeline_requests(fake_x)) == 1


@pytest.mark.parametrize("kind", ["500", "503", "malformed", "truncated", "429", "401"])
def test_failure_mid_catch_up_loses_nothing_and_reads_nothing_twice(crew, fake_x, runner, sessions, kind):
    before = stored_ids(sessions)
    new = post_many(fake_x, "northwind_crew", 250)
    fake_x.reset_requests()
    fake_x.fail("/2/users/*/tweets", kind, skip=1, reset_in=600)

    first = poll(runner, "--all")

    assert first.exit_code == 0, first.output
    assert "error" in first.output
    assert stored_ids(sessions) == new[:100] + before  # the first page is kept
    src = source(sessions, "northwind_crew")
    assert src.since_id == before[0] and src.gap_until_id == new[99] and src.gap_newest_id == new[0]

    if kind == "429":
        # `--all` never calls through a known window: time passes until its reset (moved here, not slept).
        assert "rate-limited until" in poll(runner, "--all").output and stored_ids(sessions) == new[:100] + before
        with sessions() as s:
            s.execute(update(RateWindow).values(reset_at=utcnow() - timedelta(seconds=1)))
            s.commit()
    fake_x.reset_requests()
    second = poll(runner, "--all")

    assert second.exit_code == 0, second.output
    assert stored_ids(sessions) == new + before
    reqs = timeline_requests(fake_x)
    # The resumed walk starts below the oldest stored post: no post is read twice.
    assert reqs[0].params["until_id"] == str(new[99]) and reqs[0].params["since_id"] == str(before[0])
    assert "150 new" in second.output and "150 post reads" in second.output
    src = source(sessions, "northwind_crew")
    assert (src.since_id, src.gap_until_id, src.gap_newest_id, src.error_count) == (new[0], None, None, 0)


def test_first_poll_interrupted_keeps_backfill_bound(fake_x, runner, sessions, make_app):
    app = make_app(FEEDAPP_BACKFILL=30)
    runner = app.test_cli_runner()
    sessions = app_sessions(app)
    fake_x.add_user("northwind_crew")
    ids = post_many(fake_x, "northwind_crew", 100)
    follow(runner, "northwind_crew")
    fake_x.fail("/2/users/*/tweets", "500")
    poll(runner)
    assert stored_ids(sessions) == []
    poll(runner, "--all")
    assert stored_ids(sessions) == ids[:30]
    assert source(sessions, "northwind_crew").since_id == ids[0]


def test_timeout_is_a_transient_error(fake_x, make_app):
    fake_x.add_user("northwind_crew")
    post_many(fake_x, "northwind_crew", 3)
    follow(make_app().test_cli_runner(), "northwind_crew")  # the short timeout is for the poll alone
    app = make_app(FEEDAPP_X_TIMEOUT=0.3)
    runner = app.test_cli_runner()
    fake_x.fail("/2/users/*/tweets", "slow", delay=5.0)  # far longer than the timeout, however loaded the machine

    result = poll(runner)

    assert result.exit_code == 0
    assert "timed out after 0.3 s" in result.output
    assert source(app_sessions(app), "northwind_crew").error_count == 1


def test_one_bad_source_never_stops_the_others(fake_x, runner, sessions):
    for name in ("alpha_news", "bravo_news", "charlie_news"):
        fake_x.add_user(name)
        post_many(fake_x, name, 5)
        follow(runner, name)
    bad = fake_x.user("bravo_news")["id"]
    fake_x.fail(f"/2/users/{bad}/tweets", "malformed")

    result = poll(runner)

    assert result.exit_code == 0, result.output
    assert len(stored_ids(sessions, "alpha_news")) == len(stored_ids(sessions, "charlie_news")) == 5
    assert stored_ids(sessions, "bravo_news") == []
    bravo = source(sessions, "bravo_news")
    assert bravo.error_count == 1 and "not JSON" in bravo.last_error
    assert "@bravo_news: 0 new, 1 requests, 0 post reads, 0 user reads; error: X API answered with a body that is not JSON" in result.output
    assert "1 failed or skipped" in result.output
    listing = runner.invoke(args=["sources", "list"]).output
    assert "error x1: X API answered with a body that is not JSON" in listing


def test_rate_limit_schedules_after_reset_and_spares_other_sources(fake_x, make_app):
    app = make_app(FEEDAPP_POLL_CONCURRENCY=1)
    runner, sessions = app.test_cli_runner(), app_sessions(app)
    for name in ("alpha_news", "bravo_news", "charlie_news"):
        fake_x.add_user(name)
        post_many(fake_x, name, 2)
        follow(runner, name)
    fake_x.reset_requests()
    fake_x.fail("/2/users/*/tweets", "429", reset_in=600)

    before = utcnow()
    result = poll(runner)
    after = utcnow()

    assert result.exit_code == 0, result.output
    assert len(timeline_requests(fake_x)) == 1  # no retry storm: the others wait for the window
    assert result.output.count("rate-limited until") == 3
    for name in ("alpha_news", "bravo_news", "charlie_news"):
        next_check = source(sessions, name).next_check_at  # the reset, 600 s after the call (whole seconds)
        assert before + timedelta(seconds=599) <= next_check <= after + timedelta(seconds=600)
    assert stored_ids(sessions) == []


def test_last_request_of_the_window_stops_the_cycle(fake_x, make_app):
    app = make_app(FEEDAPP_POLL_CONCURRENCY=1)
    runner, sessions = app.test_cli_runner(), app_sessions(app)
    for name in ("alpha_news", "bravo_news"):
        fake_x.add_user(name)
        post_many(fake_x, name, 2)
        follow(runner, name)
    fake_x.reset_requests()
    fake_x.fail("/2/users/*/tweets", "remaining0")

    result = poll(runner)

    assert len(timeline_requests(fake_x)) == 1
    assert len(stored_ids(sessions)) == 2  # the answered call is stored
    assert "@bravo_news: 0 new, 0 requests, 0 post reads, 0 user reads; skipped: rate-limited until" in result.output


def test_backoff_grows_exponentially_with_jitter_and_is_capped(fake_x, app, runner, sessions):
    fake_x.add_user("northwind_crew")
    follow(runner, "northwind_crew")
    settings = PollSettings(interval=60, backoff_max=600)
    client = XClient(XSettings.from_config(app.config))
    src_id = source(sessions, "northwind_crew").id
    delays = []
    for _ in range(6):
        fake_x.fail("/2/users/*/tweets", "500")
        now = utcnow()
        result = poll_source(PollJob(sessions, client, settings, now), src_id)
        assert "X server error (500)" in result.error
        delays.append((source(sessions, "northwind_crew").next_check_at - now).total_seconds())
    for n, delay in enumerate(delays, start=1):
        expected = min(600, 60 * 2 ** (n - 1))
        assert 0.75 * expected <= delay <= 1.25 * expected, (n, delay)
    assert source(sessions, "northwind_crew").error_count == 6
    poll_source(PollJob(sessions, client, settings, utcnow()), src_id)
    assert source(sessions, "northwind_crew").error_count == 0


def test_protected_account_is_read_with_the_oauth1_reader(fake_x, runner, sessions):
    user = fake_x.add_user("depot7_hr", protected=True)
    ids = post_many(fake_x, "depot7_hr", 4)
    out = follow(runner, "depot7_hr").output
    assert "protected on X: staff-only" in out

    result = poll(runner)

    assert result.exit_code == 0, result.output
    assert stored_ids(sessions) == ids
    assert {r.auth for r in timeline_requests(fake_x, user["id"])} == {"oauth1"}


def test_protected_account_without_reader_credentials_is_skipped(fake_x, make_app):
    app = make_app(FEEDAPP_X_CONSUMER_KEY=None)
    runner = app.test_cli_runner()
    fake_x.add_user("depot7_hr", protected=True)
    post_many(fake_x, "depot7_hr", 2)
    follow(runner, "depot7_hr")
    fake_x.reset_requests()

    result = poll(runner)

    assert result.exit_code == 0
    assert "skipped: protected on X: skipped until the OAuth 1.0a reader account is configured" in result.output
    assert timeline_requests(fake_x) == []
    assert "protected on X" in runner.invoke(args=["sources", "list"]).output


def test_account_that_turns_protected_becomes_staff_only_and_keeps_flowing(crew, fake_x, runner, sessions):
    assert source(sessions, "northwind_crew").protected is False
    crew["protected"] = True
    newer = post_many(fake_x, "northwind_crew", 2)
    fake_x.reset_requests()

    result = poll(runner, "--all")

    assert result.exit_code == 0, result.output
    assert source(sessions, "northwind_crew").protected is True
    assert stored_ids(sessions)[:2] == newer
    assert [r.auth for r in timeline_requests(fake_x)] == ["bearer", "oauth1"]


def test_profile_check_follows_renames_and_protection(crew, fake_x, make_app, sessions):
    app = make_app(FEEDAPP_PROFILE_REFRESH=0)
    runner = app.test_cli_runner()
    crew["name"] = "Northwind Crew (Depot 7)"
    crew["protected"] = True
    fake_x.reset_requests()

    result = poll(runner, "--all")

    src = source(sessions, "northwind_crew")
    assert src.display_name == "Northwind Crew (Depot 7)" and src.protected
    lookups = [r for r in fake_x.requests if r.path == "/2/users"]
    assert len(lookups) == 1 and lookups[0].params["ids"] == crew["id"]
    assert "is now protected on X: staff-only from now on" in result.output
    assert {r.auth for r in timeline_requests(fake_x)} == {"oauth1"}


@pytest.mark.parametrize("problem_host", ["https://api.twitter.com", "https://api.x.com"])
def test_suspended_account_is_marked_with_the_reason(crew, fake_x, runner, sessions, problem_host):
    fake_x.problem_host = problem_host
    crew["suspended"] = True

    result = poll(runner, "--all")

    assert result.exit_code == 0
    src = source(sessions, "northwind_crew")
    assert src.last_error.startswith("suspended on X") and src.error_count == 1


def test_bad_bearer_token_names_the_credential(fake_x, make_app):
    fake_x.add_user("northwind_crew")
    good = make_app()
    follow(good.test_cli_runner(), "northwind_crew")
    app = make_app(FEEDAPP_X_BEARER_TOKEN="wrong")

    result = poll(app.test_cli_runner())

    assert result.exit_code == 0
    assert "X rejected FEEDAPP_X_BEARER_TOKEN (401 Unauthorized)" in result.output


def test_repost_quote_and_reply_are_stored_with_their_context(fake_x, runner, sessions):
    fake_x.add_user("northwind_crew")
    fake_x.add_user("nw_safety", name="Safety Team")
    original = fake_x.post("nw_safety", "Gloves on & eyes up 🧤", media=[{"type": "photo", "alt_text": "Gloves"}])
    follow(runner, "northwind_crew")
    repost = fake_x.post("northwind_crew", retweet_of=original)
    quote = fake_x.post("northwind_crew", "Read this, team", quote_of=original)
    reply = fake_x.post("northwind_crew", "@nw_safety thanks!", reply_to=original)

    poll(runner)

    with sessions() as s:
        rp, qt, rl = s.get(Post, int(repost)), s.get(Post, int(quote)), s.get(Post, int(reply))
        assert (rp.author_username, rp.text, rp.repost_of_id) == ("nw_safety", "Gloves on & eyes up 🧤", original)
        assert rp.created_at > rp.original_created_at
        assert [m.alt_text for m in rp.media] == ["Gloves"]
        assert qt.text == "Read this, team" and qt.quoted["id"] == original
        assert qt.quoted["author"]["username"] == "nw_safety"
        assert (rl.reply_to_id, rl.reply_to_username) == (original, "nw_safety")
    assert media_count(sessions) == 1


def test_billable_reads_count_each_object_once_per_day(sessions):
    from feedapp.ingest.store import record_reads

    with sessions() as s:
        first = record_reads(s, "post", ["91", "92", "92"])
        again = record_reads(s, "post", ["91", "93"])
        s.commit()
    assert (first, again) == (2, 1)


def test_a_crash_inside_one_source_is_stored_and_the_others_go_on(fake_x, runner, sessions, monkeypatch):
    import feedapp.ingest.fetch as fetch_module

    for name in ("alpha_news", "bravo_news"):
        fake_x.add_user(name)
        post_many(fake_x, name, 2)
        follow(runner, name)
    real_store = fetch_module.store_posts

    def store_or_crash(session, src, posts):
        if src.username == "alpha_news":
            raise ZeroDivisionError("bug")
        return real_store(session, src, posts)

    monkeypatch.setattr(fetch_module, "store_posts", store_or_crash)
    result = poll(runner)

    assert result.exit_code == 0, result.output
    assert "@alpha_news: 0 new, 1 requests, 0 post reads, 0 user reads; error: internal error: ZeroDivisionError" in result.output
    assert len(stored_ids(sessions, "bravo_news")) == 2 and stored_ids(sessions, "alpha_news") == []
    assert source(sessions, "alpha_news").error_count == 1


# ---------------------------------------------------------------- rate limits are a shared fact


def timeline_users(fake) -> list[str]:
    """Ids of the users whose timelines were requested, in order."""
    return [r.path.split("/")[3] for r in timeline_requests(fake)]


def window_rows(sessions) -> list[RateWindow]:
    with sessions() as s:
        return list(s.scalars(select(RateWindow).order_by(RateWindow.credential, RateWindow.endpoint)))


@pytest.mark.parametrize("kind", ["429", "remaining0"])
def test_a_learned_window_holds_for_every_later_poll_until_its_reset(fake_x, make_app, kind):
    first_app = make_app(FEEDAPP_POLL_CONCURRENCY=1)
    runner = first_app.test_cli_runner()
    for name in ("alpha_news", "bravo_news"):
        fake_x.add_user(name)
        post_many(fake_x, name, 3)
        follow(runner, name)
    fake_x.reset_requests()
    fake_x.fail("/2/users/*/tweets", kind, reset_in=600)  # "remaining0" keeps the fake's own window reset

    first = poll(runner)
    assert first.exit_code == 0, first.output
    assert len(timeline_requests(fake_x)) == 1

    # A new process (a restarted `poll --loop`, another machine): nothing in memory, the database remembers.
    later = make_app()
    fake_x.reset_requests()
    due = poll(later.test_cli_runner())
    assert due.exit_code == 0 and "total: 0 sources" in due.output  # both wait for the reset
    everything = poll(later.test_cli_runner(), "--all")
    assert everything.exit_code == 0, everything.output
    assert everything.output.count("skipped: rate-limited until") == 2
    assert "(bearer token, timelines)" in everything.output
    assert timeline_requests(fake_x) == []
    listing = later.test_cli_runner().invoke(args=["sources", "list"]).output
    assert listing.count("rate-limited until") == 3  # both sources and the window line
    assert "X rate limit: rate-limited until" in listing and "(bearer token, timelines)" in listing


def test_a_window_from_another_process_stops_a_running_poller_before_its_next_call(fake_x, make_app, tmp_path):
    """The second poll is a real `flask poll` process; the first app learns nothing in memory."""
    import subprocess
    import sys

    from feedapp import ROOT
    from tests.conftest import x_config

    app = make_app(FEEDAPP_POLL_CONCURRENCY=1)
    runner, sessions = app.test_cli_runner(), app_sessions(app)
    fake_x.add_user("alpha_news")
    post_many(fake_x, "alpha_news", 3)
    follow(runner, "alpha_news")
    fake_x.fail("/2/users/*/tweets", "429", reset_in=900)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDAPP_")}
    env.update({k: str(v) for k, v in x_config(fake_x).items()},
               FEEDAPP_INSTANCE_PATH=str(tmp_path / "other"), FEEDAPP_DATABASE_URL=app.config["FEEDAPP_DATABASE_URL"])
    other = subprocess.run([sys.executable, "-m", "flask", "--app", "feedapp", "poll"], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert other.returncode == 0, other.stderr
    assert "X answered 429 Too Many Requests; rate-limited until" in other.stdout
    fake_x.reset_requests()

    result = poll(runner, "--all")

    assert timeline_requests(fake_x) == []
    assert "skipped: rate-limited until" in result.output
    src = source(sessions, "alpha_news")
    assert src.error_count == 0 and src.last_error is None  # a rate limit is not the source's failure
    assert utcnow() + timedelta(seconds=880) < src.next_check_at < utcnow() + timedelta(seconds=910)


def test_windows_are_kept_per_credential_and_endpoint_and_name_no_secret(fake_x, make_app):
    app = make_app(FEEDAPP_POLL_CONCURRENCY=1)
    runner, sessions = app.test_cli_runner(), app_sessions(app)
    fake_x.add_user("alpha_news")
    staff = fake_x.add_user("depot7_hr", protected=True)
    for name in ("alpha_news", "depot7_hr"):
        post_many(fake_x, name, 3)
        follow(runner, name)
    fake_x.fail(f"/2/users/{fake_x.user('alpha_news')['id']}/tweets", "429", reset_in=600)
    poll(runner)
    fake_x.reset_requests()

    result = poll(runner, "--all")

    # The reader account's timelines and the bearer token's username look-ups have windows of their own.
    assert timeline_users(fake_x) == [staff["id"]]
    assert "@alpha_news: 0 new, 0 requests, 0 post reads, 0 user reads; skipped: rate-limited until" in result.output
    fake_x.add_user("bravo_news")
    follow(runner, "bravo_news")
    rows = window_rows(sessions)
    blocked = [(r.credential.split(":")[0], r.endpoint) for r in rows if r.remaining == 0]
    assert blocked == [("bearer", "/2/users/:id/tweets")]
    assert {(r.credential.split(":")[0], r.endpoint) for r in rows} >= {
        ("bearer", "/2/users/:id/tweets"), ("reader", "/2/users/:id/tweets"), ("bearer", "/2/users/by")}
    for secret in (fake_x.bearer_token, fake_x.consumer_key, fake_x.access_token):
        assert all(secret not in r.credential for r in rows)

    # A rotated bearer token is another credential: its window is X's to tell, not the old one's.
    fake_x.bearer_token = "rotated-bearer"
    rotated = make_app(FEEDAPP_X_BEARER_TOKEN="rotated-bearer")
    fake_x.reset_requests()
    again = poll(rotated.test_cli_runner(), "--all")
    assert again.exit_code == 0, again.output
    assert fake_x.user("alpha_news")["id"] in timeline_users(fake_x)
    assert len(stored_ids(sessions, "alpha_news")) == 3


def test_a_window_ends_at_its_reset(fake_x, make_app):
    app = make_app()
    runner = app.test_cli_runner()
    fake_x.add_user("alpha_news")
    post_many(fake_x, "alpha_news", 3)
    follow(runner, "alpha_news")
    fake_x.fail("/2/users/*/tweets", "429", reset_in=-5)  # X says the window already reset
    assert "X answered 429" in poll(runner).output
    fake_x.reset_requests()

    result = poll(runner, "--all")

    assert len(timeline_requests(fake_x)) == 1 and "3 new" in result.output


def test_profile_look_ups_are_checked_against_their_window(crew, fake_x, make_app):
    app = make_app(FEEDAPP_PROFILE_REFRESH=0)
    runner = app.test_cli_runner()
    fake_x.fail("/2/users", "429", reset_in=600)
    first = poll(runner, "--all")
    assert "profile check skipped: X answered 429 Too Many Requests; rate-limited until" in first.output
    assert "(bearer token, profile look-ups)" in first.output
    fake_x.reset_requests()

    second = poll(runner, "--all")

    assert [r.path for r in fake_x.requests if r.path == "/2/users"] == []
    assert "profile check skipped: rate-limited until" in second.output
    assert len(timeline_requests(fake_x)) == 1  # timelines have their own window


def test_a_stored_window_is_never_shortened_by_an_older_answer(sessions):
    from feedapp.ingest.ratelimits import DbRateLimits
    from feedapp.xapi.limits import RateInfo, RateKey

    key = RateKey("bearer:0123456789abcdef", "/2/users/:id/tweets")
    reset = (utcnow() + timedelta(minutes=10)).replace(microsecond=0)
    mine, theirs = DbRateLimits(sessions), DbRateLimits(sessions)
    theirs.record(key, RateInfo(reset, remaining=0, limit=900))
    mine.record(key, RateInfo(reset, remaining=12, limit=900))  # a response from before the window ran out

    assert mine.blocked_until(key) == reset and DbRateLimits(sessions).blocked_until(key) == reset
    # A 429 naming an earlier reset than the good answers before it (X's caps): it blocks at once, everywhere.
    other = RateKey("bearer:0123456789abcdef", "/2/users")
    mine.record(other, RateInfo(reset + timedelta(minutes=5), remaining=40, limit=900))
    mine.record(other, RateInfo(reset, remaining=0, limit=900))
    assert DbRateLimits(sessions).blocked_until(other) == reset
    later = reset + timedelta(minutes=15)
    mine.record(key, RateInfo(later, remaining=899, limit=900))  # the next window has begun
    assert DbRateLimits(sessions).blocked_until(key) is None
    assert [(r.remaining, r.reset_at) for r in window_rows(sessions) if r.endpoint == key.endpoint] == [(899, later)]


# ---------------------------------------------------------------- fetching and scheduling apart


def test_fetching_returns_an_outcome_and_leaves_the_schedule_alone(fake_x, app, runner, sessions):
    from feedapp.ingest.fetch import FAILED, OK, RATE_LIMITED, TURNED_PROTECTED, fetch_source

    fake_x.add_user("alpha_news")
    ids = post_many(fake_x, "alpha_news", 7)
    follow(runner, "alpha_news")
    src = source(sessions, "alpha_news")
    client = XClient(XSettings.from_config(app.config))

    def fetch():
        before = source(sessions, "alpha_news")
        outcome = fetch_source(sessions, client, src.id, backfill=50)
        after = source(sessions, "alpha_news")
        fields = ("error_count", "last_error", "last_error_at", "last_success_at", "next_check_at", "protected")
        assert [getattr(after, f) for f in fields] == [getattr(before, f) for f in fields]
        return outcome

    ok = fetch()
    assert (ok.status, ok.new_posts, ok.requests, ok.post_reads) == (OK, 7, 1, 7)
    assert stored_ids(sessions) == ids and source(sessions, "alpha_news").since_id == ids[0]
    fake_x.fail("/2/users/*/tweets", "503")
    failed = fetch()
    assert (failed.status, failed.reason, failed.backoff) == (FAILED, "X server error (503)", True)
    fake_x.fail("/2/users/*/tweets", "429", reset_in=300)
    limited = fetch()
    assert limited.status == RATE_LIMITED and not limited.skipped
    assert utcnow() + timedelta(seconds=290) < limited.retry_at < utcnow() + timedelta(seconds=310)
    client.limits = type(client.limits)()  # forget the window (a fresh process without the database store)
    fake_x.user("alpha_news")["protected"] = True
    turned = fetch()
    assert (turned.status, turned.requests) == (TURNED_PROTECTED, 1)


def test_scheduling_is_the_one_writer_of_the_poll_state(fake_x, app, runner, sessions):
    from feedapp.ingest.fetch import FAILED, OK, RATE_LIMITED, Outcome
    from feedapp.ingest.schedule import Backoff, record_outcome

    fake_x.add_user("alpha_news")
    follow(runner, "alpha_news")
    src_id = source(sessions, "alpha_news").id
    now, backoff = utcnow(), Backoff(interval=60, cap=600)

    record_outcome(sessions, src_id, Outcome().end(FAILED, "X server error (500)"), now, backoff)
    src = source(sessions, "alpha_news")
    assert (src.error_count, src.last_error, src.last_error_at, src.last_success_at) == (1, "X server error (500)", now, None)
    assert 45 <= (src.next_check_at - now).total_seconds() <= 75
    reset = now + timedelta(minutes=9)
    record_outcome(sessions, src_id, Outcome().end(RATE_LIMITED, "rate-limited", retry_at=reset), now, backoff)
    src = source(sessions, "alpha_news")
    assert (src.error_count, src.last_error, src.next_check_at) == (1, "X server error (500)", reset)
    record_outcome(sessions, src_id, Outcome().end(FAILED, "protected", backoff=False), now, backoff)
    assert (source(sessions, "alpha_news").next_check_at - now).total_seconds() == 60  # no exponential backoff
    record_outcome(sessions, src_id, Outcome(status=OK), now, backoff)
    src = source(sessions, "alpha_news")
    assert (src.error_count, src.last_error, src.last_success_at, src.next_check_at) == (0, None, now, now + timedelta(seconds=60))


# ---------------------------------------------------------------- one cycle among many pollers and threads


def _refuse_success_bookkeeping(sessions, username: str) -> list[str]:
    """A real database error: a trigger that refuses to mark username's poll a success. Returns the undo SQL."""
    from sqlalchemy import text

    with sessions() as s:
        if s.get_bind().dialect.name == "sqlite":
            s.execute(text(f"""CREATE TRIGGER refuse_success BEFORE UPDATE ON sources
                WHEN NEW.username = '{username}' AND NEW.last_success_at IS NOT NULL
                BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"""))
            undo = ["DROP TRIGGER refuse_success"]
        else:
            s.execute(text("""CREATE FUNCTION refuse_success() RETURNS trigger LANGUAGE plpgsql AS
                $$ BEGIN RAISE EXCEPTION 'refused by a test trigger'; END $$"""))
            s.execute(text(f"""CREATE TRIGGER refuse_success BEFORE UPDATE ON sources FOR EACH ROW
                WHEN (NEW.username = '{username}' AND NEW.last_success_at IS NOT NULL)
                EXECUTE FUNCTION refuse_success()"""))
            undo = ["DROP TRIGGER refuse_success ON sources", "DROP FUNCTION refuse_success()"]
        s.commit()
    return undo


def test_a_database_error_in_one_sources_bookkeeping_is_its_failure_only(fake_x, runner, sessions):
    from sqlalchemy import text

    for name in ("alpha_news", "bravo_news", "charlie_news"):
        fake_x.add_user(name)
        post_many(fake_x, name, 4)
        follow(runner, name)
    undo = _refuse_success_bookkeeping(sessions, "bravo_news")
    try:
        result = poll(runner)
    finally:
        with sessions() as s:
            for sql in undo:
                s.execute(text(sql))
            s.commit()

    assert result.exit_code == 0, result.output
    assert "@bravo_news: 4 new, 1 requests, 4 post reads, 0 user reads; error: database error while recording this poll" in result.output
    assert "@alpha_news: 4 new" in result.output and "@charlie_news: 4 new" in result.output
    assert "total: 3 sources, 12 new posts" in result.output
    bravo = source(sessions, "bravo_news")
    assert bravo.error_count == 1 and bravo.last_error.startswith("database error while recording this poll")
    assert len(stored_ids(sessions, "bravo_news")) == 4  # its stored page stays, with its position
    assert bravo.since_id == stored_ids(sessions, "bravo_news")[0]
    assert source(sessions, "alpha_news").last_success_at is not None


def test_each_poll_thread_has_an_http_session_of_its_own(fake_x, make_app, monkeypatch):
    """Four sources polled four at a time; the fake answers only once two timeline calls are in flight."""
    import threading
    from collections import Counter

    from feedapp.xapi.client import RewritingSession

    app = make_app(FEEDAPP_POLL_CONCURRENCY=4, FEEDAPP_X_TIMEOUT=60)  # held calls wait, not time out
    runner = app.test_cli_runner()
    for n in range(4):
        fake_x.add_user(f"news_{n}")
        post_many(fake_x, f"news_{n}", 2)
        follow(runner, f"news_{n}")
    in_flight, shared, used, lock = Counter(), [], set(), threading.Lock()
    real_request = RewritingSession.request

    def watched(self, *args, **kwargs):
        with lock:
            if in_flight[id(self)]:
                shared.append(id(self))  # one requests.Session used by two threads at once
            in_flight[id(self)] += 1
            used.add((id(self), threading.get_ident()))
        try:
            return real_request(self, *args, **kwargs)
        finally:
            with lock:
                in_flight[id(self)] -= 1

    monkeypatch.setattr(RewritingSession, "request", watched)
    go = threading.Event()
    fake_x.reset_requests()
    fake_x.fail("/2/users/*/tweets", "hold", count=2, event=go)
    releaser = threading.Thread(target=lambda: (fake_x.wait_for(lambda f: len(timeline_requests(f)) >= 2), go.set()))
    releaser.start()
    result = poll(runner)
    releaser.join()

    assert result.exit_code == 0, result.output
    assert "total: 4 sources, 8 new posts" in result.output
    assert shared == []
    sessions_by_thread = {}
    for session_id, thread_id in used:
        sessions_by_thread.setdefault(session_id, set()).add(thread_id)
    assert len(sessions_by_thread) >= 2 and all(len(t) == 1 for t in sessions_by_thread.values())


def test_the_lease_is_renewed_while_a_cycle_outlasts_it(fake_x, make_app, monkeypatch):
    import threading

    from feedapp.ingest import lease
    from feedapp.models import Lease

    app = make_app(FEEDAPP_X_TIMEOUT=60)  # the held call must outlive the lease, not time out
    runner, sessions = app.test_cli_runner(), app_sessions(app)
    # Renewed every TTL/4 (1 s): the lease lapses only if the renewing thread is starved for 3 s on end.
    monkeypatch.setattr(lease, "TTL", timedelta(seconds=4))
    fake_x.add_user("alpha_news")
    post_many(fake_x, "alpha_news", 3)
    follow(runner, "alpha_news")
    go = threading.Event()
    fake_x.fail("/2/users/*/tweets", "hold", event=go)
    done = {}
    poller = threading.Thread(target=lambda: done.update(result=poll(runner)))
    poller.start()
    try:
        fake_x.wait_for(lambda f: len(timeline_requests(f)) == 1)  # the cycle is under way, its call held
        with sessions() as s:
            first = s.get(Lease, lease.POLLER)
            holder, first_expiry = first.holder, first.expires_at
        wait_until(lambda: utcnow() > first_expiry + timedelta(seconds=0.5))  # the lease as first taken is over
        with sessions() as s:
            assert s.get(Lease, lease.POLLER).expires_at > first_expiry  # because it was renewed meanwhile
        second = lease.acquire(sessions, "second-machine:2", timedelta(minutes=5))
    finally:
        go.set()
        poller.join()

    assert second is not None and second.holder == holder
    assert done["result"].exit_code == 0, done["result"].output
    assert "@alpha_news: 3 new" in done["result"].output
    assert lease.acquire(sessions, "second-machine:2", timedelta(minutes=5)) is None  # released at the end


def test_a_poller_that_lost_its_lease_stops_calling(fake_x, app, runner, sessions):
    import threading

    from feedapp.ingest.poll import poll_cycle

    for name in ("alpha_news", "bravo_news"):
        fake_x.add_user(name)
        post_many(fake_x, name, 2)
        follow(runner, name)
    lost = threading.Event()
    lost.set()
    fake_x.reset_requests()

    summary = poll_cycle(sessions, XClient(XSettings.from_config(app.config)), PollSettings.from_config(app.config),
                         stop=lost)

    assert timeline_requests(fake_x) == []
    assert [r.skipped for r in summary.results] == ["not polled: this poller lost its lease"] * 2


def wait_until(condition, timeout: float = 30.0, every: float = 0.02) -> None:
    """Wait for condition() to hold (checked every `every` s), or fail the test."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(every)
