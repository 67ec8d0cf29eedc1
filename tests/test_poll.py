"""The poll cycle against the fake X API: catch-up, faults, rate limits, protected accounts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from feedapp.db import sessions as app_sessions
from feedapp.ingest.poll import PollSettings, RateGate, poll_source
from feedapp.models import Post, utcnow
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
    fake_x.fail("/2/users/*/tweets", kind, skip=1, reset_in=1)

    first = poll(runner, "--all")

    assert first.exit_code == 0, first.output
    assert "error" in first.output
    assert stored_ids(sessions) == new[:100] + before  # the first page is kept
    src = source(sessions, "northwind_crew")
    assert src.since_id == before[0] and src.gap_until_id == new[99] and src.gap_newest_id == new[0]

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
    assert result.output.count("rate limited") == 3
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
    assert "skipped: rate limited" in result.output


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
        result = poll_source(sessions, client, src_id, settings, RateGate(), now)
        assert "X server error (500)" in result.error
        delays.append((source(sessions, "northwind_crew").next_check_at - now).total_seconds())
    for n, delay in enumerate(delays, start=1):
        expected = min(600, 60 * 2 ** (n - 1))
        assert 0.75 * expected <= delay <= 1.25 * expected, (n, delay)
    assert source(sessions, "northwind_crew").error_count == 6
    poll_source(sessions, client, src_id, settings, RateGate(), utcnow())
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
    import feedapp.ingest.poll as poll_module

    for name in ("alpha_news", "bravo_news"):
        fake_x.add_user(name)
        post_many(fake_x, name, 2)
        follow(runner, name)
    real_store = poll_module.store_posts

    def store_or_crash(session, src, posts):
        if src.username == "alpha_news":
            raise ZeroDivisionError("bug")
        return real_store(session, src, posts)

    monkeypatch.setattr(poll_module, "store_posts", store_or_crash)
    result = poll(runner)

    assert result.exit_code == 0, result.output
    assert "@alpha_news: 0 new, 1 requests, 0 post reads, 0 user reads; error: internal error: ZeroDivisionError" in result.output
    assert len(stored_ids(sessions, "bravo_news")) == 2 and stored_ids(sessions, "alpha_news") == []
    assert source(sessions, "alpha_news").error_count == 1
