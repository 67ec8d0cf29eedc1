"""`screens …`: break-room screens (signage players) and their URLs."""

from __future__ import annotations

import click

from ..queries import office_by_slug
from ..roles import Actor
from .base import Group, external_url, sessions

screens_cli = Group("screens", help="Break-room screens: a page and a feed for signage players.")


@screens_cli.command("add")
@click.argument("name")
@click.option("--office", "office_slug", metavar="SLUG", help="show this office's posts too (default: company-wide only)")
@click.option("--staff-only", is_flag=True, help="a screen inside the premises: staff-only posts too")
def add_screen_command(name: str, office_slug: str | None, staff_only: bool):
    """Create a screen and print its URL (shown this once: the token is stored hashed)."""
    from .. import screens

    with sessions()() as session:
        office = None
        if office_slug:
            office = office_by_slug(session, office_slug)
            if office is None:
                raise click.ClickException(f"no office {office_slug!r}; create it with `offices add {office_slug} NAME`")
        screen, token = screens.add_screen(session, Actor.cli(), name, office, staff_only)
        session.commit()
        click.echo(f"screen {screen.name} ({_scope(office_slug, staff_only)}); open on the player, keep it secret:")
        click.echo(external_url("screens.show_screen", token=token))
        click.echo(f"RSS for players that only read feeds: {external_url('screens.show_screen_feed', token=token)}")


@screens_cli.command("list")
def list_screens_command():
    """List screens: name, scope and when each last fetched."""
    from .. import screens

    with sessions()() as session:
        rows = screens.list_screens(session, Actor.cli())
        if not rows:
            click.echo("no screens; add one with `screens add NAME`")
        for screen in rows:
            office = screen_office_slug(session, screen)
            seen = screen.last_seen_at.strftime("%Y-%m-%d %H:%M UTC") if screen.last_seen_at else "never fetched"
            click.echo(f"{screen.name}\t{_scope(office, screen.staff_only)}\tlast fetched {seen}")


@screens_cli.command("remove")
@click.argument("name")
def remove_screen_command(name: str):
    """Revoke a screen at once: its URL answers 404 from now on."""
    from .. import screens

    with sessions()() as session:
        screen = screens.screen_by_name(session, Actor.cli(), name)
        shown = screen.name
        screens.remove_screen(session, Actor.cli(), screen)
        session.commit()
    click.echo(f"screen {shown} removed; its URL no longer works")


def screen_office_slug(session, screen) -> str | None:
    """The slug of the screen's office, if it has one."""
    from ..models import Office

    office = session.get(Office, screen.office_id) if screen.office_id else None
    return office.slug if office else None


def _scope(office_slug: str | None, staff_only: bool) -> str:
    scope = f"company-wide + {office_slug}" if office_slug else "company-wide"
    return scope + (", staff-only posts too" if staff_only else ", public posts only")
