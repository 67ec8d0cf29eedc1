"""`posts …`: stored posts and what editors do to them (the console's twins, through feedapp.moderation)."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import click
from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import moderation, mustread
from ..models import MustRead, Pin, Post, Source, utcnow
from ..queries import office_by_slug, source_by_username
from ..roles import Actor
from .base import Group, sessions

posts_cli = Group("posts", help="Stored posts: list, hide, approve, pin, highlight, must-read.")


@posts_cli.command("list")
@click.option("--pending", is_flag=True, help="only posts waiting for review")
@click.option("--hidden", is_flag=True, help="only hidden posts")
@click.option("--source", "username", metavar="USERNAME", help="only this source's posts")
@click.option("--limit", default=30, show_default=True, type=click.IntRange(1, 1000))
def list_posts(pending: bool, hidden: bool, username: str | None, limit: int):
    """Recent posts, newest first, with their X ids and state (pinned, hidden, pending, shout-out, must-read)."""
    with sessions()() as session:
        stmt = select(Post).options(selectinload(Post.source).selectinload(Source.office))
        if pending:
            stmt = stmt.where(Post.pending.is_(True), Post.hidden_at.is_(None))
        if hidden:
            stmt = stmt.where(Post.hidden_at.is_not(None))
        if username:
            source = source_by_username(session, username.lstrip("@"))
            if source is None:
                raise click.ClickException(f"no source @{username.lstrip('@')}")
            stmt = stmt.where(Post.source_id == source.id)
        posts = list(session.scalars(stmt.order_by(Post.id.desc()).limit(limit)))
        pins: dict[int, list[str]] = {}
        for pin in session.scalars(select(Pin).where(Pin.post_id.in_([p.id for p in posts]))):
            pins.setdefault(pin.post_id, []).append(_pin_words(session, pin))
        now = utcnow()
        for row in session.scalars(select(MustRead).where(MustRead.post_id.in_([p.id for p in posts]))):
            words = "must-read" if mustread.is_active(row, now) else "must-read:ended"
            if mustread.is_active(row, now) and row.ends_at:
                words += f" until {row.ends_at:%Y-%m-%d %H:%M}"
            pins.setdefault(row.post_id, []).insert(0, words)
        for post in posts:
            state = [s for s, on in (("hidden", post.hidden_at is not None), ("pending", post.pending),
                                     ("shout-out", post.highlighted)) if on] + pins.get(post.id, [])
            where = post.source.office.slug if post.source.office else "company"
            text = " ".join(post.text.split())
            click.echo(f"{post.id}\t{post.created_at:%Y-%m-%d %H:%M}\t@{post.source.username}\t{where}\t"
                       f"{','.join(state) or 'published'}\t{text[:60]}")
        if not posts:
            click.echo("no posts" + (" waiting for review" if pending else ""))


def _pin_words(session, pin: Pin) -> str:
    where = "company"
    if pin.office_id is not None:
        from ..models import Office

        where = session.get(Office, pin.office_id).slug
    return f"pinned:{where}" + (f" until {pin.ends_at:%Y-%m-%d %H:%M}" if pin.ends_at else "")


def _run(action, *args, **kwargs) -> None:
    with sessions()() as session:
        outcome = action(session, Actor.cli(), *args, **kwargs)
        session.commit()
    click.echo(outcome.message)


@posts_cli.command("hide")
@click.argument("post_id", type=int)
@click.option("--reason", default="", help="why (kept in the audit log)")
def hide_post(post_id: int, reason: str):
    """Take a post off every surface at once (pages, every feed, its page, screens)."""
    _run(moderation.hide, post_id, reason)


@posts_cli.command("unhide")
@click.argument("post_id", type=int)
def unhide_post(post_id: int):
    """Put a hidden post back."""
    _run(moderation.unhide, post_id)


@posts_cli.command("approve")
@click.argument("post_id", type=int)
def approve_post(post_id: int):
    """Publish a post waiting for review."""
    _run(moderation.approve, post_id)


@posts_cli.command("pin")
@click.argument("post_id", type=int)
@click.option("--office", "office_slug", metavar="SLUG", help="pin on this office's feed (default: the company feed)")
@click.option("--until", "until", metavar="YYYY-MM-DD", help="unpin itself at the end of this day (UTC)")
def pin_post(post_id: int, office_slug: str | None, until: str | None):
    """Keep a post at the top of the company feed or of one office's feed."""
    ends_at = _end_of(until)
    with sessions()() as session:
        office = _office(session, office_slug)
        outcome = moderation.pin(session, Actor.cli(), post_id, office, ends_at)
        session.commit()
    click.echo(outcome.message + (f" until the end of {until}" if until else ""))


@posts_cli.command("unpin")
@click.argument("post_id", type=int)
@click.option("--office", "office_slug", metavar="SLUG", help="only this office's pin")
def unpin_post(post_id: int, office_slug: str | None):
    """Take a post's pins off (every feed, or one office's)."""
    with sessions()() as session:
        office = _office(session, office_slug)
        outcome = moderation.unpin(session, Actor.cli(), post_id, office, everywhere=office_slug is None)
        session.commit()
    click.echo(outcome.message)


@posts_cli.command("highlight")
@click.argument("post_id", type=int)
@click.option("--off", is_flag=True, help="take the shout-out badge off")
def highlight_post(post_id: int, off: bool):
    """Mark a post as a recognition shout-out (a badge on pages, a category in feeds)."""
    _run(moderation.highlight, post_id, not off)


@posts_cli.command("must-read")
@click.argument("post_id", type=int)
@click.option("--until", "until", metavar="YYYY-MM-DD", help="ends itself at the end of this day (UTC)")
@click.option("--end", "end", is_flag=True, help="take the must-read off")
def must_read_post(post_id: int, until: str | None, end: bool):
    """Mark a post must-read for its source's audience: top of their feed, and a push the worker sends."""
    if end and until:
        raise click.UsageError("--until and --end do not go together")
    ends_at = _end_of(until)
    with sessions()() as session:
        if end:
            outcome = mustread.end(session, Actor.cli(), post_id)
        else:
            outcome = mustread.mark(session, Actor.cli(), post_id, ends_at,
                                    remind_hours=current_app.config["FEEDAPP_MUST_READ_REMIND"])
        session.commit()
    click.echo(outcome.message + (f" until the end of {until}" if until else "")
               + ("" if end else "; the worker sends its push"))


def _end_of(until: str | None) -> datetime | None:
    """The end of that UTC day (--until YYYY-MM-DD), or None."""
    if not until:
        return None
    try:
        day = datetime.strptime(until, "%Y-%m-%d").date()
        return datetime.combine(day + timedelta(days=1), time(0), timezone.utc)
    except (ValueError, OverflowError):  # 9999-12-31 has no next day
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--until") from None


def _office(session, slug: str | None):
    if slug is None:
        return None
    office = office_by_slug(session, slug)
    if office is None:
        raise click.ClickException(f"no office {slug!r}")
    return office
