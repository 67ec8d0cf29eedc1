"""`offices …` and `sources …`: the local sites and the followed X accounts."""

from __future__ import annotations

import re

import click
from flask import current_app

from ..queries import all_offices, all_sources
from ..roles import Actor
from ..web.i18n import SUPPORTED
from .base import Group, client, sessions

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

offices_cli = Group("offices", help="Local sites (offices).")
sources_cli = Group("sources", help="Followed X accounts.")


@offices_cli.command("add")
@click.argument("slug")
@click.argument("name")
@click.option("--language", metavar="CODE", help=f"language of its feeds and labels ({', '.join(SUPPORTED)}); "
                                                  "default: the site's")
def add_office(slug: str, name: str, language: str | None):
    """Create an office: SLUG is its URL name (a-z, 0-9, -), NAME what readers see."""
    from ..manage import offices

    if language is not None and language not in SUPPORTED:
        raise click.BadParameter(f"use one of {', '.join(SUPPORTED)}", param_hint="--language")
    if not SLUG_RE.match(slug):
        raise click.BadParameter("use lower-case letters, digits and - (at most 63)", param_hint="SLUG")
    if not name.strip() or len(name) > 200:
        raise click.BadParameter("give a name of 1-200 characters", param_hint="NAME")
    with sessions()() as session:
        try:
            offices.create_office(Actor.cli(), session, slug, name, language, languages=SUPPORTED)
        except offices.OfficeError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(f"added office {slug}: {name.strip()}" + (f" ({language})" if language else ""))


@offices_cli.command("rename")
@click.argument("slug")
@click.argument("name")
def rename_office(slug: str, name: str):
    """Change the name readers see of office SLUG (its URLs stay)."""
    from ..manage import offices

    with sessions()() as session:
        try:
            office = offices.office_by_slug_or_error(session, slug)
            offices.rename_office(Actor.cli(), session, office, name)
        except offices.OfficeError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        click.echo(f"office {slug} is now {office.name}")


@offices_cli.command("set-language")
@click.argument("slug")
@click.argument("language", required=False, metavar="[CODE]")
def set_office_language(slug: str, language: str | None):
    """Set the language of office SLUG's feeds and labels; without CODE, the site's default."""
    from ..manage import offices

    with sessions()() as session:
        try:
            office = offices.office_by_slug_or_error(session, slug)
            offices.set_office_language(Actor.cli(), session, office, language, languages=SUPPORTED)
        except offices.OfficeError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(f"office {slug}: language {language or 'the site default'}")


@offices_cli.command("set-quiet")
@click.argument("slug")
@click.argument("start", required=False, metavar="START")
@click.argument("end", required=False, metavar="END")
@click.option("--time-zone", metavar="ZONE", help="IANA time zone of the office, e.g. Europe/Paris "
                                                  "(default: FEEDAPP_TIME_ZONE; `--time-zone ''` goes back to it)")
def set_office_quiet(slug: str, start: str | None, end: str | None, time_zone: str | None):
    """Set office SLUG's push quiet hours, START and END as HH:MM local time (e.g. 21:00 07:00);
    without them, the site's (FEEDAPP_QUIET_HOURS). Pushes due meanwhile arrive at END."""
    from ..manage import offices

    if (start is None) != (end is None):
        raise click.UsageError("give both START and END, or neither")
    with sessions()() as session:
        try:
            office = offices.office_by_slug_or_error(session, slug)
            zone = office.time_zone if time_zone is None else time_zone
            offices.set_office_quiet_hours(Actor.cli(), session, office, zone, start, end)
        except offices.OfficeError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        hours = f"{office.quiet_start}-{office.quiet_end}" if office.quiet_start else "the site's quiet hours"
        click.echo(f"office {slug}: {hours}, time zone {office.time_zone or 'of the site'}")


@offices_cli.command("remove")
@click.argument("slug")
def remove_office(slug: str):
    """Delete office SLUG; refused while sources or staff accounts still belong to it."""
    from ..manage import offices

    with sessions()() as session:
        try:
            office = offices.office_by_slug_or_error(session, slug)
            offices.delete_office(Actor.cli(), session, office)
        except offices.OfficeError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(f"removed office {slug}")


@offices_cli.command("list")
def list_offices():
    """List offices with their number of sources."""
    with sessions()() as session:
        offices = all_offices(session)
        for office in offices:
            quiet = f"{office.quiet_start}-{office.quiet_end}" if office.quiet_start else "-"
            click.echo(f"{office.slug}\t{office.name}\t{office.language or '-'}\t{len(office.sources)} sources"
                       f"\tquiet {quiet} {office.time_zone or '-'}")
        if not offices:
            click.echo("no offices yet: `offices add SLUG NAME`")


@sources_cli.command("add")
@click.argument("usernames", nargs=-1, required=True, metavar="USERNAME...")
@click.option("--office", "office_slug", metavar="SLUG", help="local office; omit for company-wide")
@click.option("--staff-only", is_flag=True, help="show their posts to signed-in staff only")
@click.option("--review", is_flag=True, help="hold each new post until an editor approves it")
@click.option("--no-replies", is_flag=True, help="leave out replies to other accounts (threads stay)")
@click.option("--no-reposts", is_flag=True, help="leave out reposts (never read from X, so never billed)")
def add_sources_command(usernames: tuple[str, ...], office_slug: str | None, staff_only: bool, review: bool,
                        no_replies: bool, no_reposts: bool):
    """Follow X accounts (or update the settings of ones already followed), looked up 100 per call.

    The accounts X resolves are added; each one it does not is named with X's
    reason, and the command then exits 1. USERNAME may be @name or a profile URL.
    """
    from ..ingest.sources import SourceFlags, SourceInputError
    from ..manage import sources as manage

    flags = SourceFlags(staff_only=staff_only, review=review, no_replies=no_replies, no_reposts=no_reposts)
    with sessions()() as session:
        try:
            report = manage.add_sources(Actor.cli(), session, client(), list(usernames), office_slug, flags)
        except SourceInputError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        for verb, sources in (("added", report.added), ("updated", report.updated)):
            for source in sources:
                where = f"office {source.office.slug}" if source.office else "company-wide"
                settings = [w for w in SourceFlags.of(source).words() if w != "staff-only"]
                flags_text = (" (protected on X: staff-only)" if source.protected
                              else " (staff-only)" if source.staff_only else "")
                click.echo(f"{verb} @{source.username}: {where}{flags_text}"
                           + (f" [{', '.join(settings)}]" if settings else ""))
    for name, reason in report.refused:
        click.echo(f"{name}: {reason}", err=True)
    if report.refused:
        done = len(report.added) + len(report.updated)
        raise click.ClickException(f"{len(report.refused)} not added ({done} added or updated)")


@sources_cli.command("list")
def list_sources():
    """List followed accounts with their poll state and the X rate limits in force."""
    from ..ingest.ratelimits import current_windows
    from ..ingest.stream_status import stream_view
    from ..xapi import XError, XSettings
    from ..xapi.client import XClient
    from ..xapi.limits import TIMELINES

    client = XClient(XSettings.from_config(current_app.config))
    keys = {}
    for protected in (False, True):
        try:
            keys[protected] = client.rate_key(TIMELINES, protected)
        except XError:
            pass  # no credential for it here: the poller could not call either
    client.close()
    with sessions()() as session:
        sources = all_sources(session)
        windows = current_windows(session)
        _print_sources(sources, {w.key: w for w in windows if w.blocked}, keys)
        if sources:
            click.echo(stream_view(session, current_app.config["FEEDAPP_STREAM"], client.settings.has_app_auth,
                                   int(current_app.config["FEEDAPP_POLL_INTERVAL"])).sentence)
    for window in windows:
        click.echo(f"X rate limit: {window.words()}")


def _print_sources(sources, blocked: dict, keys: dict) -> None:
    for s in sources:
        scope = s.office.slug if s.office else "company-wide"
        flags = ",".join(f for f, on in (("protected", s.protected), ("staff-only", s.staff_only),
                                         ("review", s.review), ("no-replies", s.no_replies),
                                         ("no-reposts", s.no_reposts)) if on) or "public"
        state = f"ok at {s.last_success_at:%Y-%m-%d %H:%M}" if s.last_success_at else "never polled"
        if s.last_error:
            state = f"error x{s.error_count}: {s.last_error}"
        if (window := blocked.get(keys.get(s.protected))) is not None:
            state = f"{state}; {window.words()}"
        due = f"next {s.next_check_at:%Y-%m-%d %H:%M:%S}" if s.next_check_at else "due now"
        if s.paused:
            state, due = f"paused; {state}", "not polled"
        click.echo(f"@{s.username}\t{scope}\t{flags}\t{state}\t{due}")
    if not sources:
        click.echo("no sources yet: `sources add USERNAME`")


@sources_cli.command("remove")
@click.argument("username")
def remove_source_command(username: str):
    """Stop following an account and delete its stored posts."""
    from ..ingest.sources import SourceInputError
    from ..manage import sources as manage

    with sessions()() as session:
        try:
            source = manage.source_named(session, username)
            count = manage.remove_source(Actor.cli(), session, source)
        except SourceInputError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(f"removed @{source.username} and its {count} stored posts")
