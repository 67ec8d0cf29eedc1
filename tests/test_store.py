"""store_posts and the schema: a post is stored once, by construction."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from feedapp.ingest.store import store_posts
from feedapp.models import Post, Source
from feedapp.xapi.types import XMedia, XPost, XUser

WHEN = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)


def make_post(pid: str, text="hello", media=()) -> XPost:
    raw = {"tweet": {"id": pid, "text": text}}
    return XPost(id=pid, author=XUser(id="", username="", name=""), text=text, links=(), media=tuple(media),
                    created_at=WHEN, raw=raw)


@pytest.fixture
def src(sessions):
    with sessions() as s:
        source = Source(x_id="42", username="northwind_crew", display_name="Northwind", error_count=0)
        s.add(source)
        s.commit()
        return source


def test_duplicate_post_id_is_refused_by_the_schema(sessions, src):
    row = {"id": 1900000000000000001, "source_id": src.id, "created_at": WHEN, "text": "x", "links": [], "raw": {}}
    with sessions() as s:
        s.execute(insert(Post), [row])
        s.commit()
        with pytest.raises(IntegrityError):
            s.execute(insert(Post), [row])
            s.commit()


def test_storing_a_page_twice_stores_each_post_and_media_once(sessions, src):
    photo = XMedia(key="3_1", type="photo", url="https://pbs.twimg.com/media/a.jpg", preview_url=None, alt_text="A")
    page = [make_post("1900000000000000003", media=[photo]), make_post("1900000000000000002")]
    with sessions() as s:
        source = s.get(Source, src.id)
        assert store_posts(s, source, page) == [1900000000000000003, 1900000000000000002]
        s.commit()
        # The same page again plus one new post: only the new one is stored.
        assert store_posts(s, source, [make_post("1900000000000000004")] + page) == [1900000000000000004]
        s.commit()
        posts = s.query(Post).order_by(Post.id).all()
        assert [p.id for p in posts] == [1900000000000000002, 1900000000000000003, 1900000000000000004]
        assert [m.alt_text for p in posts for m in p.media] == ["A"]


def test_posts_without_author_become_the_source(sessions, src):
    with sessions() as s:
        source = s.get(Source, src.id)
        store_posts(s, source, [make_post("1900000000000000005")])
        s.commit()
        post = s.get(Post, 1900000000000000005)
        assert (post.author_id, post.author_username, post.author_name) == ("42", "northwind_crew", "Northwind")
        assert post.created_at == WHEN and post.created_at.tzinfo is not None


def test_hostile_text_is_stored_verbatim_but_nul(sessions, src):
    hostile = "<script>alert(1)</script> ]]> \x00\x07 \u202e RTL 👷‍♀️ " + "x" * 25_000
    with sessions() as s:
        source = s.get(Source, src.id)
        store_posts(s, source, [make_post("1900000000000000006", text=hostile)])
        s.commit()
        # Everything but NUL (which PostgreSQL text cannot hold) is kept as written.
        assert s.get(Post, 1900000000000000006).text == hostile.replace("\x00", "")
