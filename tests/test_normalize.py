"""Tests for feedapp.xapi.normalize: X API v2 bodies -> feedapp.xapi.types."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from feedapp.xapi.errors import MalformedResponse
from feedapp.xapi.normalize import normalize_page, normalize_tweet, normalize_users
from feedapp.xapi.types import Link, XPage, XPost, XUser

DATA = Path(__file__).parent / "data"
UTC = timezone.utc
SOURCE = XUser(id="2244994945", username="XDevelopers", name="Developers")


def load_example() -> dict:
    return json.loads((DATA / "timeline-example.json").read_text(encoding="utf-8"))


def tco(n: int) -> str:
    """A distinct 23-character t.co URL."""
    return f"https://t.co/Abc{n:07d}"


def url_entity(text: str, n: int, expanded: str, display: str | None = None, **extra) -> dict:
    """A url entity with correct (code point, escaped-text) indices for tco(n) in text."""
    start = text.index(tco(n))
    entity = {"start": start, "end": start + 23, "url": tco(n), "expanded_url": expanded}
    if display is not None:
        entity["display_url"] = display
    return {**entity, **extra}


def tweet(text: str, entities: dict | None = None, id: str = "100", **fields) -> dict:
    t = {"id": id, "text": text, "author_id": SOURCE.id,
         "created_at": "2025-03-14T16:05:09.000Z", "edit_history_tweet_ids": [id]}
    if entities is not None:
        t["entities"] = entities
    return {**t, **fields}


def one(t: dict, includes: dict | None = None, source_user: XUser | None = None) -> XPost:
    return normalize_tweet(t, includes or {}, source_user)


def check_links(text: str, links) -> None:
    """Every Link spans exactly its display text in the final text, in order, without overlap."""
    end = 0
    for link in links:
        assert text[link.start:link.end] == link.display
        assert link.start >= end
        assert link.href.startswith(("https://", "http://"))
        end = link.end


# --- the shared example -------------------------------------------------------------


@pytest.fixture(scope="module")
def example_page() -> XPage:
    return normalize_page(load_example())


def test_example_page_meta_and_reads(example_page):
    assert example_page.newest_id == "1900578956769112064"
    assert example_page.oldest_id == "1900117126149976064"
    assert example_page.next_token == "7140dibdnow9c7btw4b0ueq1k3ruafqv6x9f0z3wrl7td"
    assert example_page.result_count == 3
    assert example_page.post_reads == 4  # 3 data + 1 includes.tweets
    assert example_page.user_reads == 2
    assert example_page.errors == []
    assert [p.id for p in example_page.posts] == [
        "1900578956769112064", "1900517262751576064", "1900117126149976064"]
    for post in example_page.posts:
        check_links(post.text, post.links)


def test_example_plain_post_with_photo(example_page):
    post = example_page.posts[0]
    assert post.text == "Launch day 🚀 Docs & examples: docs.example.com/launch?utm_sou…"
    assert post.links == (Link(30, 62, "url", "https://docs.example.com/launch?utm_source=x",
                               "docs.example.com/launch?utm_sou…"),)
    assert post.text[30:62] == "docs.example.com/launch?utm_sou…"
    assert "t.co" not in post.text and "pic.x.com" not in post.text
    assert post.author.username == "XDevelopers"
    assert post.author.avatar_url.endswith("yRsRRjGO_normal.jpg")
    assert post.created_at == datetime(2025, 3, 14, 16, 5, 9, tzinfo=UTC)
    assert post.lang == "en" and post.possibly_sensitive is False
    assert post.repost_of_id is None and post.quoted is None and post.reply_to_id is None
    (photo,) = post.media
    assert (photo.key, photo.type, photo.url, photo.preview_url) == (
        "3_1900578956769112064", "photo", "https://pbs.twimg.com/media/GmXyZabcdEF.jpg", None)
    assert (photo.width, photo.height, photo.alt_text) == (1200, 675, "Screenshot of the new docs")


def test_example_retweet_shows_original(example_page):
    post = example_page.posts[1]
    assert post.id == "1900517262751576064"  # the repost's own id ...
    assert post.created_at == datetime(2025, 3, 14, 12, 0, tzinfo=UTC)  # ... and date
    assert post.repost_of_id == "1899883083986776064"
    assert post.original_created_at == datetime(2025, 3, 12, 18, 0, tzinfo=UTC)
    assert post.author.username == "NASA" and post.author.verified is True
    assert post.text == ("Our rover just sent back new panoramas from the crater rim. "
                         "Watch the full 4K flyover here ↓")
    assert post.links == ()
    (video,) = post.media
    assert video.type == "video" and video.url is None
    assert video.preview_url.endswith("/img/abcd.jpg")
    assert (video.width, video.height, video.duration_ms) == (1920, 1080, 42000)
    assert [v["bit_rate"] for v in video.variants] == [832000, 2176000]
    assert all(v["content_type"] == "video/mp4" for v in video.variants)
    assert video.variants[0]["url"].endswith("640x360/a.mp4?tag=12")


def test_example_long_post_uses_note_tweet(example_page):
    post = example_page.posts[2]
    assert post.text.endswith("Thread on how we rebuilt our ingest pipeline. Details: blog.example.com/ingest")
    assert post.text.count("Thread on how we rebuilt") == 8
    assert "…" not in post.text and "t.co" not in post.text
    (link,) = post.links
    assert (link.kind, link.href, link.display) == ("url", "https://blog.example.com/ingest",
                                                    "blog.example.com/ingest")
    assert post.text[link.start:link.end] == "blog.example.com/ingest"


def test_example_raw_keeps_tweet_and_used_includes(example_page):
    body = load_example()
    retweet = example_page.posts[1].raw
    assert retweet["tweet"] == body["data"][1]
    assert [t["id"] for t in retweet["includes"]["tweets"]] == ["1899883083986776064"]
    assert [u["id"] for u in retweet["includes"]["users"]] == ["11348282"]
    assert [m["media_key"] for m in retweet["includes"]["media"]] == ["7_1899883083986776064"]
    plain = example_page.posts[0].raw["includes"]
    assert plain == {"tweets": [], "users": [body["includes"]["users"][0]],
                     "media": [body["includes"]["media"][0]]}


def test_example_source_user_without_author_expansion():
    body = load_example()
    body["includes"]["users"] = [u for u in body["includes"]["users"] if u["id"] != SOURCE.id]
    page = normalize_page(body, source_user=SOURCE)
    assert page.posts[0].author is SOURCE and page.posts[2].author is SOURCE
    assert page.posts[1].author.username == "NASA"  # the original's author is not the source
    assert page.user_reads == 1


def test_normalize_page_does_not_mutate_payload():
    body = load_example()
    before = copy.deepcopy(body)
    normalize_page(body)
    assert body == before


# --- escaping ------------------------------------------------------------------------


@pytest.mark.parametrize("escaped, final", [
    ("Docs &amp; examples", "Docs & examples"),
    ("double &amp;lt;b&amp;gt; &amp;amp;", "double &lt;b&gt; &amp;"),  # unescape exactly once
    ("&lt;script&gt;alert(1)&lt;/script&gt;", "<script>alert(1)</script>"),  # literal, not rendered
    ("&quot;hi&quot; &#39;x&#39; &nbsp; &copy;", "&quot;hi&quot; &#39;x&#39; &nbsp; &copy;"),
    ('"quotes" and \'apostrophes\'', '"quotes" and \'apostrophes\''),
    ("a &amp b &amp", "a &amp b &amp"),  # no semicolon: not an escape
    ("tail  \n ", "tail"),
])
def test_text_unescaped_exactly_once(escaped, final):
    assert one(tweet(escaped)).text == final


def test_escapes_around_entities():
    text = f"&lt;tag&gt; &amp; {tco(1)} &amp;amp; #fun &gt;"
    ents = {"urls": [url_entity(text, 1, "https://example.com/a?b=1&c=2", "example.com/a?b=1&c=2")],
            "hashtags": [{"start": text.index("#fun"), "end": text.index("#fun") + 4, "tag": "fun"}]}
    post = one(tweet(text, ents))
    assert post.text == "<tag> & example.com/a?b=1&c=2 &amp; #fun >"
    check_links(post.text, post.links)
    assert [link.display for link in post.links] == ["example.com/a?b=1&c=2", "#fun"]


# --- entity indices ------------------------------------------------------------------


def test_emoji_zwj_and_flags_before_entities():
    text = f"👩‍👩‍👧‍👦 family 🇫🇷🇯🇵 👍🏽 &amp; @NASA #Mars $TSLA {tco(1)}"
    # code point offsets into the escaped text: the ZWJ family is 7 code points, each flag 2
    at = text.index("@NASA")
    assert at == 7 + 8 + 5 + 3 + 6
    ents = {"mentions": [{"start": at, "end": at + 5, "username": "NASA", "id": "11348282"}],
            "hashtags": [{"start": at + 6, "end": at + 11, "tag": "Mars"}],
            "cashtags": [{"start": at + 12, "end": at + 17, "tag": "TSLA"}],
            "urls": [url_entity(text, 1, "https://nasa.gov/mars", "nasa.gov/mars")]}
    post = one(tweet(text, ents))
    assert post.text == "👩‍👩‍👧‍👦 family 🇫🇷🇯🇵 👍🏽 & @NASA #Mars $TSLA nasa.gov/mars"
    check_links(post.text, post.links)
    assert [(link.kind, link.href, link.display) for link in post.links] == [
        ("mention", "https://x.com/NASA", "@NASA"),
        ("hashtag", "https://x.com/hashtag/Mars", "#Mars"),
        ("cashtag", "https://x.com/search?q=%24TSLA", "$TSLA"),
        ("url", "https://nasa.gov/mars", "nasa.gov/mars"),
    ]
    assert post.links[0].start == at - 4  # "&amp;" became "&"


def test_rtl_text_with_entities():
    text = f"مرحبا بالعالم #مرحبا שלום {tco(1)} @user_1"
    tag_at, mention_at = text.index("#مرحبا"), text.index("@user_1")
    ents = {"hashtags": [{"start": tag_at, "end": tag_at + 6, "tag": "مرحبا"}],
            "mentions": [{"start": mention_at, "end": mention_at + 7, "username": "user_1"}],
            "urls": [url_entity(text, 1, "https://example.org/שלום", "example.org/שלום")]}
    post = one(tweet(text, ents))
    assert post.text == "مرحبا بالعالم #مرحبا שלום example.org/שלום @user_1"
    check_links(post.text, post.links)
    assert post.links[0].href == "https://x.com/hashtag/%D9%85%D8%B1%D8%AD%D8%A8%D8%A7"
    assert post.links[1].href == "https://example.org/שלום"


def utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


@pytest.mark.parametrize("shift", ["utf16", "unescaped", "way_off", "missing"])
def test_mismatched_indices_fall_back_to_search(shift):
    text = f"🚀🚀 launch &amp; go @NASA {tco(1)} then {tco(2)}"
    ents = {"urls": [url_entity(text, 1, "https://a.example/1", "a.example/1"),
                     url_entity(text, 2, "https://b.example/2", "b.example/2")],
            "mentions": [{"start": text.index("@NASA"), "end": text.index("@NASA") + 5,
                          "username": "nasa"}]}  # usernames match case-insensitively
    for ent in ents["urls"] + ents["mentions"]:
        needle = ent.get("url") or "@NASA"
        if shift == "utf16":  # X-style bug: offsets counted in UTF-16 units
            ent["start"] = utf16_len(text[:text.index(needle)])
        elif shift == "unescaped":  # offsets counted on the unescaped text
            ent["start"] = text.index(needle) - 4
        elif shift == "way_off":
            ent["start"] = 3
        if shift == "missing":
            del ent["start"], ent["end"]
        else:
            ent["end"] = ent["start"] + len(needle)
    post = one(tweet(text, ents))
    assert post.text == "🚀🚀 launch & go @NASA a.example/1 then b.example/2"
    check_links(post.text, post.links)
    assert [link.href for link in post.links] == [
        "https://x.com/nasa", "https://a.example/1", "https://b.example/2"]


def test_same_url_twice_uses_each_occurrence():
    text = f"{tco(1)} and again {tco(1)}"
    ents = {"urls": [dict(url_entity(text, 1, "https://a.example/", "a.example"), start=99, end=122),
                     dict(url_entity(text, 1, "https://a.example/", "a.example"), start=98, end=121)]}
    post = one(tweet(text, ents))
    assert post.text == "a.example and again a.example"
    check_links(post.text, post.links)
    assert len(post.links) == 2


def test_fallback_matches_whole_words_only():
    text = "hi @NASAJPL and me@nasa.gov #MarsRover"
    ents = {"mentions": [{"start": 0, "end": 5, "username": "NASA"}],
            "hashtags": [{"start": 0, "end": 5, "tag": "Mars"}]}
    post = one(tweet(text, ents))
    assert post.text == text and post.links == ()


@pytest.mark.parametrize("start, end", [
    (500, 523), (-5, 18), (10, 5), (0, 10_000), ("3", "26"), (None, None), (True, 24), (3.0, 26.0),
])
def test_bad_indices_never_crash(start, end):
    text = f"go {tco(1)}"
    ents = {"urls": [{"start": start, "end": end, "url": tco(1),
                      "expanded_url": "https://a.example/", "display_url": "a.example"}]}
    post = one(tweet(text, ents))
    assert post.text == "go a.example"
    check_links(post.text, post.links)


def test_overlapping_entities_keep_first_and_skip_unplaceable():
    text = f"see #tag {tco(1)}"
    at = text.index(tco(1))
    ents = {"urls": [url_entity(text, 1, "https://a.example/", "a.example"),
                     {"start": at, "end": at + 23, "url": "https://t.co/Zzz9999999",
                      "expanded_url": "https://b.example/"}],  # not in text at all: skipped
            "hashtags": [{"start": 4, "end": 8, "tag": "tag"}, {"start": 4, "end": 8, "tag": "tag"}],
            "mentions": [{"start": 0, "end": 3, "username": "ghost"}, {"start": 1, "end": 2}]}
    post = one(tweet(text, ents))
    assert post.text == "see #tag a.example"
    check_links(post.text, post.links)
    assert [link.kind for link in post.links] == ["hashtag", "url"]


def test_fullwidth_hashtag_and_case_insensitive_mention():
    text = "＃Python with @xdevelopers"
    ents = {"hashtags": [{"start": 0, "end": 7, "tag": "Python"}],
            "mentions": [{"start": 13, "end": 25, "username": "XDevelopers"}]}
    post = one(tweet(text, ents))
    assert [(link.display, link.href) for link in post.links] == [
        ("＃Python", "https://x.com/hashtag/Python"),
        ("@xdevelopers", "https://x.com/XDevelopers")]


# --- url links -----------------------------------------------------------------------


@pytest.mark.parametrize("expanded", [
    "javascript:alert(document.cookie)", "JavaScript:alert(1)", "data:text/html,<b>x</b>",
    "ftp://files.example/x", "//example.com/no-scheme", "https://", "vbscript:msgbox",
])
def test_non_http_expanded_url_is_dropped(expanded):
    text = f"click {tco(1)} now"
    post = one(tweet(text, {"urls": [url_entity(text, 1, expanded, "example.com")]}))
    assert post.text == text  # the t.co URL stays as plain text
    assert post.links == ()


@pytest.mark.parametrize("entity_extra, href, display", [
    ({"display_url": "ex.com/a"}, "https://ex.com/a?q=1", "ex.com/a"),
    ({}, "https://ex.com/a?q=1", "ex.com/a?q=1"),  # no display_url: expanded without scheme
    ({"display_url": ""}, "https://ex.com/a?q=1", "ex.com/a?q=1"),
    ({"expanded_url": None}, tco(1), "t.co/Abc0000001"),  # no expanded_url: the t.co url
])
def test_url_display_fallbacks(entity_extra, href, display):
    text = f"read {tco(1)}"
    entity = {**url_entity(text, 1, "https://ex.com/a?q=1"), **entity_extra}
    if entity.get("expanded_url") is None:
        del entity["expanded_url"]
    post = one(tweet(text, {"urls": [entity]}))
    assert post.text == f"read {display}"
    assert post.links == (Link(5, 5 + len(display), "url", href, display),)


def test_unwound_url_is_not_used_for_href():
    text = f"go {tco(1)}"
    ent = url_entity(text, 1, "https://bit.ly/x", "bit.ly/x", unwound_url="https://long.example/",
                     status=200)
    assert one(tweet(text, {"urls": [ent]})).links[0].href == "https://bit.ly/x"


# --- media ---------------------------------------------------------------------------


def media_includes() -> dict:
    return {"media": [
        {"media_key": "3_1", "type": "photo", "url": "https://pbs.twimg.com/media/a.jpg",
         "width": 10, "height": 20, "alt_text": "first"},
        {"media_key": "16_2", "type": "animated_gif", "preview_image_url": "https://pbs.twimg.com/g.jpg",
         "variants": [{"bit_rate": 0, "content_type": "video/mp4", "url": "https://video.twimg.com/g.mp4"}]},
        {"media_key": "7_3", "type": "video", "preview_image_url": "https://pbs.twimg.com/v.jpg",
         "duration_ms": 5000, "variants": [
             {"bit_rate": 2176000, "content_type": "video/mp4", "url": "https://video.twimg.com/hi.mp4"},
             {"content_type": "application/x-mpegURL", "url": "https://video.twimg.com/v.m3u8"},
             {"bit_rate": 256000, "content_type": "video/mp4", "url": "https://video.twimg.com/lo.mp4"},
             {"bit_rate": 832000, "content_type": "video/mp4", "url": "https://video.twimg.com/mid.mp4"},
         ]},
    ]}


def test_media_in_attachment_order_missing_keys_skipped():
    text = f"three things {tco(1)}"
    ent = url_entity(text, 1, "https://x.com/XDevelopers/status/100/photo/1", "pic.x.com/abc",
                     media_key="3_1")
    t = tweet(text, {"urls": [ent]}, attachments={"media_keys": ["7_3", "9_404", "3_1", "16_2"]})
    post = one(t, media_includes())
    assert post.text == "three things"
    assert [m.key for m in post.media] == ["7_3", "3_1", "16_2"]
    video, photo, gif = post.media
    assert [v["url"].rsplit("/", 1)[1] for v in video.variants] == ["lo.mp4", "mid.mp4", "hi.mp4"]
    assert video.variants[0] == {"url": "https://video.twimg.com/lo.mp4", "bit_rate": 256000,
                                 "content_type": "video/mp4"}
    assert (video.duration_ms, video.url, video.preview_url) == (5000, None, "https://pbs.twimg.com/v.jpg")
    assert (photo.url, photo.width, photo.height, photo.alt_text) == (
        "https://pbs.twimg.com/media/a.jpg", 10, 20, "first")
    assert gif.type == "animated_gif" and gif.variants[0]["bit_rate"] == 0
    assert gif.width is None and gif.alt_text is None
    assert [m["media_key"] for m in post.raw["includes"]["media"]] == ["7_3", "3_1", "16_2"]


@pytest.mark.parametrize("expanded", [
    "https://x.com/XDevelopers/status/100/photo/1",
    "https://twitter.com/XDevelopers/status/100/video/1",
    "https://x.com/someone_else/status/999/photo/2",  # reused media from another post
])
def test_trailing_media_links_dropped_without_media_key(expanded):
    text = f"pics {tco(1)}  {tco(2)}"
    ents = {"urls": [url_entity(text, 1, expanded, "pic.x.com/a"),
                     url_entity(text, 2, expanded.replace("/1", "/2"), "pic.x.com/b")]}
    post = one(tweet(text, ents))
    assert post.text == "pics" and post.links == ()


def test_media_link_in_the_middle_is_kept():
    text = f"look {tco(1)} nice"
    ent = url_entity(text, 1, "https://x.com/a/status/5/photo/1", "pic.x.com/a")
    post = one(tweet(text, {"urls": [ent]}))
    assert post.text == "look pic.x.com/a nice" and len(post.links) == 1


# --- quotes, replies, reposts --------------------------------------------------------


def quote_case(quoted_in_includes: bool = True):
    text = f"So true {tco(1)}"
    ent = url_entity(text, 1, "https://twitter.com/Quoted/status/555", "x.com/Quoted/status/555")
    t = tweet(text, {"urls": [ent]}, referenced_tweets=[{"type": "quoted", "id": "555"}])
    q_text = f"Hot take &amp; more… {tco(2)} {tco(3)}"
    quoted = {
        "id": "555", "author_id": "77", "created_at": "2025-01-02T03:04:05Z", "lang": "fr",
        "text": q_text,
        "note_tweet": {"text": f"Hot take &amp; more, much more {tco(4)}", "entities": {"urls": [
            url_entity(f"Hot take &amp; more, much more {tco(4)}", 4, "https://q.example/", "q.example")]}},
        "entities": {"urls": [url_entity(q_text, 2, "https://q.example/", "q.example"),
                              url_entity(q_text, 3, "https://x.com/Quoted/status/555/photo/1", "pic",
                                         media_key="3_1")]},
        "attachments": {"media_keys": ["3_1"]},
    }
    includes = {"users": [{"id": "77", "username": "Quoted", "name": "Q", "protected": True}],
                "media": media_includes()["media"]}
    if quoted_in_includes:
        includes["tweets"] = [quoted]
    return t, includes


def test_quote_trailing_link_dropped_and_quoted_post_built():
    t, includes = quote_case()
    post = one(t, includes, SOURCE)
    assert post.text == "So true" and post.links == ()
    q = post.quoted
    assert q.id == "555" and q.lang == "fr"
    assert q.author == XUser(id="77", username="Quoted", name="Q", protected=True)
    assert q.text == "Hot take & more, much more q.example"  # its note_tweet
    check_links(q.text, q.links)
    assert [m.key for m in q.media] == ["3_1"]
    assert q.created_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert post.author is SOURCE
    assert [t["id"] for t in post.raw["includes"]["tweets"]] == ["555"]


def test_quote_missing_from_includes_keeps_link():
    t, includes = quote_case(quoted_in_includes=False)
    post = one(t, includes)
    assert post.quoted is None
    assert post.text == "So true x.com/Quoted/status/555"
    assert post.links[0].href == "https://twitter.com/Quoted/status/555"


def test_link_to_other_status_is_not_dropped_as_quote():
    t, includes = quote_case()
    t["entities"]["urls"][0]["expanded_url"] = "https://x.com/Quoted/status/556"
    assert one(t, includes).text == "So true x.com/Quoted/status/555"


@pytest.mark.parametrize("users, mention_id, expected", [
    ([{"id": "42", "username": "Alice", "name": "A"}], "42", "Alice"),  # from includes.users
    ([], "42", "alice"),  # from the mention entity whose id matches
    ([], "43", None),  # neither
])
def test_reply(users, mention_id, expected):
    text = "@alice thanks!"
    t = tweet(text, {"mentions": [{"start": 0, "end": 6, "username": "alice", "id": mention_id}]},
              referenced_tweets=[{"type": "replied_to", "id": "900"}], in_reply_to_user_id="42",
              conversation_id="899")
    post = one(t, {"users": users})
    assert (post.reply_to_id, post.reply_to_user_id, post.reply_to_username) == ("900", "42", expected)
    assert post.conversation_id == "899"
    assert post.text == "@alice thanks!" and post.links[0].kind == "mention"


def test_retweet_with_missing_original_keeps_own_text():
    text = f"RT @NASA: Deleted thing &amp; more {tco(1)}"
    t = tweet(text, {"mentions": [{"start": 3, "end": 8, "username": "NASA", "id": "11348282"}],
                     "urls": [url_entity(text, 1, "https://x.com/NASA/status/1/photo/1", "pic.x.com/z",
                                         media_key="3_9")]},
              referenced_tweets=[{"type": "retweeted", "id": "1"}], author_id=None)
    post = one(t, {}, SOURCE)
    assert post.repost_of_id == "1" and post.original_created_at is None
    assert post.text == "RT @NASA: Deleted thing & more pic.x.com/z"  # nothing stripped
    check_links(post.text, post.links)
    assert post.author is SOURCE and post.id == "100"


def test_retweet_original_author_from_rt_mention_when_users_not_expanded():
    body = load_example()
    del body["includes"]["users"]
    post = normalize_page(body, source_user=SOURCE).posts[1]
    assert post.author == XUser(id="11348282", username="NASA", name="")


def test_retweet_of_quote_and_sensitivity():
    t, includes = quote_case()
    t.update(id="200", possibly_sensitive=True)
    rt = tweet("RT @x: So true…", id="300", referenced_tweets=[{"type": "retweeted", "id": "200"}])
    includes["tweets"].append(t)
    post = one(rt, includes)
    assert post.id == "300" and post.repost_of_id == "200" and post.possibly_sensitive is True
    assert post.text == "So true" and post.quoted.id == "555"


# --- authors, dates, pages -----------------------------------------------------------


@pytest.mark.parametrize("author_id, source_user, expected", [
    (SOURCE.id, SOURCE, SOURCE),
    (None, SOURCE, SOURCE),
    ("999", SOURCE, XUser(id="999", username="", name="")),
    ("999", None, XUser(id="999", username="", name="")),
    (None, None, XUser(id="", username="", name="")),
])
def test_author_without_expansion(author_id, source_user, expected):
    t = tweet("hi", author_id=author_id)
    if author_id is None:
        del t["author_id"]
    assert one(t, {}, source_user).author == expected


@pytest.mark.parametrize("value, expected", [
    ("2025-03-14T16:05:09.000Z", datetime(2025, 3, 14, 16, 5, 9, tzinfo=UTC)),
    ("2025-03-14T16:05:09Z", datetime(2025, 3, 14, 16, 5, 9, tzinfo=UTC)),
    ("2024-02-29T23:59:59.123Z", datetime(2024, 2, 29, 23, 59, 59, 123000, tzinfo=UTC)),
])
def test_created_at_parsing(value, expected):
    created = one(tweet("x", created_at=value)).created_at
    assert created == expected and created.tzinfo is not None and created.utcoffset().total_seconds() == 0


def test_zero_result_page():
    page = normalize_page({"meta": {"result_count": 0}})
    assert page == XPage(posts=[], newest_id=None, oldest_id=None, next_token=None, result_count=0,
                        post_reads=0, user_reads=0, errors=[])


def test_page_errors_and_extra_fields_pass_through():
    body = load_example()
    body["errors"] = [{"title": "Authorization Error", "type": "about:blank", "detail": "x"}]
    body["data"][0]["future_field"] = {"anything": [1, 2]}
    body["meta"]["previous_token"] = "abc"
    page = normalize_page(body)
    assert page.errors == body["errors"] and len(page.posts) == 3


def good_body() -> dict:
    return load_example()


def broken(mutate):
    body = good_body()
    mutate(body)
    return body


MALFORMED = {
    "body not a dict": [],
    "data not a list": broken(lambda b: b.update(data={"id": "1"})),
    "data item not a dict": broken(lambda b: b["data"].append("1")),
    "tweet without id": broken(lambda b: b["data"][0].pop("id")),
    "tweet with empty id": broken(lambda b: b["data"][0].update(id="")),
    "tweet without text": broken(lambda b: b["data"][2].pop("text")),
    "text not a string": broken(lambda b: b["data"][0].update(text=None)),
    "meta not a dict": broken(lambda b: b.update(meta=[3])),
    "result_count not int": broken(lambda b: b["meta"].update(result_count="3")),
    "newest_id not str": broken(lambda b: b["meta"].update(newest_id=1900578956769112064)),
    "bad created_at": broken(lambda b: b["data"][0].update(created_at="14/03/2025")),
    "date-only created_at": broken(lambda b: b["data"][0].update(created_at="2025-03-14")),
    "offset created_at": broken(lambda b: b["data"][0].update(created_at="2025-03-14T16:05:09+01:00")),
    "impossible created_at": broken(lambda b: b["data"][0].update(created_at="2025-02-30T00:00:00Z")),
    "missing created_at": broken(lambda b: b["data"][0].pop("created_at")),
    "includes not a dict": broken(lambda b: b.update(includes=[])),
    "includes.users not a list": broken(lambda b: b["includes"].update(users={})),
    "user without username": broken(lambda b: b["includes"]["users"][0].pop("username")),
    "entities not a dict": broken(lambda b: b["data"][0].update(entities=[])),
    "entities.urls not a list": broken(lambda b: b["data"][0]["entities"].update(urls={})),
    "note_tweet not a dict": broken(lambda b: b["data"][2].update(note_tweet="long")),
    "note_tweet without text": broken(lambda b: b["data"][2]["note_tweet"].pop("text")),
    "referenced_tweets bad": broken(lambda b: b["data"][1].update(referenced_tweets=[{"id": "1"}])),
    "media_keys not a list": broken(lambda b: b["data"][0]["attachments"].update(media_keys="3_1")),
    "media without type": broken(lambda b: b["includes"]["media"][0].pop("type")),
    "media width not int": broken(lambda b: b["includes"]["media"][0].update(width="1200")),
    "original without text": broken(lambda b: b["includes"]["tweets"][0].pop("text")),
    "original bad created_at": broken(lambda b: b["includes"]["tweets"][0].update(created_at="x")),
    "author_id not str": broken(lambda b: b["data"][0].update(author_id=2244994945)),
    "errors not a list": broken(lambda b: b.update(errors={"title": "x"})),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_pages_raise(body):
    with pytest.raises(MalformedResponse, match="malformed X API response"):
        normalize_page(body)


# --- users ---------------------------------------------------------------------------


def test_users_by_with_errors():
    body = {
        "data": [
            {"id": "2244994945", "username": "XDevelopers", "name": "Developers",
             "profile_image_url": "https://pbs.twimg.com/p_normal.jpg", "protected": False,
             "verified": True, "public_metrics": {"followers_count": 1}},
            {"id": "5", "username": "locked", "name": "Locked", "protected": True},
        ],
        "errors": [{"value": "nobody_here", "detail": "Could not find user with usernames: [nobody_here].",
                    "title": "Not Found Error", "resource_type": "user", "parameter": "usernames",
                    "resource_id": "nobody_here", "type": "https://api.twitter.com/2/problems/resource-not-found"}],
    }
    users, errors = normalize_users(body)
    assert users == [
        XUser(id="2244994945", username="XDevelopers", name="Developers",
             avatar_url="https://pbs.twimg.com/p_normal.jpg", protected=False, verified=True),
        XUser(id="5", username="locked", name="Locked", avatar_url=None, protected=True),
    ]
    assert errors == body["errors"]


def test_single_user_and_only_errors():
    users, errors = normalize_users({"data": {"id": "1", "username": "u", "name": "U"}})
    assert users == [XUser(id="1", username="u", name="U")] and errors == []
    err = [{"title": "Forbidden", "type": "https://api.twitter.com/2/problems/not-authorized-for-resource"}]
    assert normalize_users({"errors": err}) == ([], err)


@pytest.mark.parametrize("body", [
    [], {"data": "nope"}, {"data": [{"id": "1", "name": "no username"}]},
    {"data": [{"id": 1, "username": "u", "name": "U"}]}, {"data": ["1"]}, {"errors": "x"},
])
def test_malformed_users_raise(body):
    with pytest.raises(MalformedResponse):
        normalize_users(body)


# --- text browsers and XML must never see ----------------------------------------------

# One of each class HTML and XML forbid: C0, DEL, C1, noncharacters, lone surrogates.
BAD = "\x00\x01\x1b\x7f\x80\x9f\ufdd0\ufffe\uffff\U0001fffe\U0010ffff\udfff\ud800"  # low, high: no pair


def stored_strings(value):
    """Every string of a normalized XPost (or part of one) that store_posts writes, raw aside."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from stored_strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from stored_strings(item)
    elif hasattr(value, "__dataclass_fields__"):
        for name in value.__dataclass_fields__:
            if name != "raw":
                yield from stored_strings(getattr(value, name))


def test_every_stored_text_field_is_cleaned_and_links_keep_their_words():
    from tests.test_text_safety import forbidden_in

    note = f"Long{BAD} note @bob{BAD} #tag {tco(1)}{BAD} end\x0bword"
    at, tag = note.index("@bob"), note.index("#tag")
    ents = {"mentions": [{"start": at, "end": at + 4, "username": "bob", "id": "5"}],
            "hashtags": [{"start": tag, "end": tag + 4, "tag": "tag"}],
            "urls": [url_entity(note, 1, "https://example.com/x", f"exa{BAD}mple.com/x")]}
    t = tweet(f"short {BAD}", note_tweet={"text": note, "entities": ents}, in_reply_to_user_id="42",
              referenced_tweets=[{"type": "replied_to", "id": "900"}, {"type": "quoted", "id": "555"}],
              attachments={"media_keys": ["3_1"]}, lang=f"en{BAD}")
    includes = {
        "users": [{"id": SOURCE.id, "username": f"XDev{BAD}", "name": f"Dev{BAD}elopers\u2029Team"},
                  {"id": "42", "username": f"ali{BAD}ce", "name": "A"},
                  {"id": "77", "username": "Q", "name": f"Quo{BAD}ter"}],
        "media": [{"media_key": "3_1", "type": "photo", "url": "https://pbs.twimg.com/media/a.jpg",
                   "alt_text": f"A{BAD} forklift\x0cat work"}],
        "tweets": [{"id": "555", "author_id": "77", "text": f"Quoted{BAD} text\u2028second", "lang": "en"}],
    }
    post = one(t, includes)
    assert [forbidden_in(s) for s in stored_strings(post) if forbidden_in(s)] == []
    assert post.text == "Long note @bob #tag example.com/x end word"
    check_links(post.text, post.links)
    assert [(link.kind, link.display) for link in post.links] == [
        ("mention", "@bob"), ("hashtag", "#tag"), ("url", "example.com/x")]
    assert (post.author.username, post.author.name) == ("XDev", "Developers\nTeam")
    assert post.reply_to_username == "alice" and post.lang == "en"
    assert post.media[0].alt_text == "A forklift at work"
    assert (post.quoted.text, post.quoted.author.name) == ("Quoted text\nsecond", "Quoter")
    assert post.raw["tweet"] is t  # raw keeps what X sent


def test_reply_and_repost_usernames_from_mentions_are_cleaned():
    reply = tweet("@al\x85ice hi", {"mentions": [{"start": 0, "end": 7, "username": "al\x85ice", "id": "42"}]},
                  referenced_tweets=[{"type": "replied_to", "id": "900"}], in_reply_to_user_id="42")
    assert one(reply).reply_to_username == "al\nice"
    rt = tweet("RT @NA\x01SA: hi", {"mentions": [{"start": 3, "end": 9, "username": "NA\x01SA", "id": "11"}]},
               referenced_tweets=[{"type": "retweeted", "id": "7"}])
    original = {"id": "7", "text": "hi", "author_id": "11"}
    assert one(rt, {"tweets": [original]}).author.username == "NASA"


@pytest.mark.parametrize(("separator", "becomes"), [
    ("\x0b", " "), ("\x0c", " "), ("\x1f", " "), ("\x85", "\n"), ("\u2028", "\n"), ("\u2029", "\n")])
def test_separators_never_join_two_words(separator, becomes):
    text = f"Gate{separator}four opens @bob"
    at = text.index("@bob")
    post = one(tweet(text, {"mentions": [{"start": at, "end": at + 4, "username": "bob"}]}))
    assert post.text == f"Gate{becomes}four opens @bob"
    check_links(post.text, post.links)


def test_a_url_with_a_control_character_is_left_as_text():
    text = f"see {tco(1)}"
    post = one(tweet(text, {"urls": [url_entity(text, 1, "https://example.com/a\x1bb", "example.com/ab")]}))
    assert post.links == () and post.text == f"see {tco(1)}"


def test_bidi_controls_end_inside_each_text_field():
    text = "\u202c\u2069x @bob \u202eevil\u202c\u202c stray\nsecond \u2067line"
    at = text.index("@bob")
    t = tweet(text, {"mentions": [{"start": at, "end": at + 4, "username": "bob"}]},
              attachments={"media_keys": ["3_1"]}, referenced_tweets=[{"type": "quoted", "id": "555"}])
    includes = {"users": [{"id": SOURCE.id, "username": "XDevelopers", "name": "Evil\u202e Corp"}],
                "media": [{"media_key": "3_1", "type": "photo", "url": "https://pbs.twimg.com/media/a.jpg",
                           "alt_text": "\u2067alt"}],
                "tweets": [{"id": "555", "text": "quoted \u202dltr", "author_id": SOURCE.id}]}
    post = one(t, includes)
    # Stray closers dropped, open ones closed at the end of their line (UAX #9: a paragraph ends them).
    assert post.text == "x @bob \u202eevil\u202c stray\nsecond \u2067line\u2069"
    check_links(post.text, post.links)
    assert post.links[0].start == 2
    assert post.author.name == "Evil\u202e Corp\u202c"
    assert post.media[0].alt_text == "\u2067alt\u2069"
    assert post.quoted.text == "quoted \u202dltr\u202c"


# --- includes, once per page ------------------------------------------------------------


def test_includes_are_indexed_once_per_page(monkeypatch):
    from feedapp.xapi import normalize

    built = []
    original = normalize._Includes.__init__

    def counting(self, includes):
        built.append(includes)
        original(self, includes)

    monkeypatch.setattr(normalize._Includes, "__init__", counting)
    body = load_example()
    page = normalize_page(body)
    assert len(page.posts) == len(body["data"]) >= 3
    assert len(built) == 1


def test_each_post_of_a_page_keeps_the_includes_it_used():
    body = load_example()
    page = normalize_page(body)
    for t, post in zip(body["data"], page.posts):
        alone = normalize_tweet(t, body["includes"])  # its own lookup, as every post had before
        assert post == alone and post.raw == alone.raw
