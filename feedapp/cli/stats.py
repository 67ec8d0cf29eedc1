"""`stats [--days N]`: anonymous readership and acknowledgement counts (what the console's Reach area shows)."""

from __future__ import annotations

from datetime import datetime, timezone

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from .. import reach_report as report
from ..models import Office
from .base import Command, sessions


def number(n: int | None) -> str:
    """A count as shown: "<5" for 1 to 4 (never an exact small number)."""
    return "<5" if n is None else str(n)


def groups(items, names: dict) -> str:
    """"lyon 12, company feed 7, other <5"."""
    return ", ".join(f"{names.get(key, 'other' if key == report.OTHER else f'office #{key}')} {number(n)}"
                     for key, n in items)


@click.command("stats", cls=Command)
@with_appcontext
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 400),
              help="the last N UTC days, today included")
def stats_command(days: int):
    """Anonymous readership (views, post pages opened, feed readers) and must-read acknowledgements.

    Counts only, never a reader: groups under 5 are merged into "other" and any count from 1 to 4 is
    printed as "<5".
    """
    start, end = report.period(days, datetime.now(timezone.utc).date())
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
        # --- Must-read acknowledgements (issue 12). Read from the MustRead and Acknowledgement tables directly;
        # feedapp.mustread.ack_counts gives acknowledged / staff in scope per office where that module is present.
        click.echo("\nMust-read acknowledgements (people who tapped \"Got it\", by their office):")
        acks = report.must_read_acks(session)
        people = {**names, report.COMPANY: "no-office"}
        for row in acks:
            text = " ".join(row.post.text.split())[:50]
            click.echo(f"  {row.post.id}\tacknowledged {number(row.total)}\t[{groups(row.by_office, people)}]\t{text}")
        if not acks:
            click.echo("  no must-read posts")
