"""`survey …`: the one-question staff survey (the console's twin, through feedapp.survey)."""

from __future__ import annotations

import click

from .. import survey as surveys
from ..queries import office_by_slug
from ..roles import Actor
from .base import Group, sessions

survey_cli = Group("survey", help="The one-question staff survey: start, close, results.")
OFFICE_HELP = "the survey of this office (default: the company's)"


def _office(session, slug: str | None):
    if slug is None:
        return None
    office = office_by_slug(session, slug)
    if office is None:
        raise click.ClickException(f"no office {slug!r}")
    return office


@survey_cli.command("start")
@click.argument("question")
@click.option("--option", "options", multiple=True, metavar="TEXT", help="an answer to choose (2 to 5 of them)")
@click.option("--office", "office_slug", metavar="SLUG", help="ask this office's readers only (default: everyone)")
def start_survey(question: str, options: tuple[str, ...], office_slug: str | None):
    """Ask one question: a card at the top of the feed until each reader answers or it is closed."""
    with sessions()() as session:
        office = _office(session, office_slug)
        survey = surveys.start(session, Actor.cli(), question, list(options), office)
        session.commit()
        click.echo(f"survey {survey.id} open for {office.slug if office else 'the company'}: {survey.question}")


@survey_cli.command("close")
@click.option("--office", "office_slug", metavar="SLUG", help=OFFICE_HELP)
def close_survey(office_slug: str | None):
    """End the open survey: its card leaves the feed; its results stay."""
    with sessions()() as session:
        survey = surveys.close_open(session, Actor.cli(), _office(session, office_slug))
        session.commit()
        click.echo(f"survey {survey.id} closed")


@survey_cli.command("results")
@click.option("--office", "office_slug", metavar="SLUG", help=OFFICE_HELP)
@click.option("--csv", "as_csv", is_flag=True, help="as CSV: question, option, count, percentage")
def survey_results(office_slug: str | None, as_csv: bool):
    """The counts of the open survey (else the latest closed one), once at least 5 have answered."""
    with sessions()() as session:
        office = _office(session, office_slug)
        survey = surveys.latest_survey(session, office.id if office else None)
        if survey is None:
            raise click.ClickException(f"no survey yet for {office.slug if office else 'the company'}")
        res = surveys.results(session, survey)
    if not res.shown:
        # Not even the exact number: with fewer than 5, who answered what could be worked out.
        raise click.ClickException(f"survey {survey.id}: fewer than {surveys.RESULTS_MIN} answers so far, "
                                   "no results yet")
    if as_csv:
        click.echo(surveys.results_csv(res), nl=False)
        return
    state = "closed" if survey.closed_at else "open"
    click.echo(f"survey {survey.id} ({state}): {survey.question}")
    for text, count, percent in res.rows():
        click.echo(f"{count:>6}  {percent:5.1f}%  {text}")
    click.echo(f"{res.total:>6}  answers")
