"""`stats [--days N]`: anonymous readership and acknowledgement counts (what the console's Reach area shows)."""

from __future__ import annotations

from datetime import datetime, timezone

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from .. import mustread
from .. import reach_report as report
from ..models import Office
from ..roles import Actor
from .base import Command, sessions


def number(n: int | None) -> str:
    """A count as shown: "<5" for 1 to 4 (never an exact small number)."""
    return "<5" if n is None else str(n)


def groups(items, names: dict) -> str:
    """"lyon 12, company feed 7, other <5"."""
    return ", ".join(f"{names.get(key, 'other' if key == report.OTHER else f'office #{key}')} {number(n)}"
                     for key, n in items)


ACK_POSTS = 20  # the latest must-reads listed


def ack_groups(groups) -> str:
    """"Lyon 6/6, no office 5/7, other <5": a group under 5 people shows no number."""
    parts = []
    for g in groups:
        name = g.name if g.kind == "office" else g.kind.replace("_", " ")
        parts.append(f"{name} <5" if g.few else f"{name} {g.acknowledged}/{g.in_scope}")
    return ", ".join(parts)


@click.command("stats", cls=Command)
@with_appcontext
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 400),
              help="the last N UTC days, today included")
def stats_command(days: int):
    """Anonymous readership (views, post pages opened, feed readers) and must-read acknowledgements.

    Counts only, never a reader: groups under 5 are merged into "other" and any count from 1 to 4 is
    printed as "<5".
    """
    now = datetime.now(timezone.utc)
    start, end = report.period(days, now.date())
    with sessions()() as session:
        names = {office.id: office.slug for office in session.scalars(select(Office))}
        names[report.COMPANY] = "company-feed"
        click.echo(f"Readership {start} to {end} (UTC). Groups under 5 are merged into \"other\"; "
                   f"counts from 1 to 4 print as <5.")
        click.echo("\nPosts (views, opens of the post page, views by office feed):")
        posts = report.post_reach(session, start, end)
        for row in posts:
            text = " ".join(row.post.text.split())[:50]
            click.echo(f"  {row.post.id}\t@{row.post.source.username}\tviews {number(row.views)}\t"
                       f"opens {number(row.opens)}\t[{groups(row.by_office, names)}]\t{text}")
        if not posts:
            click.echo("  no views or opens counted")
        click.echo("\nOffice feeds (views):")
        for key, n in report.office_totals(session, start, end) or [(report.COMPANY, 0)]:
            click.echo(f"  {groups([(key, n)], names)}")
        click.echo(f"Post pages opened: {number(report.opens_total(session, start, end))}")
        click.echo("\nFeed readers per day (distinct clients; aggregators' subscribers):")
        feeds = report.feed_readers(session, start, end)
        for day in feeds:
            aggregators = "".join(f"\t{name} {number(n)}" for name, n in day.aggregators)
            click.echo(f"  {day.day}\t{day.feed}\treaders {number(day.readers)}{aggregators}")
        if not feeds:
            click.echo("  no feed fetched")
        # The console's figures (feedapp.mustread.ack_counts): acknowledged / staff in scope per office.
        click.echo("\nMust-read acknowledgements (acknowledged / staff in scope, by office):")
        marks = mustread.must_read_list(session, Actor.cli(), limit=ACK_POSTS)
        for mark, post in marks:
            text = " ".join(post.text.split())[:50]
            state = "active" if mustread.is_active(mark, now) else "ended"
            click.echo(f"  {post.id}\t{state}\t[{ack_groups(mustread.ack_counts(session, post.id))}]\t{text}")
        if not marks:
            click.echo("  no must-read posts")
