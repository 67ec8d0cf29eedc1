"""The flask commands of CONTRACT.md, run through Flask's CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from feedapp import ROOT, create_app
from feedapp.db import sessions as app_sessions
from feedapp.ingest.lease import acquire
from feedapp.models import Office, Post, Source
from tests.helpers import follow, poll, post_many, source, stored_ids


def count(sessions, model) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_offices_add_and_list(runner, sessions):
    assert runner.invoke(args=["offices", "add", "depot-7", "Depot 7 (Leeds)"]).exit_code == 0
    listing = runner.invoke(args=["offices", "list"])
    assert "depot-7\tDepot 7 (Leeds)\t0 sources" in listing.output


@pytest.mark.parametrize(
    "slug, name, message",
    [
        ("Depot 7", "x", "lower-case letters"),
        ("_depot", "x", "lower-case letters"),
        ("d" * 64, "x", "lower-case letters"),
        ("depot", "   ", "1-200 characters"),
        ("depot", "n" * 201, "1-200 characters"),
    ],
)
def test_offices_add_rejects_bad_input(runner, sessions, slug, name, message):
    result = runner.invoke(args=["offices", "add", slug, name])
    assert result.exit_code != 0 and message in result.output
    assert count(sessions, Office) == 0


def test_offices_add_twice_is_a_clear_error(runner):
    runner.invoke(args=["offices", "add", "depot-7", "Depot 7"])
    result = runner.invoke(args=["offices", "add", "depot-7", "Depot 7"])
    assert result.exit_code != 0 and "exists already" in result.output


def test_sources_add_to_an_office_and_update(fake_x, runner, sessions):
    fake_x.add_user("depot7_hr", name="Depot 7 HR")
    runner.invoke(args=["offices", "add", "depot-7", "Depot 7"])

    out = follow(runner, "@depot7_hr", "--office", "depot-7").output
    assert "added @depot7_hr: office depot-7" in out
    out = follow(runner, "https://x.com/Depot7_HR", "--staff-only").output
    assert "updated @depot7_hr: company-wide (staff-only)" in out

    src = source(sessions, "depot7_hr")
    assert (src.office_id, src.staff_only, src.display_name) == (None, True, "Depot 7 HR")
    assert count(sessions, Source) == 1


@pytest.mark.parametrize(
    "username, setup, message",
    [
        ("nobody_here", None, "@nobody_here: not found on X: Could not find user with usernames: [nobody_here]."),
        ("gone_crew", "suspend", "@gone_crew: suspended on X: User has been suspended: [gone_crew]."),
        ("bad name!", None, "is not an X username"),
        ("x" * 16, None, "is not an X username"),
    ],
)
def test_sources_add_unknown_or_bad_changes_nothing(fake_x, runner, sessions, username, setup, message):
    if setup == "suspend":
        fake_x.add_user(username, suspended=True)
    result = runner.invoke(args=["sources", "add", username])
    assert result.exit_code != 0
    assert message in result.output
    assert count(sessions, Source) == 0


def test_sources_add_with_unknown_office_calls_nothing(fake_x, runner, sessions):
    fake_x.add_user("depot7_hr")
    result = runner.invoke(args=["sources", "add", "depot7_hr", "--office", "nowhere"])
    assert result.exit_code != 0 and "no office 'nowhere'" in result.output
    assert fake_x.requests == [] and count(sessions, Source) == 0


def test_sources_add_when_x_is_down_changes_nothing(fake_x, runner, sessions):
    fake_x.add_user("depot7_hr")
    fake_x.fail("/2/users/by", "503")
    result = runner.invoke(args=["sources", "add", "depot7_hr"])
    assert result.exit_code != 0 and "X server error (503)" in result.output
    assert count(sessions, Source) == 0


def test_sources_list_and_remove(fake_x, runner, sessions):
    fake_x.add_user("depot7_hr", protected=True)
    post_many(fake_x, "depot7_hr", 3)
    follow(runner, "depot7_hr")
    poll(runner)
    listing = runner.invoke(args=["sources", "list"]).output
    assert "@depot7_hr\tcompany-wide\tprotected\tok at " in listing

    result = runner.invoke(args=["sources", "remove", "DEPOT7_HR"])
    assert result.exit_code == 0 and "removed @depot7_hr" in result.output
    assert count(sessions, Source) == 0 and count(sessions, Post) == 0
    again = runner.invoke(args=["sources", "remove", "depot7_hr"])
    assert again.exit_code != 0 and "is not followed" in again.output


def test_poll_exits_nonzero_while_another_poller_holds_the_lease(fake_x, runner, sessions):
    fake_x.add_user("depot7_hr")
    follow(runner, "depot7_hr")
    from datetime import timedelta

    assert acquire(sessions, "other-host:123", timedelta(minutes=10)) is None
    fake_x.reset_requests()

    result = poll(runner)

    assert result.exit_code != 0
    assert "not polling: another poller (other-host:123) holds the lease until" in result.output
    assert fake_x.requests == []


def test_lease_is_taken_by_exactly_one_of_two_racing_pollers(sessions):
    import threading
    from datetime import timedelta

    results, barrier = {}, threading.Barrier(2)

    def race(name):
        barrier.wait()
        results[name] = acquire(sessions, name, timedelta(minutes=5))

    threads = [threading.Thread(target=race, args=(n,)) for n in ("a:1", "b:2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [n for n, busy in results.items() if busy is None]
    assert len(winners) == 1
    loser = next(busy for busy in results.values() if busy is not None)
    assert loser.holder == winners[0]


def test_an_expired_lease_is_taken_over(sessions):
    from datetime import timedelta

    assert acquire(sessions, "crashed:1", timedelta(seconds=-1)) is None
    assert acquire(sessions, "fresh:2", timedelta(minutes=5)) is None
    assert acquire(sessions, "crashed:1", timedelta(minutes=5)).holder == "fresh:2"


def test_poll_without_credentials_says_how_to_fix_it(make_app):
    app = make_app(FEEDAPP_X_BEARER_TOKEN=None, FEEDAPP_X_CONSUMER_KEY=None)
    result = poll(app.test_cli_runner())
    assert result.exit_code != 0 and "no X credentials: set FEEDAPP_X_BEARER_TOKEN" in result.output


def test_demo_loads_through_the_ingest_path_and_is_idempotent(runner, sessions):
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert "demo company: Harbor & Pine Logistics" in first.output
    total = len(stored_ids(sessions))
    assert total >= 40
    with sessions() as s:
        protected = s.scalars(select(Source).where(Source.protected)).all()
        assert len(protected) == 1
        offices = s.scalars(select(Office)).all()
        assert len(offices) == 2
        assert s.scalar(select(func.count()).select_from(Post).where(Post.lang == "fr")) >= 5
        assert s.scalar(select(func.count()).select_from(Post).where(Post.repost_of_id.is_not(None))) >= 1
        assert s.scalar(select(func.count()).select_from(Post).where(Post.quoted.is_not(None))) >= 1
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0 and len(stored_ids(sessions)) == total
    assert second.output.count(": 0 new posts") == 6


def flask_cli(tmp_path, db_url, *args):
    """Run the real `flask --app feedapp` in a subprocess, as an operator would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDAPP_")}
    env.update(FEEDAPP_INSTANCE_PATH=str(tmp_path / "inst"), FEEDAPP_DATABASE_URL=db_url)
    return subprocess.run([sys.executable, "-m", "flask", "--app", "feedapp", *args], env=env,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_db_upgrade_writes_the_secret_key_once(tmp_path, db_url):
    first = flask_cli(tmp_path, db_url, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "inst" / "secret_key"
    key = key_file.read_text()
    assert len(key.strip()) >= 40 and oct(key_file.stat().st_mode & 0o777) == "0o600"
    second = flask_cli(tmp_path, db_url, "db", "upgrade")
    assert second.returncode == 0 and "secret key" not in second.stdout
    assert key_file.read_text() == key and "database at revision 0004_visibility" in second.stdout
    served = create_app({"INSTANCE_PATH": str(tmp_path / "inst"), "FEEDAPP_DATABASE_URL": db_url})
    assert served.config["SECRET_KEY"] == key.strip()
    app_sessions(served).kw["bind"].dispose()


def test_create_app_refuses_to_serve_without_a_secret_key(tmp_path):
    with pytest.raises(RuntimeError, match="flask --app feedapp db upgrade"):
        create_app({"INSTANCE_PATH": str(tmp_path)})


def test_commands_on_a_database_without_schema_say_to_upgrade(tmp_path):
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path),
                      "FEEDAPP_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"})
    result = app.test_cli_runner().invoke(args=["sources", "list"])
    assert result.exit_code != 0 and "run `flask --app feedapp db upgrade` first" in result.output
    app_sessions(app).kw["bind"].dispose()
