"""/admin/reach: anonymous readership over the last days: per post, per office feed, per feed (feedapp.reach_report).

Counts only, never a reader; groups under 5 are merged and small counts shown as "fewer than 5". An office
editor sees their office's and the company-wide posts, and the company's and their office's feeds.
"""

from __future__ import annotations

from datetime import datetime, timezone

from flask import render_template, request
from flask_babel import gettext, lazy_gettext as _l

from feedapp import reach_report as report
from feedapp.db import get_session

from ..state import content_state
from . import actor, area, bp

PERIODS = (1, 7, 30, 90)


@bp.get("/reach")
def show_reach():
    """Views, opens and feed readers of the last N days (7 unless ?days= names another period)."""
    days = request.args.get("days", 7, type=int)
    if days not in PERIODS:
        days = 7
    start, end = report.period(days, datetime.now(timezone.utc).date())
    db, who, state = get_session(), actor(), content_state()
    slugs = {o.id: o.slug for o in state.offices}
    return render_template(
        "admin/reach.html", days=days, periods=PERIODS, start=start, end=end,
        posts=report.post_reach(db, start, end, who),
        offices=report.office_totals(db, start, end, who),
        opens=report.opens_total(db, start, end, who),
        feeds=report.feed_readers(db, start, end, report.feed_keys(who, slugs)),
        office_name=_office_name, feed_name=_feed_name,
    )


@bp.app_template_global()
def reach_totals(posts) -> dict[int, tuple[int | None, int | None]]:
    """{post id: (views, opens)} of the last 7 days for a list of posts (the console's post list shows them)."""
    start, end = report.period(7, datetime.now(timezone.utc).date())
    return report.post_totals(get_session(), [p.id for p in posts], start, end) if posts else {}


def _office_name(key) -> str:
    """A group of views: an office's name, the company feed, or the merged small ones."""
    if key == report.COMPANY:
        return gettext("Company feed")
    office = content_state().by_id.get(key) if key != report.OTHER else None
    return office.name if office else gettext("Other offices")


def _feed_name(key: str) -> str:
    """A feed's name from its key ("company", "office:SLUG", "local:SLUG", "private")."""
    kind, _, slug = key.partition(":")
    office = content_state().by_slug.get(slug)
    name = office.name if office else slug
    if kind == "office":
        return gettext("Company-wide posts and %(office)s", office=name)
    if kind == "local":
        return gettext("%(office)s only", office=name)
    if kind == "private":
        return gettext("Staff members' private feeds")
    return gettext("Company-wide posts")


area("show_reach", _l("Reach"))
