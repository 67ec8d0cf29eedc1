"""Named reads of the readership counts (feedapp.readership) and must-read acknowledgements, for console and CLI.

One rule everywhere: a group (an office, a feed's readers, an aggregator's subscribers) counted under SMALL
is never shown alone: groups under SMALL merge into "other", and any number from 1 to SMALL - 1 is shown as
"fewer than 5", never exactly. No Flask here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from feedapp.models import FeedReader, FeedSubscribers, Post, ReadCount, Source
from feedapp.roles import Actor

SMALL = 5
OTHER = "other"  # the key of the merged small groups
COMPANY = 0  # ReadCount.office_id of the company feed


def shown(n: int) -> int | None:
    """n as it may be shown: exact from SMALL up (and 0), None for 1 to SMALL - 1 ("fewer than 5")."""
    return n if n == 0 or n >= SMALL else None


def merge_small(counts: dict) -> list[tuple[object, int | None]]:
    """(group, shown count), largest first; groups under SMALL merged into OTHER (itself shown by the same rule).

    While "other" is still under SMALL, the smallest shown group joins it too: otherwise the total minus the
    groups shown would give the small number away.
    """
    big = sorted(((k, n) for k, n in counts.items() if n >= SMALL), key=lambda kv: (-kv[1], str(kv[0])))
    other = sum(n for n in counts.values() if 0 < n < SMALL)
    while 0 < other < SMALL and big:
        other += big.pop()[1]
    return big + ([(OTHER, shown(other))] if other else [])


@dataclass
class PostReach:
    """One post's views and opens over the period, its views by office (small offices merged)."""

    post: Post
    views: int | None
    opens: int | None
    by_office: list[tuple[object, int | None]] = field(default_factory=list)


@dataclass
class FeedDay:
    """One feed on one day: distinct direct clients and each aggregator's subscribers (shown by the rule)."""

    day: date
    feed: str
    readers: int | None
    aggregators: list[tuple[str, int | None]] = field(default_factory=list)


def period(days: int, today: date) -> tuple[date, date]:
    """The first and last UTC day of the last `days` days, today included."""
    return today - timedelta(days=max(1, days) - 1), today


def _office_filter(actor: Actor | None):
    """SQL over Source: the posts whose counts the actor may see (an office editor: theirs and company-wide)."""
    if actor is None or not actor.office_only:
        return Source.id.is_not(None)
    return (Source.office_id.is_(None)) | (Source.office_id == actor.office_id)


def post_reach(session: Session, start: date, end: date, actor: Actor | None = None, limit: int = 50) -> list[PostReach]:
    """The most viewed posts of the period (in the actor's scope), with opens and views by office."""
    rows = session.execute(
        select(ReadCount.post_id, ReadCount.kind, ReadCount.office_id, func.sum(ReadCount.count))
        .join(Post, Post.id == ReadCount.post_id).join(Source, Source.id == Post.source_id)
        .where(ReadCount.day >= start, ReadCount.day <= end, _office_filter(actor))
        .group_by(ReadCount.post_id, ReadCount.kind, ReadCount.office_id)).all()
    views: dict[int, dict[int, int]] = defaultdict(dict)
    opens: dict[int, int] = defaultdict(int)
    for post_id, kind, office_id, total in rows:
        if kind == "view":
            views[post_id][office_id] = int(total)
        else:
            opens[post_id] += int(total)
    if actor is not None and actor.office_only:  # other offices' views of company-wide posts are not theirs
        views = defaultdict(dict, {p: {o: n for o, n in by.items() if o in (COMPANY, actor.office_id)}
                                   for p, by in views.items()})
    ranked = sorted(set(views) | set(opens), key=lambda p: (-sum(views[p].values()), -opens[p], -p))[:limit]
    posts = {p.id: p for p in session.scalars(select(Post).where(Post.id.in_(ranked))
                                               .options(selectinload(Post.source)))}
    return [PostReach(posts[p], shown(sum(views[p].values())), shown(opens[p]), merge_small(views[p]))
            for p in ranked if p in posts]


def post_totals(session: Session, post_ids: list[int], start: date, end: date) -> dict[int, tuple[int | None, int | None]]:
    """{post id: (views, opens)} over the period for these posts, shown by the rule; posts never counted are left out."""
    totals: dict[int, list[int]] = {}
    for post_id, kind, total in session.execute(
            select(ReadCount.post_id, ReadCount.kind, func.sum(ReadCount.count))
            .where(ReadCount.post_id.in_(post_ids), ReadCount.day >= start, ReadCount.day <= end)
            .group_by(ReadCount.post_id, ReadCount.kind)):
        totals.setdefault(post_id, [0, 0])[0 if kind == "view" else 1] += int(total)
    return {post_id: (shown(views), shown(opens)) for post_id, (views, opens) in totals.items()}


def office_totals(session: Session, start: date, end: date, actor: Actor | None = None) -> list[tuple[object, int | None]]:
    """Views per office feed over the period (0: the company feed), small offices merged into "other"."""
    stmt = (select(ReadCount.office_id, func.sum(ReadCount.count))
            .where(ReadCount.kind == "view", ReadCount.day >= start, ReadCount.day <= end)
            .group_by(ReadCount.office_id))
    if actor is not None and actor.office_only:
        stmt = stmt.where(ReadCount.office_id.in_((COMPANY, actor.office_id)))
    return merge_small({office_id: int(total) for office_id, total in session.execute(stmt)})


def opens_total(session: Session, start: date, end: date, actor: Actor | None = None) -> int | None:
    """Post pages opened over the period (of posts in the actor's scope), shown by the rule."""
    total = session.scalar(
        select(func.coalesce(func.sum(ReadCount.count), 0)).join(Post, Post.id == ReadCount.post_id)
        .join(Source, Source.id == Post.source_id)
        .where(ReadCount.kind == "open", ReadCount.day >= start, ReadCount.day <= end, _office_filter(actor)))
    return shown(int(total or 0))


def feed_keys(actor: Actor | None, slugs: dict[int, str]) -> set[str] | None:
    """The feeds whose readers the actor may see (None: all); an office editor: the company's and their office's."""
    if actor is None or not actor.office_only:
        return None
    slug = slugs.get(actor.office_id, "")
    return {"company", f"office:{slug}", f"local:{slug}"}


def feed_readers(session: Session, start: date, end: date, feeds: set[str] | None = None) -> list[FeedDay]:
    """Per feed and day, newest first: distinct direct clients, and each aggregator's subscribers."""
    readers = select(FeedReader.day, FeedReader.feed, func.count()).where(
        FeedReader.day >= start, FeedReader.day <= end).group_by(FeedReader.day, FeedReader.feed)
    subs = select(FeedSubscribers.day, FeedSubscribers.feed, FeedSubscribers.aggregator,
                  FeedSubscribers.subscribers).where(FeedSubscribers.day >= start, FeedSubscribers.day <= end)
    if feeds is not None:
        readers = readers.where(FeedReader.feed.in_(feeds))
        subs = subs.where(FeedSubscribers.feed.in_(feeds))
    days: dict[tuple[date, str], FeedDay] = {}
    for day, feed, n in session.execute(readers):
        days[(day, feed)] = FeedDay(day, feed, shown(int(n)))
    for day, feed, aggregator, n in session.execute(subs.order_by(FeedSubscribers.subscribers.desc())):
        entry = days.setdefault((day, feed), FeedDay(day, feed, 0))
        entry.aggregators.append((aggregator, shown(int(n))))
    return sorted(days.values(), key=lambda d: (-d.day.toordinal(), d.feed))


