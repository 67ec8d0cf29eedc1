"""The `flask --app feedapp …` commands of CONTRACT.md, thin over ingest and queries.

Every command is a `Command`: a missing schema, an unreachable database, bad
input or an X API refusal ends in one line on stderr and exit status 1, never
a traceback. Commands therefore carry no try blocks of their own for those.
"""

from __future__ import annotations

import re
import signal
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, ScriptInfo, with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from . import db, migrate
from .config import ensure_secret_key
from .ingest.store import bump_content_version
from .models import Office
from .queries import all_offices, all_sources, office_by_slug

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class Command(click.Command):
    """A command whose expected failures end in one clear line and exit 1, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.BadParameter as exc:  # raised by a command after parsing: one line, not the usage
            raise click.ClickException(exc.format_message()) from None
        except Exception as exc:
            message = _one_line(exc, ctx)
            if message is None:
                raise  # a bug: its traceback is what a developer needs
            raise click.ClickException(message) from None


class Group(AppGroup):
    """A command group whose commands are `Command`s."""

    command_class = Command


def _one_line(exc: Exception, ctx: click.Context) -> str | None:
    """What to tell the operator about exc, or None for an unexpected error."""
    from .accounts import AccountError
    from .backup import BackupError
    from .ingest.sources import SourceInputError
    from .xapi import XError

    if isinstance(exc, SQLAlchemyError):
        return database_problem(exc, _database_url(ctx))
    if isinstance(exc, (SourceInputError, AccountError, BackupError, XError)):
        return str(exc)
    return None


def _database_url(ctx: click.Context) -> str | None:
    try:
        return ctx.ensure_object(ScriptInfo).load_app().config["FEEDAPP_DATABASE_URL"]
    except Exception:  # noqa: BLE001 - only used to name the database in a message
        return None


def database_problem(exc: SQLAlchemyError, url: str | None) -> str:
    """One line naming the database (never its password), what is wrong, and what to do."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    where = make_url(url).render_as_string(hide_password=True) if url else "FEEDAPP_DATABASE_URL"
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    detail = (str(orig).strip().splitlines() or [type(orig).__name__])[0].strip()
    lowered = detail.lower()
    # SQLite says "no such table/column"; PostgreSQL sends SQLSTATE 42P01 / 42703 (undefined table / column).
    if "no such table" in lowered or "no such column" in lowered or getattr(orig, "sqlstate", None) in ("42P01", "42703"):
        return f"the database at {where} has no feedapp schema or an old one ({detail}): run `flask --app feedapp db upgrade` first"
    if "database is locked" in lowered:
        return f"the database at {where} stayed locked by another writer: try again ({detail})"
    if (isinstance(exc, DBAPIError) and exc.connection_invalidated) or _is_connect_error(exc, lowered):
        return f"cannot reach the database at {where} ({detail}): check FEEDAPP_DATABASE_URL and that the database is up"
    return f"database error at {where} ({type(orig).__name__}: {detail})"


def _is_connect_error(exc: SQLAlchemyError, lowered: str) -> bool:
    from sqlalchemy.exc import InterfaceError, OperationalError

    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    return any(text in lowered for text in (
        "unable to open database file", "connection", "could not translate host name", "timeout expired",
        "does not exist", "password authentication failed", "no password supplied", "server closed",
    ))


db_cli = Group("db", help="Database schema and backups.")
offices_cli = Group("offices", help="Local sites (offices).")
sources_cli = Group("sources", help="Followed X accounts.")
users_cli = Group("users", help="Staff accounts.")


def init_app(app: Flask) -> None:
    """Register every command group on app."""
    for group in (db_cli, offices_cli, sources_cli, users_cli):
        app.cli.add_command(group)
    app.cli.add_command(poll_command)
    app.cli.add_command(assets_command)
    app.cli.add_command(demo_command)


def _sessions():
    return db.sessions(current_app)


def _client():
    from .ingest.ratelimits import DbRateLimits
    from .xapi import XClient, XSettings

    settings = XSettings.from_config(current_app.config)
    if not (settings.has_app_auth or settings.has_user_auth):
        raise click.ClickException(
            "no X credentials: set FEEDAPP_X_BEARER_TOKEN (and the FEEDAPP_X_CONSUMER_*/ACCESS_* "
            "keys for protected accounts); `demo` loads sample data without them"
        )
    return XClient(settings, DbRateLimits(_sessions()))


@db_cli.command("upgrade")
def upgrade_command():
    """Create or migrate the schema to the current version (safe on every start); writes the secret key once."""
    url = current_app.config["FEEDAPP_DATABASE_URL"]
    migrate.upgrade(url)
    if ensure_secret_key(current_app.instance_path):
        click.echo(f"wrote a new secret key to {current_app.instance_path}/secret_key")
    click.echo(f"database at revision {migrate.current_revision(url)}")


@db_cli.command("current")
def current_command():
    """Print the schema revision the database is on."""
    click.echo(migrate.current_revision(current_app.config["FEEDAPP_DATABASE_URL"]) or "no schema")


@db_cli.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="replace PATH if it exists")
def backup_command(path: Path, force: bool):
    """Write a consistent copy of the SQLite database to PATH while the app and poller run.

    On PostgreSQL, prints the pg_dump and pg_restore commands to use instead and exits 1.
    """
    from .backup import backup_sqlite, postgres_instructions, sqlite_file

    url = current_app.config["FEEDAPP_DATABASE_URL"]
    db_file = sqlite_file(url)
    if db_file is None:
        for line in postgres_instructions(url, str(path)):
            click.echo(line, err=True)
        sys.exit(1)
    info = backup_sqlite(db_file, path, overwrite=force)
    click.echo(f"backed up {db_file} to {info.path}: {info.size / 1e6:.1f} MB, revision {info.revision}, "
               f"{info.posts} posts, integrity ok")


@offices_cli.command("add")
@click.argument("slug")
@click.argument("name")
def add_office(slug: str, name: str):
    """Create an office: SLUG is its URL name (a-z, 0-9, -), NAME what readers see."""
    if not SLUG_RE.match(slug):
        raise click.BadParameter("use lower-case letters, digits and - (at most 63)", param_hint="SLUG")
    if not name.strip() or len(name) > 200:
        raise click.BadParameter("give a name of 1-200 characters", param_hint="NAME")
    with _sessions()() as session:
        if office_by_slug(session, slug) is not None:
            raise click.ClickException(f"office {slug!r} exists already")
        session.add(Office(slug=slug, name=name.strip()))
        bump_content_version(session)  # the office menu and the OPML list change
        session.commit()
    click.echo(f"added office {slug}: {name.strip()}")


@offices_cli.command("list")
def list_offices():
    """List offices with their number of sources."""
    with _sessions()() as session:
        offices = all_offices(session)
        for office in offices:
            click.echo(f"{office.slug}\t{office.name}\t{len(office.sources)} sources")
        if not offices:
            click.echo("no offices yet: `offices add SLUG NAME`")


@sources_cli.command("add")
@click.argument("usernames", nargs=-1, required=True, metavar="USERNAME...")
@click.option("--office", "office_slug", metavar="SLUG", help="local office; omit for company-wide")
@click.option("--staff-only", is_flag=True, help="show their posts to signed-in staff only")
def add_sources_command(usernames: tuple[str, ...], office_slug: str | None, staff_only: bool):
    """Follow X accounts (or update the settings of ones already followed), looked up 100 per call.

    The accounts X resolves are added; each one it does not is named with X's
    reason, and the command then exits 1.
    """
    from .ingest.sources import add_sources

    with _sessions()() as session:
        report = add_sources(session, _client(), list(usernames), office_slug, staff_only)
        session.commit()
        for verb, sources in (("added", report.added), ("updated", report.updated)):
            for source in sources:
                where = f"office {source.office.slug}" if source.office else "company-wide"
                flags = (" (protected on X: staff-only)" if source.protected
                         else " (staff-only)" if source.staff_only else "")
                click.echo(f"{verb} @{source.username}: {where}{flags}")
    for name, reason in report.refused:
        click.echo(f"{name}: {reason}", err=True)
    if report.refused:
        done = len(report.added) + len(report.updated)
        raise click.ClickException(f"{len(report.refused)} not added ({done} added or updated)")


@sources_cli.command("list")
def list_sources():
    """List followed accounts with their poll state and the X rate limits in force."""
    from .ingest.ratelimits import current_windows
    from .xapi import XError, XSettings
    from .xapi.client import XClient
    from .xapi.limits import TIMELINES

    client = XClient(XSettings.from_config(current_app.config))
    keys = {}
    for protected in (False, True):
        try:
            keys[protected] = client.rate_key(TIMELINES, protected)
        except XError:
            pass  # no credential for it here: the poller could not call either
    client.close()
    with _sessions()() as session:
        sources = all_sources(session)
        windows = current_windows(session)
        _print_sources(sources, {w.key: w for w in windows if w.blocked}, keys)
    for window in windows:
        click.echo(f"X rate limit: {window.words()}")


def _print_sources(sources, blocked: dict, keys: dict) -> None:
    for s in sources:
        scope = s.office.slug if s.office else "company-wide"
        flags = ",".join(f for f, on in (("protected", s.protected), ("staff-only", s.staff_only)) if on) or "public"
        state = f"ok at {s.last_success_at:%Y-%m-%d %H:%M}" if s.last_success_at else "never polled"
        if s.last_error:
            state = f"error x{s.error_count}: {s.last_error}"
        if (window := blocked.get(keys.get(s.protected))) is not None:
            state = f"{state}; {window.words()}"
        due = f"next {s.next_check_at:%Y-%m-%d %H:%M:%S}" if s.next_check_at else "due now"
        click.echo(f"@{s.username}\t{scope}\t{flags}\t{state}\t{due}")
    if not sources:
        click.echo("no sources yet: `sources add USERNAME`")


@sources_cli.command("remove")
@click.argument("username")
def remove_source_command(username: str):
    """Stop following an account and delete its stored posts."""
    from .ingest.sources import remove_source

    with _sessions()() as session:
        source = remove_source(session, username)
        session.commit()
    click.echo(f"removed @{source.username}")


def _external_url(endpoint: str, **values) -> str:
    """An absolute URL from the command line: the public address (config.public_base_url), else `make run`'s."""
    from flask import url_for

    from .config import public_base_url

    base = public_base_url(current_app.config) or "http://127.0.0.1:5000"
    with current_app.test_request_context(base_url=base):
        return url_for(endpoint, _external=True, **values)


def _user_or_fail(session, username: str):
    from .accounts import user_by_username

    user = user_by_username(session, username)
    if user is None:
        raise click.ClickException(f"no user {username!r}; create it with `users add {username}`")
    return user


@users_cli.command("add")
@click.argument("username")
@click.option("--admin", is_flag=True, help="may manage staff accounts")
@click.option("--office", "office_slug", metavar="SLUG", help="the user's office; omit for company-wide only")
@click.option("--name", "display_name", default="", help="the name shown to others (default: the username)")
def add_user(username: str, admin: bool, office_slug: str | None, display_name: str):
    """Create a staff account and print its one-time invite URL."""
    from . import accounts

    with _sessions()() as session:
        office = None
        if office_slug:
            office = office_by_slug(session, office_slug)
            if office is None:
                raise click.ClickException(f"no office {office_slug!r}; create it with `offices add {office_slug} NAME`")
        user = accounts.create_user(session, username, display_name, office, admin)
        token = accounts.issue_invite(session, user, timedelta(days=current_app.config["FEEDAPP_INVITE_DAYS"]))
        accounts.audit(session, "cli", "create_user", user.username, f"office={office_slug or '-'} admin={admin}")
        session.commit()
        click.echo(f"created {user.username}{' (admin)' if admin else ''}; invite, valid "
                   f"{current_app.config['FEEDAPP_INVITE_DAYS']} days:")
        click.echo(_external_url("auth.accept_invite", token=token))


@users_cli.command("set-password")
@click.argument("username")
def set_password_command(username: str):
    """Read a new password from standard input (for scripts); signs the user out everywhere."""
    from . import accounts

    password = sys.stdin.readline().rstrip("\r\n")
    with _sessions()() as session:
        user = _user_or_fail(session, username)
        accounts.set_password(session, user, password)
        accounts.audit(session, "cli", "set_password", user.username)
        session.commit()
    click.echo(f"password set for {user.username}")


@users_cli.command("feed-url")
@click.argument("username")
def feed_url_command(username: str):
    """Print new private RSS URLs of a user (company-wide, their office, staff-only posts).

    Tokens are stored hashed, so each call makes a new one: earlier URLs stop working.
    """
    from . import accounts

    with _sessions()() as session:
        user = _user_or_fail(session, username)
        if not user.active:
            raise click.ClickException(f"{user.username} is switched off")
        token = accounts.rotate_feed_token(session, user)
        accounts.audit(session, "cli", "rotate_feed_token", user.username)
        session.commit()
    click.echo(_external_url("feeds.show_private_feed", token=token, fmt="rss"))


@users_cli.command("list")
def list_users_command():
    """List staff accounts."""
    from sqlalchemy import select

    from .models import User

    with _sessions()() as session:
        for user in session.scalars(select(User).order_by(User.username)):
            state = "switched off" if not user.active else "active" if user.password_hash else "invited"
            office = user.office.slug if user.office else "company-wide"
            click.echo(f"{user.username}\t{office}\t{'admin' if user.is_admin else 'staff'}\t{state}")


@click.command("poll", cls=Command)
@with_appcontext
@click.option("--loop", is_flag=True, help="poll forever, every FEEDAPP_POLL_INTERVAL seconds")
@click.option("--all", "everything", is_flag=True, help="poll every source that may be called now, due or not")
def poll_command(loop: bool, everything: bool):
    """Run a poll cycle of every due source, printing a line per source.

    Holds the poller lease (renewed while it works) so only one poller runs;
    sources behind a known X rate limit are not called until its reset.
    """
    from .ingest import lease
    from .ingest.poll import PollSettings, poll_cycle

    client = _client()
    settings = PollSettings.from_config(current_app.config)
    sessions = _sessions()
    keeper = lease.LeaseKeeper(sessions, lease.holder_name(), lease.TTL)
    if threading.current_thread() is threading.main_thread():
        # systemd and process managers stop with SIGTERM: exit through `finally` to free the lease.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            started = time.monotonic()
            busy = _hold(keeper, loop)
            if busy is not None:
                if not loop:
                    raise click.ClickException(f"not polling: {busy}")
                click.echo(f"waiting: {busy}")
            else:
                try:
                    summary = poll_cycle(sessions, client, settings, everything=everything, stop=keeper.lost)
                except SQLAlchemyError as exc:
                    if not loop:
                        raise
                    click.echo(f"cycle failed, retrying next interval: "
                               f"{database_problem(exc, current_app.config['FEEDAPP_DATABASE_URL'])}", err=True)
                else:
                    for line in summary.lines():
                        click.echo(line)
            if not loop:
                return
            time.sleep(max(1.0, settings.interval - (time.monotonic() - started)))
    finally:
        keeper.release()
        client.close()


def _hold(keeper, loop: bool):
    """Take or keep the lease; in --loop a database outage is waited out, not fatal."""
    try:
        return keeper.hold()
    except SQLAlchemyError as exc:
        if not loop:
            raise
        return database_problem(exc, current_app.config["FEEDAPP_DATABASE_URL"])


@click.command("assets", cls=Command)
@with_appcontext
def assets_command():
    """Build fingerprinted, pre-compressed static files into static/dist/."""
    from . import assets

    manifest = assets.build(Path(current_app.static_folder))
    click.echo(f"built {len(manifest)} static files into static/{assets.DIST}/")


@click.command("demo", cls=Command)
@with_appcontext
def demo_command():
    """Load the bundled demo company through the normal normalize-and-store path."""
    from .ingest.demo import load_demo

    with _sessions()() as session:
        lines = load_demo(session)
    for line in lines:
        click.echo(line)
