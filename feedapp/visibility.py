"""Who may read what, as SQL: decided when reading, from the current state of every account a post touches.

Shared by the named reads (feedapp.queries) and what they add around a page's posts
(feedapp.post_context); nothing here writes.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Boolean, ColumnElement, bindparam, false, func, or_, select
from sqlalchemy.orm import aliased, defer, selectinload, with_expression

from feedapp.models import Post, SeenAccount, Source


def account_hidden(account_id) -> ColumnElement[bool]:
    """SQL: whether public readers must not see what the X account `account_id` wrote (false for NULL).

    Decided from the account's current state, never from a snapshot stored with a post: a
    followed account by its source row (staff_only, or protected on X, which the profile refresh
    and the poller keep current); any other account by what X said of it last (seen_accounts,
    written by store_posts from every page's user objects).
    """
    followed, seen = aliased(Source), aliased(SeenAccount)
    by_source = select(or_(followed.staff_only.is_(True), followed.protected.is_(True)))
    by_source = by_source.where(followed.x_id == account_id).scalar_subquery()
    by_x = select(seen.protected).where(seen.id == account_id).scalar_subquery()
    return func.coalesce(by_source, by_x, false(), type_=Boolean)



def published(post=Post) -> ColumnElement[bool]:
    """SQL: the post row reaches readers: not waiting for review, not hidden by an editor (feedapp.moderation)."""
    return post.pending.is_(False) & post.hidden_at.is_(None)


@lru_cache(maxsize=None)
def posts_statement(public: bool):
    """SELECT the posts with ids :ids (public ones only if public), newest first, with what rendering needs."""
    stmt = select(Post).where(Post.id.in_(bindparam("ids", expanding=True)), published())
    if public:  # again, in case a source or account turned staff-only since the ids were read
        stmt = stmt.where(public_source(Post.source_id), ~account_hidden(Post.author_id))
    stmt = stmt.order_by(Post.id.desc()).options(
        selectinload(Post.media), selectinload(Post.source), defer(Post.raw),  # raw JSON is for re-rendering only
        with_expression(Post.author_hidden, account_hidden(Post.author_id)),
        with_expression(Post.quote_hidden, account_hidden(Post.quoted_author_id)),
    )
    # populate_existing: the flags describe this read, not an earlier one of the same rows in this session.
    return stmt.execution_options(populate_existing=True)


def public_source(source_id) -> ColumnElement[bool]:
    """SQL: the source is neither protected on X nor staff-only."""
    source = aliased(Source)  # its own alias: the outer statement may read sources too
    return select(source.id).where(source.id == source_id, source.protected.is_(False),
                                   source.staff_only.is_(False)).exists()


def visible(public: bool, post=Post) -> ColumnElement[bool]:
    """SQL: the reader may see this post row: published, and for public readers, by public accounts only."""
    if not public:
        return published(post)
    return published(post) & public_source(post.source_id) & ~account_hidden(post.author_id)
