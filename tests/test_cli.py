"""The flask commands of CONTRACT.md, run through Flask's CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from sqlalchemy import func, select

from feedapp import ROOT, create_app
from feedapp.db import sessions as app_sessions
from feedapp.ingest.lease import acquire
from feedapp.migrate import head_revision
from feedapp.models import Office, Post, Source
from tests.conftest import server_missing
from tests.helpers import follow, poll, post_many, source, stored_ids


def count(sessions, model) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_offices_add_and_list(runner, sessions):
    assert runner.invoke(args=["offices", "add", "depot-7", "Depot 7 (Leeds)"]).exit_code == 0
    listing = runner.invoke(args=["offices", "list"])
    assert "depot-7\tDepot 7 (Leeds)\t-\t0 sources" in listing.output


def test_offices_add_with_a_language(runner, sessions):
    result = runner.invoke(args=["offices", "add", "lyon", "Lyon", "--language", "fr"])
    assert result.exit_code == 0, result.output
    with sessions() as s:
        assert s.scalar(select(Office.language).where(Office.slug == "lyon")) == "fr"
    assert "lyon\tLyon\tfr\t0 sources" in runner.invoke(args=["offices", "list"]).output
    refused = runner.invoke(args=["offices", "add", "leeds", "Leeds", "--language", "klingon"])
    assert refused.exit_code != 0 and "use one of en, fr" in refused.output
    assert count(sessions, Office) == 1


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
        ("bad name!", None, "'bad name!': not an X username"),
        ("x" * 16, None, "not an X username"),
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
    assert key_file.read_text() == key and f"database at revision {head_revision()}" in second.stdout
    served = create_app({"INSTANCE_PATH": str(tmp_path / "inst"), "FEEDAPP_DATABASE_URL": db_url,
                         "FEEDAPP_BASE_URL": "https://feed.example.com"})
    assert served.config["SECRET_KEY"] == key.strip()
    app_sessions(served).kw["bind"].dispose()


def test_db_upgrade_on_a_fresh_checkout_makes_the_instance_folder_for_the_default_database(tmp_path):
    """The quick start's first step: no instance folder yet, no FEEDAPP_DATABASE_URL (the default SQLite file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDAPP_")}
    env["FEEDAPP_INSTANCE_PATH"] = str(tmp_path / "new" / "instance")
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "feedapp", "db", "upgrade"], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "new" / "instance" / "feedapp.db").stat().st_size > 0
    assert f"database at revision {head_revision()}" in done.stdout


def test_create_app_refuses_to_serve_without_a_secret_key(tmp_path):
    with pytest.raises(RuntimeError, match="flask --app feedapp db upgrade"):
        create_app({"INSTANCE_PATH": str(tmp_path)})


# ---------------------------------------------------------------- sources add, many at once


def test_sources_add_many_adds_the_found_names_the_rest_and_exits_nonzero(fake_x, runner, sessions):
    fake_x.add_user("alpha_news")
    fake_x.add_user("Bravo_News", name="Bravo")
    fake_x.add_user("gone_crew", suspended=True)
    runner.invoke(args=["offices", "add", "depot-7", "Depot 7"])
    fake_x.reset_requests()

    result = runner.invoke(args=["sources", "add", "@alpha_news", "https://x.com/bravo_news", "nobody_here",
                                 "gone_crew", "bad name!", "ALPHA_NEWS", "--office", "depot-7"])

    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert "added @alpha_news: office depot-7" in lines and "added @Bravo_News: office depot-7" in lines
    assert "@nobody_here: not found on X: Could not find user with usernames: [nobody_here]." in lines
    assert "@gone_crew: suspended on X: User has been suspended: [gone_crew]." in lines
    assert "'bad name!': not an X username (1-15 letters, digits or _)" in lines
    assert lines[-1] == "Error: 3 not added (2 added or updated)"
    assert "Traceback" not in result.output
    lookups = [r for r in fake_x.requests if r.path == "/2/users/by"]
    assert [r.params["usernames"] for r in lookups] == ["alpha_news,bravo_news,nobody_here,gone_crew"]
    with sessions() as s:
        assert sorted(s.scalars(select(Source.username))) == ["Bravo_News", "alpha_news"]


def test_sources_add_looks_up_100_names_per_call(fake_x, runner, sessions):
    names = [f"store_{i:03d}" for i in range(230)]
    for name in names:
        fake_x.add_user(name)
    fake_x.reset_requests()

    result = runner.invoke(args=["sources", "add", *names])

    assert result.exit_code == 0, result.output
    assert result.output.count("added @store_") == 230
    assert [len(r.params["usernames"].split(",")) for r in fake_x.requests] == [100, 100, 30]
    assert count(sessions, Source) == 230


def test_sources_add_keeps_what_x_answered_when_a_later_batch_fails(fake_x, runner, sessions):
    names = [f"store_{i:03d}" for i in range(120)]
    for name in names:
        fake_x.add_user(name)
    fake_x.fail("/2/users/by", "503", skip=1)

    result = runner.invoke(args=["sources", "add", *names])

    assert result.exit_code == 1
    assert count(sessions, Source) == 100
    assert "@store_119: not looked up: X server error (503)" in result.output
    assert result.output.splitlines()[-1] == "Error: 20 not added (100 added or updated)"


# ---------------------------------------------------------------- one clear line, never a traceback

# Every command that reads or writes the database, with its arguments and standard input.
DB_COMMANDS = [
    (["db", "upgrade"], None),
    (["db", "current"], None),
    (["db", "backup", "{tmp}/backup.db"], None),
    (["offices", "add", "depot-7", "Depot 7"], None),
    (["offices", "list"], None),
    (["sources", "add", "alpha_news", "bravo_news"], None),
    (["sources", "list"], None),
    (["sources", "remove", "alpha_news"], None),
    (["poll"], None),
    (["poll", "--all"], None),
    (["users", "add", "ana", "--admin"], None),
    (["users", "set-password", "ana"], "a long passphrase\n"),
    (["users", "feed-url", "ana"], None),
    (["users", "list"], None),
    (["demo"], None),
]
NO_SCHEMA_ANSWERS = {("db", "upgrade"), ("db", "current")}  # creating the schema / saying there is none is their job


@pytest.fixture(scope="module")
def empty_databases(tmp_path_factory):
    """A database without a schema on each engine (PostgreSQL: created here, dropped at the end)."""
    from sqlalchemy import create_engine, text

    from tests.conftest import PG_ADMIN_URL

    empty = tmp_path_factory.mktemp("empty") / "empty.db"
    empty.touch()
    urls = {"sqlite": f"sqlite:///{empty}"}
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    name = f"feedapp_empty_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        urls["postgresql"] = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    except Exception:  # noqa: BLE001 - no server: the PostgreSQL cases skip, as in conftest
        name = None
    yield urls
    if name:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def broken_url(state: str, tmp_path, empty_databases, closed_port) -> str:
    if state == "sqlite-no-schema":
        return empty_databases["sqlite"]
    if state == "postgresql-no-schema":
        if "postgresql" not in empty_databases:
            server_missing("PostgreSQL not reachable")
        return empty_databases["postgresql"]
    if state == "sqlite-unreachable":
        return f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'feedapp.db'}"
    return f"postgresql://feedapp:sekrit@127.0.0.1:{closed_port}/feedapp"


STATES = ["sqlite-no-schema", "postgresql-no-schema", "sqlite-unreachable", "postgresql-unreachable"]
BROKEN_CASES = [
    pytest.param(args, stdin, state, id=f"{' '.join(args[:2])}-{state}")
    for args, stdin in DB_COMMANDS for state in STATES
    # Creating the schema / saying there is none is those commands' normal work; on PostgreSQL `db backup`
    # explains pg_dump without connecting (tested below).
    if not ("no-schema" in state and tuple(args[:2]) in NO_SCHEMA_ANSWERS)
    and not (state.startswith("postgresql") and args[:2] == ["db", "backup"])
]


@pytest.mark.parametrize("args, stdin, state", BROKEN_CASES)
def test_every_command_answers_a_broken_database_with_one_line(fake_x, tmp_path, empty_databases, closed_port,
                                                               state, args, stdin):
    from tests.conftest import x_config

    fake_x.add_user("alpha_news")
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "inst"),
                      "FEEDAPP_DATABASE_URL": broken_url(state, tmp_path, empty_databases, closed_port),
                      **x_config(fake_x)})
    try:
        result = app.test_cli_runner().invoke(args=[a.format(tmp=tmp_path) for a in args], input=stdin)
    finally:
        app_sessions(app).kw["bind"].dispose()

    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # not an exception escaping the command
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    if "no-schema" in state:
        assert "has no feedapp schema" in lines[0] and "flask --app feedapp db upgrade" in lines[0]
    else:
        assert "cannot reach the database at" in lines[0] and "check FEEDAPP_DATABASE_URL" in lines[0]
        assert "sekrit" not in lines[0]
    assert fake_x.requests == []  # nothing is asked of X while the database cannot record it


def test_a_real_flask_process_prints_one_line_without_a_traceback(tmp_path):
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    for args in (["users", "list"], ["users", "feed-url", "ana"], ["users", "set-password", "ana"]):
        done = flask_cli(tmp_path, empty, *args)
        assert done.returncode == 1
        assert done.stdout == "" and "Traceback" not in done.stderr
        assert done.stderr.count("\n") == 1 and "run `flask --app feedapp db upgrade` first" in done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["offices", "add", "Depot 7", "x"], "Error: Invalid value for SLUG: use lower-case letters"),
        (["users", "add", "a"], "Error: A username is 2–50 letters"),
        (["users", "set-password", "nobody"], "Error: no user 'nobody'"),
        (["sources", "remove", "bad name!"], "is not an X username"),
        (["users", "add", "ana", "--office", "nowhere"], "Error: no office 'nowhere'"),
    ],
)
def test_bad_input_gets_one_line(runner, sessions, args, message):
    result = runner.invoke(args=args, input="short\n")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert len(result.output.strip().splitlines()) == 1 and message in result.output


# ---------------------------------------------------------------- db backup


def _post_ids(path) -> set[int]:
    import sqlite3

    con = sqlite3.connect(path)
    try:
        return {row[0] for row in con.execute("SELECT id FROM posts")}
    finally:
        con.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_backup_taken_during_a_poll_restores_with_every_committed_post(fake_x, make_app, db_url, tmp_path):
    import shutil
    import sqlite3
    import threading

    from feedapp.ingest.poll import PollSettings, poll_cycle
    from feedapp.xapi import XClient, XSettings

    app = make_app(FEEDAPP_POLL_CONCURRENCY=4, FEEDAPP_X_TIMEOUT=60)  # the held call waits for the backup
    runner, sessions = app.test_cli_runner(), app_sessions(app)
    names = [f"store_{i:02d}" for i in range(40)]
    for name in names:
        fake_x.add_user(name)
        post_many(fake_x, name, 30)
    assert runner.invoke(args=["sources", "add", *names]).exit_code == 0
    held = fake_x.user(names[-1])["id"]
    go = threading.Event()
    fake_x.fail(f"/2/users/{held}/tweets", "hold", event=go)  # the cycle cannot end before the backup
    fake_x.latency = 0.01
    fake_x.reset_requests()
    client = XClient(XSettings.from_config(app.config))
    poller = threading.Thread(target=poll_cycle, args=(sessions, client, PollSettings.from_config(app.config)))
    poller.start()
    try:
        fake_x.wait_for(lambda f: f.answered >= 12)  # mid-cycle: some sources stored, others on their way
        committed = set(stored_ids(sessions))
        backup = tmp_path / "backup.db"
        result = runner.invoke(args=["db", "backup", str(backup)])
    finally:
        go.set()
        poller.join()
    client.close()

    assert result.exit_code == 0, result.output
    assert f"backed up {db_url.removeprefix('sqlite:///')} to {backup}" in result.output and "integrity ok" in result.output
    con = sqlite3.connect(backup)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    con.close()
    in_backup, final = _post_ids(backup), set(stored_ids(sessions))
    assert len(committed) >= 30 and committed <= in_backup <= final
    assert not set(stored_ids(sessions, names[-1])) & in_backup  # taken before the held source was stored
    assert oct(backup.stat().st_mode & 0o777) == "0o600"

    # Restore: stop everything, copy the file back, open the app on it, and poll on from where it was.
    app_sessions(app).kw["bind"].dispose()
    live = db_url.removeprefix("sqlite:///")
    for suffix in ("-wal", "-shm"):
        Path(live + suffix).unlink(missing_ok=True)
    shutil.copyfile(backup, live)
    restored = make_app()
    assert set(stored_ids(app_sessions(restored))) == in_backup
    assert restored.test_client().get("/").status_code == 200
    fake_x.clear_faults()
    again = restored.test_cli_runner().invoke(args=["poll", "--all"])
    assert again.exit_code == 0, again.output
    assert sorted(stored_ids(app_sessions(restored))) == sorted(final)  # nothing lost, nothing twice


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_backup_never_replaces_a_file_unless_told(runner, tmp_path):
    target = tmp_path / "keep.db"
    target.write_bytes(b"an older backup")

    refused = runner.invoke(args=["db", "backup", str(target)])
    assert refused.exit_code == 1 and f"Error: {target} exists; choose another path, or pass --force" in refused.output
    assert target.read_bytes() == b"an older backup"

    forced = runner.invoke(args=["db", "backup", "--force", str(target)])
    assert forced.exit_code == 0, forced.output
    assert _post_ids(target) == set()
    missing_dir = runner.invoke(args=["db", "backup", str(tmp_path / "nowhere" / "b.db")])
    assert missing_dir.exit_code == 1 and "no directory" in missing_dir.output


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_backup_on_postgresql_explains_pg_dump_and_its_restore(fake_x, runner, sessions, db_url, tmp_path):
    import shlex
    import shutil

    from sqlalchemy import create_engine, text

    from tests.conftest import PG_ADMIN_URL

    fake_x.add_user("alpha_news")
    post_many(fake_x, "alpha_news", 5)
    follow(runner, "alpha_news")
    poll(runner)
    dump = tmp_path / "feedapp.dump"

    result = runner.invoke(args=["db", "backup", str(dump)])

    assert result.exit_code == 1
    lines = result.output.splitlines()
    pg_dump = next(line.strip() for line in lines if line.strip().startswith("pg_dump "))
    pg_restore = next(line.strip() for line in lines if line.strip().startswith("pg_restore "))
    assert "+psycopg" not in pg_dump and str(dump) in pg_dump and "Traceback" not in result.output
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        server_missing("pg_dump/pg_restore not installed: the printed commands were not run")
    # Run the printed commands as an operator would: dump, then restore into a new empty database.
    subprocess.run(shlex.split(pg_dump), check=True, timeout=120)
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    target = f"feedapp_restore_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{target}"'))
    try:
        restore_url = db_url.rsplit("/", 1)[0].replace("+psycopg", "") + f"/{target}"
        subprocess.run(shlex.split(pg_restore.replace(shlex.split(pg_restore)[2].split("=", 1)[1], restore_url)),
                       check=True, timeout=120)
        restored = create_engine(restore_url.replace("postgresql://", "postgresql+psycopg://"))
        with restored.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM posts")).scalar() == 5
        restored.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)'))
        admin.dispose()


def test_pg_dump_instructions_never_show_the_password():
    from feedapp.backup import postgres_instructions

    lines = postgres_instructions("postgresql+psycopg://feedapp:s3cr%40t@db.internal:5433/feedapp", "/backups/x y.dump")
    text = "\n".join(lines)
    assert "s3cr" not in text and "+psycopg" not in text
    assert "pg_dump --format=custom --file='/backups/x y.dump' postgresql://feedapp@db.internal:5433/feedapp" in text
    assert "pg_restore --no-owner --dbname=postgresql://feedapp@db.internal:5433/feedapp '/backups/x y.dump'" in text
