"""`users …`: staff accounts, their passwords and private feed links."""

from __future__ import annotations

import sys
from datetime import timedelta

import click
from flask import current_app

from ..models import ROLE_ADMIN, ROLE_EDITOR, ROLE_STAFF, ROLES
from ..queries import office_by_slug
from .base import Group, external_url, sessions

users_cli = Group("users", help="Staff accounts.")


def _user_or_fail(session, username: str):
    from ..accounts import user_by_username

    user = user_by_username(session, username)
    if user is None:
        raise click.ClickException(f"no user {username!r}; create it with `users add {username}`")
    return user


@users_cli.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default=None,
              help="staff (reads), editor (posts and sources; of --office only, when given), admin (everything)")
@click.option("--admin", is_flag=True, help="same as --role admin")
@click.option("--office", "office_slug", metavar="SLUG", help="the user's office; omit for company-wide only")
@click.option("--name", "display_name", default="", help="the name shown to others (default: the username)")
def add_user(username: str, role: str | None, admin: bool, office_slug: str | None, display_name: str):
    """Create a staff account and print its one-time invite URL."""
    if admin and role not in (None, ROLE_ADMIN):
        raise click.BadParameter("--admin means --role admin", param_hint="--role")
    role = ROLE_ADMIN if admin else role or ROLE_STAFF
    from .. import accounts

    with sessions()() as session:
        office = None
        if office_slug:
            office = office_by_slug(session, office_slug)
            if office is None:
                raise click.ClickException(f"no office {office_slug!r}; create it with `offices add {office_slug} NAME`")
        user = accounts.create_user(session, username, display_name, office, role)
        token = accounts.issue_invite(session, user, timedelta(days=current_app.config["FEEDAPP_INVITE_DAYS"]))
        accounts.audit(session, "cli", "create_user", user.username, f"office={office_slug or '-'} role={role}")
        session.commit()
        scope = f" of {office_slug}" if role == ROLE_EDITOR and office_slug else ""
        click.echo(f"created {user.username}{'' if role == ROLE_STAFF else f' ({role}{scope})'}; invite, valid "
                   f"{current_app.config['FEEDAPP_INVITE_DAYS']} days:")
        click.echo(external_url("auth.accept_invite", token=token))


@users_cli.command("set-password")
@click.argument("username")
def set_password_command(username: str):
    """Read a new password from standard input (for scripts); signs the user out everywhere."""
    from .. import accounts

    password = sys.stdin.readline().rstrip("\r\n")
    with sessions()() as session:
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
    from .. import accounts

    with sessions()() as session:
        user = _user_or_fail(session, username)
        if not user.active:
            raise click.ClickException(f"{user.username} is switched off")
        token = accounts.rotate_feed_token(session, user)
        accounts.audit(session, "cli", "rotate_feed_token", user.username)
        session.commit()
    click.echo(external_url("feeds.show_private_feed", token=token, fmt="rss"))


@users_cli.command("list")
def list_users_command():
    """List staff accounts."""
    from sqlalchemy import select

    from ..models import User

    with sessions()() as session:
        for user in session.scalars(select(User).order_by(User.username)):
            state = "switched off" if not user.active else "active" if user.password_hash else "invited"
            office = user.office.slug if user.office else "company-wide"
            click.echo(f"{user.username}\t{office}\t{user.role}\t{state}")
