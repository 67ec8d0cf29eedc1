"""Small helpers shared by the ingest tests."""

from __future__ import annotations

from sqlalchemy import func, select

from feedapp.models import Media, Post, Source


def follow(runner, username: str, *args: str):
    """`sources add` through the real CLI; fails the test if it fails."""
    result = runner.invoke(args=["sources", "add", username, *args])
    assert result.exit_code == 0, result.output
    return result


def poll(runner, *args: str):
    """`poll` through the real CLI."""
    return runner.invoke(args=["poll", *args])


def stored_ids(sessions, username: str | None = None) -> list[int]:
    """Ids of stored posts, newest first (of one source when username is given)."""
    with sessions() as s:
        stmt = select(Post.id).order_by(Post.id.desc())
        if username:
            stmt = stmt.join(Source).where(Source.username == username)
        return list(s.scalars(stmt))


def source(sessions, username: str) -> Source:
    """The source row, detached."""
    with sessions() as s:
        return s.scalars(select(Source).where(Source.username == username)).one()


def media_count(sessions) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(Media))


def timeline_requests(fake, user_id: str | None = None) -> list:
    """Recorded timeline requests (of one user when given)."""
    return [r for r in fake.requests if r.path.endswith("/tweets") and (user_id is None or f"/{user_id}/" in r.path)]


def post_many(fake, username: str, n: int) -> list[int]:
    """Publish n posts; return their ids newest first."""
    return sorted((int(fake.post(username, f"update {i} from @{username}")) for i in range(n)), reverse=True)
