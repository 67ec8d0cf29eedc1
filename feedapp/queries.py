"""Named reads; nothing here writes."""

from __future__ import annotations

import heapq
from datetime import datetime
from functools import lru_cache
from itertools import islice

from sqlalchemy import Integer, bindparam, func, or_, select, true, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from feedapp.models import Office, Pin, Post, SeenAccount, Source
from feedapp.post_context import EVERY_SOURCE, add_context, first_appearances
from feedapp.visibility import account_hidden, posts_statement, public_source, published, visible

# A page is first looked for among the RECENT_PAGES × page-size newest posts of all sources
# (one small statement); only when they hold less than a page of the scope are the scope's
# per-source index ranges read (0: always the ranges).
RECENT_PAGES = 4
# Sources whose ranges one statement reads. SQLite refuses a compound SELECT of more than 500
# terms (SQLITE_MAX_COMPOUND_SELECT), and a statement that grows with the source count grows its
# parse, plan and parameter cost with it. On SQLite a batch is padded to the next of these sizes,
# so a handful of statement shapes serve every scope, each built once per process.
BATCH_SIZES = (16, 128)
SOURCE_BATCH = BATCH_SIZES[-1]


def sources_due(session: Session, now: datetime | None) -> list[int]:
    """Ids of sources whose next check has come (every source when now is None), oldest check first."""
    stmt = (select(Source.id).where(Source.paused.is_(False))  # a paused source is not polled
            .order_by(Source.next_check_at.is_not(None), Source.next_check_at, Source.id))
    if now is not None:
        stmt = stmt.where(or_(Source.next_check_at.is_(None), Source.next_check_at <= now))
    return list(session.scalars(stmt))


def sources_for_profile_check(session: Session, before: datetime) -> list[Source]:
    """Sources whose profile was last read before `before` (or never)."""
    stmt = select(Source).where(Source.paused.is_(False),
                                or_(Source.profile_checked_at.is_(None), Source.profile_checked_at < before))
    return list(session.scalars(stmt.order_by(Source.id)))


def seen_accounts_for_check(session: Session, before: datetime, limit: int) -> list[SeenAccount]:
    """Accounts nobody follows, not looked up since `before` (never-checked first), at most `limit`."""
    followed = select(Source.x_id)
    stmt = (select(SeenAccount).where(SeenAccount.id.not_in(followed),
                                      or_(SeenAccount.checked_at.is_(None), SeenAccount.checked_at < before))
            .order_by(SeenAccount.checked_at.is_not(None), SeenAccount.checked_at, SeenAccount.id).limit(limit))
    return list(session.scalars(stmt))


def source_by_username(session: Session, username: str) -> Source | None:
    """The source with that X username, case-insensitively."""
    return session.scalar(select(Source).where(func.lower(Source.username) == username.lower()))


def office_by_slug(session: Session, slug: str) -> Office | None:
    """The office with that slug."""
    return session.scalar(select(Office).where(Office.slug == slug))


def all_sources(session: Session) -> list[Source]:
    """Every source, company-wide first, then by office and username."""
    return list(session.scalars(select(Source).order_by(Source.office_id.is_not(None), Source.office_id, Source.username)))


def all_offices(session: Session) -> list[Office]:
    """Every office by slug."""
    return list(session.scalars(select(Office).order_by(Office.slug)))


def posts_for_feed(
    session: Session,
    office_id: int | None = None,
    *,
    staff: bool = False,
    before: int | None = None,
    limit: int = 30,
    company: bool = True,
) -> list[Post]:
    """Newest posts of company-wide sources plus office_id's, older than `before` (keyset).

    company False: office_id's own posts only (an office-only feed), without any post the
    company-wide sources carry too (see post_context.first_appearances).

    Public readers (staff False) never get a post whose source, or whose original author (a
    repost), is staff-only now, and the page still has `limit` posts when enough remain. Each
    post comes with `author_hidden` and `quote_hidden` set from the current state of the accounts
    it touches (account_hidden), which is what the renderers go by.

    The ids come from the newest posts of all sources when those hold a page of the scope (the
    usual case, whatever the number of sources), else from one index range per source of the
    scope, read in batches: the cost grows with the page size and the number of sources, never
    with the number of posts.
    """
    public = not staff
    ids: list[int] = []
    while len(ids) < limit:
        # Rows superseded by a newer copy of the same post in the scope are dropped (first_appearances);
        # a page short of them reads on below the last row read. Rarely more than one round.
        wanted = limit - len(ids)
        found = _recent_ids(session, office_id, before, wanted, public, company)
        if found is None:
            found = _newest_ids(session, scope_source_ids(session, office_id, staff=staff, company=company),
                                before, wanted, public)
        ids += first_appearances(session, found, office_id, public, company)
        if len(found) < wanted:
            break
        before = found[-1]
    if not ids:
        return []
    posts = list(session.scalars(posts_statement(public), {"ids": ids}))
    add_context(session, posts, office_id, public, company)
    return posts


def hidden_post_ids(session: Session, *, staff: bool, limit: int) -> list[int]:
    """Ids (the rows' and the posts they show) of the `limit` most recently hidden rows; public sources only unless staff."""
    stmt = select(Post.id, Post.canonical_id).where(Post.hidden_at.is_not(None))
    if not staff:
        stmt = stmt.where(public_source(Post.source_id))
    rows = session.execute(stmt.order_by(Post.hidden_at.desc(), Post.id.desc()).limit(limit)).all()
    return list(dict.fromkeys(i for row in rows for i in row if i is not None))


def pinned_ids(session: Session, office_id: int | None, *, now: datetime, company: bool = True) -> set[int]:
    """Ids of the posts pinned on the company feed and office_id's (company False: office_id's only), not ended."""
    if company:
        where = Pin.office_id.is_(None) if office_id is None else or_(Pin.office_id.is_(None), Pin.office_id == office_id)
    else:
        where = Pin.office_id == office_id
    return set(session.scalars(select(Pin.post_id).where(where, or_(Pin.ends_at.is_(None), Pin.ends_at > now))))


def pinned_posts(session: Session, office_id: int | None, *, staff: bool, now: datetime) -> list[Post]:
    """The posts pinned to the top of the company feed and of office_id's, company pins first, each in pin order.

    Pins past their end are left out (the poller deletes them and bumps the feeds), as are posts the
    reader may not see.
    """
    where = Pin.office_id.is_(None) if office_id is None else or_(Pin.office_id.is_(None), Pin.office_id == office_id)
    stmt = (select(Pin.post_id).where(where, or_(Pin.ends_at.is_(None), Pin.ends_at > now))
            .order_by(Pin.office_id.is_not(None), Pin.position, Pin.id))
    ids = list(dict.fromkeys(session.scalars(stmt)))
    if not ids:
        return []
    found = {p.id: p for p in session.scalars(posts_statement(not staff), {"ids": ids})}
    posts = [found[post_id] for post_id in ids if post_id in found]
    add_context(session, posts, office_id, not staff)
    for post in posts:
        post.pinned = True
    return posts


def post_with_thread(session: Session, post_id: int, *, staff: bool) -> Post | None:
    """One post by its X id, if this reader may see it, with its thread, reposters and parent.

    The id of a stored row, or of an original that is stored only as reposts (the newest repost
    visible to the reader stands for it). None for an unknown id and for one the reader may not see.
    """
    public = not staff
    post = session.scalars(posts_statement(public), {"ids": [post_id]}).first()
    if post is None:
        stmt = select(Post.id).where(Post.canonical_id == post_id).order_by(Post.id.desc()).limit(1)
        condition = visible(public)
        repost_id = session.scalar(stmt.where(condition) if condition is not None else stmt)
        if repost_id is None:
            return None
        post = session.scalars(posts_statement(public), {"ids": [repost_id]}).first()
        if post is None:
            return None
    add_context(session, [post], EVERY_SOURCE, public)
    return post


def scope_source_ids(session: Session, office_id: int | None, *, staff: bool, company: bool = True) -> list[int]:
    """Ids of the sources a feed draws from: company-wide ones plus one office's, most recently active first.

    company False: that office's sources only.
    """
    scope = Source.office_id.is_(None)
    if not company:
        scope = Source.office_id == office_id
    elif office_id is not None:
        scope = or_(scope, Source.office_id == office_id)
    # Most recently active first (since_id is the newest stored post): the first batch then
    # likely holds the page, and its oldest id prunes the ranges of every later batch.
    stmt = select(Source.id).where(scope).order_by(Source.since_id.is_(None), Source.since_id.desc(), Source.id)
    if not staff:
        stmt = stmt.where(Source.protected.is_(False), Source.staff_only.is_(False))
    return list(session.scalars(stmt))


def _recent_ids(session: Session, office_id: int | None, before: int | None, limit: int,
                public: bool, company: bool = True) -> list[int] | None:
    """The page's ids if the RECENT_PAGES × limit newest posts below `before` hold `limit` of the scope, else None.

    Exact when it answers: every other post of the scope is older than all of these.
    """
    if RECENT_PAGES <= 0:
        return None
    params = {"window": RECENT_PAGES * limit, "limit": limit, "office": office_id or 0}  # no office has id 0
    if before is not None:
        params["before"] = before
    ids = list(session.scalars(_recent_statement(before is not None, public, company), params))
    return ids if len(ids) == limit else None


@lru_cache(maxsize=None)
def _recent_statement(before: bool, public: bool, company: bool = True):
    """SELECT the newest :limit ids of office :office's scope among the :window newest posts below :before.

    company False: office :office's sources only.
    """
    recent = select(Post.id, Post.source_id, Post.author_id).where(published())
    if before:
        recent = recent.where(Post.id < bindparam("before"))
    recent = recent.order_by(Post.id.desc()).limit(bindparam("window")).subquery()  # the primary key, backwards
    scope = Source.office_id == bindparam("office")
    if company:
        scope = or_(Source.office_id.is_(None), scope)
    stmt = select(recent.c.id).join(Source, Source.id == recent.c.source_id).where(scope)
    if public:
        stmt = stmt.where(Source.protected.is_(False), Source.staff_only.is_(False),
                          ~account_hidden(recent.c.author_id))
    return stmt.order_by(recent.c.id.desc()).limit(bindparam("limit"))


def _newest_ids(session: Session, source_ids: list[int], before: int | None, limit: int, public: bool) -> list[int]:
    """The `limit` newest post ids of those sources, below `before`, exactly.

    One index range per source (ix_posts_source_id_id), each cut at `limit`, read SOURCE_BATCH
    sources per statement and merged newest first (heapq.merge). Once `limit` ids are in hand,
    the oldest of them is a floor: a later batch only reads ids above it, so rows read stay near
    the page size; what grows with the sources is one index seek each.
    """
    lateral = session.get_bind().dialect.name == "postgresql"
    newest: list[int] = []
    for start in range(0, len(source_ids), SOURCE_BATCH):
        batch = source_ids[start:start + SOURCE_BATCH]
        if lateral:
            size, params = 0, {"sources": batch}
        else:
            size = next(size for size in BATCH_SIZES if size >= len(batch))
            params = {f"s{i}": source_id for i, source_id in enumerate(batch + [0] * (size - len(batch)))}  # no id 0
        params["limit"] = limit
        if before is not None:
            params["before"] = before
        floor = newest[-1] if len(newest) == limit else None
        if floor is not None:
            params["floor"] = floor
        shape = (size, before is not None, floor is not None, public)
        if lateral:
            found = session.scalars(_batch_statement(*shape), params)
        else:
            # Its text, made once: SQLAlchemy's per-execution handling of a statement with a few
            # hundred parameters costs more than SQLite's whole answer.
            sql, constants = _sqlite_batch_sql(*shape)
            found = session.connection().exec_driver_sql(sql, {**constants, **params}).scalars()
        newest = list(islice(heapq.merge(newest, found, reverse=True), limit))  # both newest first
    return newest


@lru_cache(maxsize=None)
def _batch_statement(size: int, before: bool, floor: bool, public: bool):
    """SELECT the newest :limit ids in (:floor, :before) of a batch of sources, public ones only if public.

    size 0: PostgreSQL, the batch as one array parameter :sources, each source's range read by a
    LATERAL subquery (a small statement, planned once). Else the sources :s0… :s{size-1}, each range
    a term of a UNION ALL (SQLite has no LATERAL).
    """
    def source_range(source_id):
        part = select(Post.id).where(Post.source_id == source_id, published())
        if before:
            part = part.where(Post.id < bindparam("before"))
        if floor:
            part = part.where(Post.id > bindparam("floor"))
        if public:
            # A repost carries its original's author: left out while that account is staff-only.
            # (For the source's own posts this is its own, public, row: one index lookup.)
            part = part.where(~account_hidden(Post.author_id))
        return part.order_by(Post.id.desc()).limit(bindparam("limit"))

    if size == 0:
        sources = bindparam("sources", type_=postgresql.ARRAY(Integer))
        batch = func.unnest(sources).table_valued("id").render_derived(name="batch")
        ranges = source_range(batch.c.id).lateral("ranges")
        merged = select(ranges.c.id).select_from(batch.join(ranges, true()))
        return merged.order_by(ranges.c.id.desc()).limit(bindparam("limit"))
    parts = [select(source_range(bindparam(f"s{i}")).subquery().c.id) for i in range(size)]
    merged = union_all(*parts).subquery()
    return select(merged.c.id).order_by(merged.c.id.desc()).limit(bindparam("limit"))


@lru_cache(maxsize=None)
def _sqlite_batch_sql(size: int, before: bool, floor: bool, public: bool) -> tuple[str, dict]:
    """The SQLite text of a batch statement, with named parameters, and the values of its constant ones."""
    compiled = _batch_statement(size, before, floor, public).compile(dialect=sqlite.dialect(paramstyle="named"))
    return compiled.string, {name: value for name, value in compiled.params.items() if value is not None}
