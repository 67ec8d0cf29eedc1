"""The `flask --app feedapp …` commands of CONTRACT.md, thin over ingest and queries."""

from __future__ import annotations

import re
import signal
import sys
import time
from datetime import timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from . import db, migrate
from .config import ensure_secret_key
from .ingest.store import bump_content_version
from .models import Office
from .queries import all_offices, all_sources

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

db_cli = AppGroup("db", help="Database schema.")
offices_cli = AppGroup("offices", help="Local sites (offices).")
sources_cli = AppGroup("sources", help="Followed X accounts.")
users_cli = AppGroup("users", help="Staff accounts.")


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
    from .xapi import XClient, XSettings

    settings = XSettings.from_config(current_app.config)
    if not (settings.has_app_auth or settings.has_user_auth):
        raise click.ClickException(
            "no X credentials: set FEEDAPP_X_BEARER_TOKEN (and the FEEDAPP_X_CONSUMER_*/ACCESS_* "
            "keys for protected accounts); `demo` loads sample data without them"
        )
    return XClient(settings)


def _database_error(exc: SQLAlchemyError) -> click.ClickException:
    return click.ClickException(
        f"database not ready ({type(exc).__name__}): run `flask --app feedapp db upgrade` first"
    )


@db_cli.command("upgrade")
def upgrade_command():
    """Create or migrate the schema to the current version (safe on every start)."""
    if ensure_secret_key(current_app.instance_path):
        click.echo(f"wrote a new secret key to {current_app.instance_path}/secret_key")
    url = current_app.config["FEEDAPP_DATABASE_URL"]
    migrate.upgrade(url)
    click.echo(f"database at revision {migrate.current_revision(url)}")


@db_cli.command("current")
def current_command():
    """Print the schema revision the database is on."""
    click.echo(migrate.current_revision(current_app.config["FEEDAPP_DATABASE_URL"]) or "no schema")


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
        try:
            session.add(Office(slug=slug, name=name.strip()))
            bump_content_version(session)  # the office menu and the OPML list change
            session.commit()
        except IntegrityError:
            raise click.ClickException(f"office {slug!r} exists already") from None
        except SQLAlchemyError as exc:
            raise _database_error(exc) from None
    click.echo(f"added office {slug}: {name.strip()}")


@offices_cli.command("list")
def list_offices():
    """List offices with their number of sources."""
    with _sessions()() as session:
        try:
            offices = all_offices(session)
        except SQLAlchemyError as exc:
            raise _database_error(exc) from None
        for office in offices:
            click.echo(f"{office.slug}\t{office.name}\t{len(office.sources)} sources")
        if not offices:
            click.echo("no offices yet: `offices add SLUG NAME`")


@sources_cli.command("add")
@click.argument("username")
@click.option("--office", "office_slug", metavar="SLUG", help="local office; omit for company-wide")
@click.option("--staff-only", is_flag=True, help="show its posts to signed-in staff only")
def add_source_command(username: str, office_slug: str | None, staff_only: bool):
    """Follow an X account (or update the settings of one already followed)."""
    from .ingest.sources import SourceInputError, add_source
    from .xapi import XError

    with _sessions()() as session:
        try:
            source, created = add_source(session, _client(), username, office_slug, staff_only)
            session.commit()
        except SourceInputError as exc:
            raise click.ClickException(str(exc)) from None
        except XError as exc:
            raise click.ClickException(f"@{username.lstrip('@')} not added: {exc}") from None
        except SQLAlchemyError as exc:
            raise _database_error(exc) from None
        where = f"office {source.office.slug}" if source.office else "company-wide"
        flags = " (protected on X: staff-only)" if source.protected else " (staff-only)" if source.staff_only else ""
        click.echo(f"{'added' if created else 'updated'} @{source.username}: {where}{flags}")


@sources_cli.command("list")
def list_sources():
    """List followed accounts with their poll state."""
    with _sessions()() as session:
        try:
            sources = all_sources(session)
        except SQLAlchemyError as exc:
            raise _database_error(exc) from None
        for s in sources:
            scope = s.office.slug if s.office else "company-wide"
            flags = ",".join(f for f, on in (("protected", s.protected), ("staff-only", s.staff_only)) if on) or "public"
            state = f"ok at {s.last_success_at:%Y-%m-%d %H:%M}" if s.last_success_at else "never polled"
            if s.last_error:
                state = f"error x{s.error_count}: {s.last_error}"
            due = f"next {s.next_check_at:%Y-%m-%d %H:%M:%S}" if s.next_check_at else "due now"
            click.echo(f"@{s.username}\t{scope}\t{flags}\t{state}\t{due}")
        if not sources:
            click.echo("no sources yet: `sources add USERNAME`")


@sources_cli.command("remove")
@click.argument("username")
def remove_source_command(username: str):
    """Stop following an account and delete its stored posts."""
    from .ingest.sources import SourceInputError, remove_source

    with _sessions()() as session:
        try:
            source = remove_source(session, username)
            session.commit()
        except SourceInputError as exc:
            raise click.ClickException(str(exc)) from None
        except SQLAlchemyError as exc:
            raise _database_error(exc) from None
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
    from .queries import office_by_slug

    with _sessions()() as session:
        office = None
        if office_slug:
            office = office_by_slug(session, office_slug)
            if office is None:
                raise click.ClickException(f"no office {office_slug!r}; create it with `offices add {office_slug} NAME`")
        try:
            user = accounts.create_user(session, username, display_name, office, admin)
            token = accounts.issue_invite(session, user, timedelta(days=current_app.config["FEEDAPP_INVITE_DAYS"]))
            accounts.audit(session, "cli", "create_user", user.username, f"office={office_slug or '-'} admin={admin}")
            session.commit()
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from None
        except SQLAlchemyError as exc:
            raise _database_error(exc) from None
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
        try:
            accounts.set_password(session, user, password)
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from None
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


@click.command("poll")
@with_appcontext
@click.option("--loop", is_flag=True, help="poll forever, every FEEDAPP_POLL_INTERVAL seconds")
@click.option("--all", "everything", is_flag=True, help="poll every source now, due or not")
def poll_command(loop: bool, everything: bool):
    """Run a poll cycle of every due source, printing a line per source."""
    from .ingest.lease import acquire, holder_name, release
    from .ingest.poll import PollSettings, poll_cycle

    client = _client()
    settings = PollSettings.from_config(current_app.config)
    sessions = _sessions()
    holder = holder_name()
    # Long enough for a slow cycle; a crashed poller's lease lapses after it.
    ttl = timedelta(seconds=max(600, 2 * settings.interval))
    # systemd and process managers stop with SIGTERM: exit through `finally` to free the lease.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            started = time.monotonic()
            try:
                busy = acquire(sessions, holder, ttl)
            except SQLAlchemyError as exc:
                raise _database_error(exc) from None
            if busy is not None:
                if not loop:
                    raise click.ClickException(f"not polling: {busy}")
                click.echo(f"waiting: {busy}")
            else:
                try:
                    summary = poll_cycle(sessions, client, settings, everything=everything)
                except SQLAlchemyError as exc:
                    if not loop:
                        raise _database_error(exc) from None
                    click.echo(f"cycle failed, retrying next interval: {type(exc).__name__}", err=True)
                else:
                    for line in summary.lines():
                        click.echo(line)
            if not loop:
                return
            time.sleep(max(1.0, settings.interval - (time.monotonic() - started)))
    finally:
        try:
            release(sessions, holder)
        except SQLAlchemyError:
            pass  # the lease lapses by itself


@click.command("assets")
@with_appcontext
def assets_command():
    """Build fingerprinted, pre-compressed static files into static/dist/."""
    from pathlib import Path

    from . import assets

    manifest = assets.build(Path(current_app.static_folder))
    click.echo(f"built {len(manifest)} static files into static/{assets.DIST}/")


@click.command("demo")
@with_appcontext
def demo_command():
    """Load the bundled demo company through the normal normalize-and-store path."""
    from .ingest.demo import load_demo

    with _sessions()() as session:
        try:
            lines = load_demo(session)
        except SQLAlchemyError as exc:
            raise _database_error(exc) from None
    for line in lines:
        click.echo(line)
