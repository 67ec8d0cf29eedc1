"""Check that feedapp/demo/ is self-consistent X API v2 wire data.

Run: python tools/check_demo.py   (exit status 0 and "demo data OK" when every check passes)

Rules checked (X API v2, as in /work/shared/xapi/timeline-example.json):
- entity indices are code point offsets into the HTML-escaped text, end exclusive,
  and each slice equals its url / "@"+username / "#"+tag;
- post text escapes exactly &, < and > (nothing else, nothing twice);
- ids are snowflakes matching created_at and strictly decrease down each timeline;
- meta newest_id / oldest_id / result_count match data, next_token on all pages but the last;
- includes hold exactly what is referenced: every media_key, referenced tweet and
  referenced tweet author resolves, and nothing unused is included.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "feedapp" / "demo"
TWEPOCH = 1288834974657
MAX_BYTES = 150_000

TCO_RE = re.compile(r"https://t\.co/[A-Za-z0-9]{10}")
CREATED_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
# The demo's own pictures, bundled in demo/media and served by feedapp.media (the host is reserved: .invalid).
MEDIA_HOST = "https://demo-media.invalid/"
PHOTO_URL_RE = re.compile(r"https://demo-media\.invalid/photo-\d+\.jpg")
AVATAR_RE = re.compile(r"https://demo-media\.invalid/avatar-[a-z0-9_]+\.png")
POSTER_RE = re.compile(r"https://demo-media\.invalid/poster-\d+\.jpg")
MEDIA_MAX_BYTES = 200_000  # every bundled picture together
STATUS_RE = re.compile(r"https://x\.com/(\w+)/status/(\d+)(?:/(photo|video)/1)?")
USERNAME_RE = re.compile(r"[A-Za-z0-9_]{1,15}")
# Hosts a demo link may point at: fictional (.example) or X itself.
LINK_HOST_RE = re.compile(r"https://([a-z0-9-]+\.)*(harborpine\.example|x\.com)(/|$)")
USER_KEYS = {"id", "name", "username", "protected", "verified", "profile_image_url"}
TWEET_KEYS = {"id", "text", "edit_history_tweet_ids", "author_id", "created_at", "conversation_id",
              "in_reply_to_user_id", "lang", "possibly_sensitive", "referenced_tweets", "attachments",
              "entities", "note_tweet"}

errors: list[str] = []
seen = Counter()  # coverage of the data traps


def check_pictures() -> None:
    """Every demo-media URL in the data names a bundled picture, every picture is used, all of them small."""
    named = set(re.findall(r"https://demo-media\.invalid/([a-z0-9_.-]+)", "".join(
        p.read_text(encoding="utf-8") for p in DEMO.glob("*.json"))))
    files = {p.name for p in (DEMO / "media").iterdir()}
    check(named <= files, f"pictures missing from demo/media: {sorted(named - files)}")
    check(files <= named, f"pictures no post or account uses: {sorted(files - named)}")
    size = sum(p.stat().st_size for p in (DEMO / "media").iterdir())
    check(size < MEDIA_MAX_BYTES, f"demo pictures are {size} bytes, over {MEDIA_MAX_BYTES}")


def check(ok: object, message: str) -> bool:
    if not ok:
        errors.append(message)
    return bool(ok)


def load(name: str) -> dict:
    return json.loads((DEMO / name).read_text(encoding="utf-8"))


def created_ms(tweet: dict) -> int:
    when = datetime.strptime(tweet["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return round(when.timestamp() * 1000)


def check_escaped(text: str, where: str) -> None:
    check("<" not in text and ">" not in text, f"{where}: raw < or > in text")
    for m in re.finditer("&", text):
        check(re.match(r"&(amp|lt|gt);", text[m.start():]), f"{where}: bare & at {m.start()}")
    check("&amp;amp;" not in text and "&amp;lt;" not in text and "&amp;gt;" not in text,
          f"{where}: double-escaped text")
    if "&amp;" in text:
        seen["ampersand"] += 1
    if "&lt;" in text or "&gt;" in text:
        seen["lt/gt"] += 1


def check_entities(text: str, entities: dict, where: str, known_ids: dict[str, str]) -> None:
    """Every entity slice of the escaped text equals what the entity names."""
    check(set(entities) <= {"urls", "mentions", "hashtags", "cashtags"}, f"{where}: unknown entity kinds")
    for kind, items in entities.items():
        check(isinstance(items, list) and items, f"{where}: empty {kind} list (X omits empty lists)")
        for ent in items:
            start, end = ent.get("start"), ent.get("end")
            if not check(isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text),
                         f"{where}: {kind} indices {start}..{end} out of range {len(text)}"):
                continue
            piece = text[start:end]
            if kind == "urls":
                check(piece == ent["url"], f"{where}: url slice {piece!r} != {ent['url']!r}")
                check(TCO_RE.fullmatch(ent["url"]), f"{where}: url {ent['url']} is not a t.co link")
                check(LINK_HOST_RE.match(ent.get("expanded_url", "")),
                      f"{where}: expanded_url {ent.get('expanded_url')} not on a fictional/x.com host")
                check(isinstance(ent.get("display_url"), str) and "://" not in ent["display_url"],
                      f"{where}: bad display_url {ent.get('display_url')!r}")
                if "media_key" in ent:
                    check(ent["display_url"] == "pic.x.com/" + ent["url"].rsplit("/", 1)[1],
                          f"{where}: media display_url {ent['display_url']}")
                    check(STATUS_RE.fullmatch(ent["expanded_url"]) and STATUS_RE.fullmatch(ent["expanded_url"])[3],
                          f"{where}: media expanded_url {ent['expanded_url']}")
                else:
                    seen["plain link"] += 1
            elif kind == "mentions":
                check(piece == "@" + ent["username"], f"{where}: mention slice {piece!r} != @{ent['username']}")
                check(USERNAME_RE.fullmatch(ent["username"]), f"{where}: bad username {ent['username']!r}")
                check(known_ids.get(ent["username"]) in (None, ent.get("id")),
                      f"{where}: mention @{ent['username']} id {ent.get('id')} != {known_ids.get(ent['username'])}")
                check(isinstance(ent.get("id"), str), f"{where}: mention without id")
                seen["mention"] += 1
            elif kind == "hashtags":
                check(piece == "#" + ent["tag"], f"{where}: hashtag slice {piece!r} != #{ent['tag']}")
                seen["hashtag"] += 1
                if any(ord(c) > 127 for c in ent["tag"]):
                    seen["non-ASCII hashtag"] += 1
            # Multi-code-point emoji (ZWJ sequence / flag) before an entity shift every index after it.
            head = text[:start]
            if "\u200d" in head:
                seen["ZWJ emoji before entity"] += 1
            if re.search("[\U0001F1E6-\U0001F1FF]{2}", head):
                seen["flag before entity"] += 1
            if "&amp;" in head or "&lt;" in head:
                seen["escape before entity"] += 1
    spans = sorted((e["start"], e["end"], e.get("url")) for items in entities.values() for e in items)
    for (s1, e1, u1), (s2, e2, u2) in zip(spans, spans[1:]):
        # Only the per-media repeats of one pic link may share a span.
        check(e1 <= s2 or (s1, e1, u1) == (s2, e2, u2), f"{where}: overlapping entities at {s1}..{e1}, {s2}..{e2}")


def check_tweet(t: dict, where: str, known_ids: dict[str, str]) -> None:
    where = f"{where} tweet {t.get('id')}"
    check(set(t) <= TWEET_KEYS, f"{where}: unexpected fields {set(t) - TWEET_KEYS}")
    for key in ("id", "text", "edit_history_tweet_ids", "author_id", "created_at", "conversation_id", "lang"):
        check(key in t, f"{where}: missing {key}")
    check(t.get("edit_history_tweet_ids") == [t["id"]], f"{where}: edit_history_tweet_ids != [id]")
    check(t.get("possibly_sensitive") is False, f"{where}: possibly_sensitive is not false")
    check(t.get("lang") in ("en", "fr"), f"{where}: lang {t.get('lang')}")
    check(CREATED_RE.fullmatch(t["created_at"]), f"{where}: created_at {t['created_at']} not like 2026-11-24T07:15:00.000Z")
    check("2026-11-10" <= t["created_at"][:10] <= "2026-11-26", f"{where}: created_at outside 2026-11-10..26")
    check((int(t["id"]) >> 22) + TWEPOCH == created_ms(t), f"{where}: snowflake time != created_at")
    check(int(t["conversation_id"]) <= int(t["id"]), f"{where}: conversation_id newer than the post")
    check_escaped(t["text"], where)
    check_entities(t["text"], t.get("entities", {}), where, known_ids)
    refs = {r["type"]: r["id"] for r in t.get("referenced_tweets", [])}
    check(set(refs) <= {"retweeted", "quoted", "replied_to"}, f"{where}: bad referenced_tweets types")
    check(len(refs) == len(t.get("referenced_tweets", [])), f"{where}: duplicate reference type")
    check(("in_reply_to_user_id" in t) == ("replied_to" in refs), f"{where}: in_reply_to_user_id vs replied_to")
    if "replied_to" not in refs:
        check(t["conversation_id"] == t["id"], f"{where}: a non-reply starts its own conversation")
    if "note_tweet" in t:
        note = t["note_tweet"]
        check(len(note["text"]) > 280, f"{where}: note_tweet text is not longer than 280")
        check_escaped(note["text"], where + " note_tweet")
        check_entities(note["text"], note.get("entities", {}), where + " note_tweet", known_ids)
        head, _, link = t["text"].rpartition(" ")
        check(head.endswith("…") and TCO_RE.fullmatch(link), f"{where}: long post text not '…' + t.co")
        check(note["text"].startswith(head[:-1]), f"{where}: text is not the start of note_tweet text")
        seen["long post"] += 1
    if "retweeted" in refs:
        check(t["text"].startswith("RT @"), f"{where}: retweet text does not start with RT @")
        check(len(t["text"].replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")) <= 140,
              f"{where}: retweet text longer than 140")
    media = t.get("attachments", {}).get("media_keys", [])
    url_keys = [e["media_key"] for e in t.get("entities", {}).get("urls", []) if "media_key" in e]
    if "retweeted" not in refs:
        check(url_keys == media, f"{where}: pic-link media_keys {url_keys} != attachments {media}")
    if len(media) > 1:
        seen["several photos"] += 1


def check_media(m: dict, where: str) -> None:
    where = f"{where} media {m.get('media_key')}"
    prefix = {"photo": "3_", "video": "7_", "animated_gif": "16_"}.get(m.get("type"))
    check(prefix and m["media_key"].startswith(prefix), f"{where}: media_key prefix vs type {m.get('type')}")
    check(isinstance(m.get("width"), int) and isinstance(m.get("height"), int), f"{where}: no width/height")
    if m["type"] == "photo":
        check(PHOTO_URL_RE.fullmatch(m.get("url", "")), f"{where}: photo url {m.get('url')}")
        check(set(m) <= {"media_key", "type", "url", "width", "height", "alt_text"}, f"{where}: extra photo fields")
        seen["photo with alt"] += "alt_text" in m
        seen["photo without alt"] += "alt_text" not in m
        check(m.get("alt_text", "x").strip(), f"{where}: empty alt_text (X omits it instead)")
    else:
        check(POSTER_RE.fullmatch(m.get("preview_image_url", "")), f"{where}: preview_image_url")
        check(isinstance(m.get("duration_ms"), int) and m["duration_ms"] > 0, f"{where}: duration_ms")
        variants = m.get("variants", [])
        hls = [v for v in variants if v.get("content_type") == "application/x-mpegURL"]
        mp4 = [v for v in variants if v.get("content_type") == "video/mp4"]
        check(len(hls) == 1 and "bit_rate" not in hls[0] and hls[0]["url"].split("?")[0].endswith(".m3u8"),
              f"{where}: want one HLS variant without bit_rate")
        check(len(mp4) == 2 and all(isinstance(v.get("bit_rate"), int) and v["url"].split("?")[0].endswith(".mp4")
                                    for v in mp4), f"{where}: want two mp4 variants with bit_rate")
        check(all(v["url"].startswith("https://video.twimg.com/") for v in variants), f"{where}: variant host")
        seen["video"] += 1


def check_user(u: dict, where: str) -> None:
    check(set(u) == USER_KEYS, f"{where}: user fields {sorted(u)}")
    check(USERNAME_RE.fullmatch(u["username"]) and u["id"].isdigit(), f"{where}: bad user {u}")
    check(AVATAR_RE.fullmatch(u["profile_image_url"]), f"{where}: avatar {u['profile_image_url']}")
    check(isinstance(u["protected"], bool) and isinstance(u["verified"], bool), f"{where}: flags not booleans")


def main() -> int:
    manifest = load("manifest.json")
    users = load("users.json")
    check(set(users) == {"data"}, "users.json: expected only data")
    for u in users["data"]:
        check_user(u, "users.json")
    by_name = {u["username"]: u for u in users["data"]}
    check(len(by_name) == len(users["data"]), "users.json: duplicate usernames")
    check(len({u["id"] for u in users["data"]}) == len(users["data"]), "users.json: duplicate ids")

    # Manifest shape.
    check(set(manifest) == {"company", "offices", "sources", "pages"}, "manifest: keys")
    slugs = {o["slug"] for o in manifest["offices"]}
    check(len(slugs) == len(manifest["offices"]) and all(re.fullmatch(r"[a-z0-9-]+", s) for s in slugs),
          "manifest: office slugs")
    sources = {s["username"]: s for s in manifest["sources"]}
    check(set(sources) == set(by_name), "manifest sources != users.json accounts")
    check(set(manifest["pages"]) == set(sources), "manifest pages != sources")
    for s in manifest["sources"]:
        check(set(s) == {"username", "office", "staff_only"}, f"manifest source {s}: keys")
        check(s["office"] is None or s["office"] in slugs, f"manifest source {s['username']}: unknown office")
        check(isinstance(s["staff_only"], bool), f"manifest source {s['username']}: staff_only not bool")
    check(any(u["protected"] for u in users["data"]), "no protected account")
    check(all(slug in {s["office"] for s in manifest["sources"]} for slug in slugs), "an office has no account")

    listed = {f for files in manifest["pages"].values() for f in files}
    on_disk = {p.name for p in DEMO.glob("timeline_*.json")}
    check(listed == on_disk, f"manifest pages vs files on disk: {sorted(listed ^ on_disk)}")
    check((DEMO / "__init__.py").exists(), "feedapp/demo/__init__.py missing")

    known_ids = {u["username"]: u["id"] for u in users["data"]}
    every_tweet: dict[str, dict] = {}  # id -> tweet, over timelines and includes
    every_user: dict[str, dict] = {u["id"]: u for u in users["data"]}

    def same_everywhere(store: dict, key: str, obj: dict, where: str) -> None:
        check(store.setdefault(key, obj) == obj, f"{where}: {key} differs from another copy")

    for username, files in manifest["pages"].items():
        owner = by_name[username]
        last_id = None
        for n, name in enumerate(files, 1):
            where = name
            check(name == f"timeline_{username}_{n}.json", f"{name}: not named timeline_{username}_{n}.json")
            body = load(name)
            check(set(body) <= {"data", "includes", "meta"}, f"{where}: unexpected top-level keys")
            data, inc, meta = body.get("data", []), body.get("includes", {}), body["meta"]
            check(data, f"{where}: empty page")
            check(set(inc) <= {"media", "users", "tweets"} and all(inc.values()),
                  f"{where}: includes has unknown or empty lists (X omits them)")
            ids = [int(t["id"]) for t in data]
            check(all(a > b for a, b in zip(ids, ids[1:])), f"{where}: ids not strictly decreasing")
            check(last_id is None or ids[0] < last_id, f"{where}: first id not older than previous page")
            last_id = ids[-1]
            check(meta.get("result_count") == len(data), f"{where}: result_count")
            check(meta.get("newest_id") == data[0]["id"] and meta.get("oldest_id") == data[-1]["id"],
                  f"{where}: newest_id/oldest_id")
            last = n == len(files)
            check(("next_token" in meta) != last, f"{where}: next_token on every page but the last")
            check(set(meta) <= {"result_count", "newest_id", "oldest_id", "next_token"}, f"{where}: meta keys")

            inc_media = {m["media_key"]: m for m in inc.get("media", [])}
            inc_users = {u["id"]: u for u in inc.get("users", [])}
            inc_tweets = {t["id"]: t for t in inc.get("tweets", [])}
            check(len(inc_media) == len(inc.get("media", [])) and len(inc_users) == len(inc.get("users", []))
                  and len(inc_tweets) == len(inc.get("tweets", [])), f"{where}: duplicates in includes")
            used_media, used_users, used_tweets = set(), set(), set()
            for m in inc_media.values():
                check_media(m, where)
                same_everywhere(every_tweet, "media:" + m["media_key"], m, where)
            for u in inc_users.values():
                check_user(u, where + " includes")
                same_everywhere(every_user, u["id"], u, where + " includes.users")
                known_ids.setdefault(u["username"], u["id"])

            for t in data:
                check(t["author_id"] == owner["id"], f"{where} tweet {t['id']}: author is not {username}")
                check_tweet(t, where, known_ids)
                same_everywhere(every_tweet, t["id"], t, where)
                for key in t.get("attachments", {}).get("media_keys", []):
                    used_media.add(key)
                for ref in t.get("referenced_tweets", []):
                    used_tweets.add(ref["id"])
                    if not check(ref["id"] in inc_tweets, f"{where} tweet {t['id']}: {ref['type']} {ref['id']} "
                                                          "not in includes.tweets"):
                        continue
                    r = inc_tweets[ref["id"]]
                    check(int(r["id"]) < int(t["id"]), f"{where}: referenced tweet {r['id']} newer than {t['id']}")
                    if ref["type"] == "retweeted":
                        seen["retweet"] += 1
                        author = inc_users.get(r["author_id"], {}).get("username")
                        check(t["text"].startswith(f"RT @{author}: "), f"{where} tweet {t['id']}: RT @ wrong author")
                        rt_body = t["text"][len(f"RT @{author}: "):]
                        check(r["text"].startswith(rt_body.rstrip("…")), f"{where} tweet {t['id']}: RT text mismatch")
                        check(t["text"].endswith("…"), f"{where} tweet {t['id']}: RT text not truncated")
                        check(r.get("attachments"), f"{where}: retweeted original has no media")
                        check(r["lang"] == t["lang"], f"{where} tweet {t['id']}: RT lang differs from original")
                    elif ref["type"] == "quoted":
                        seen["quote"] += 1
                        last_url = t.get("entities", {}).get("urls", [{}])[-1]
                        m = STATUS_RE.fullmatch(last_url.get("expanded_url", ""))
                        check(m and m[2] == r["id"] and m[1] == inc_users.get(r["author_id"], {}).get("username")
                              and t["text"].endswith(last_url["url"]),
                              f"{where} tweet {t['id']}: quote link is not the trailing t.co to the quoted post")
                    else:
                        check(t["in_reply_to_user_id"] == r["author_id"], f"{where} tweet {t['id']}: reply user")
                        check(t["conversation_id"] == r["conversation_id"], f"{where} tweet {t['id']}: conversation")
                        if r["author_id"] == owner["id"]:
                            seen["self-thread reply"] += 1
                        else:
                            seen["reply to someone else"] += 1
                            reply_to = inc_users.get(r["author_id"], {}).get("username")
                            check(t["text"].startswith(f"@{reply_to} "), f"{where} tweet {t['id']}: reply lacks @mention")
                if t["lang"] == "fr":
                    seen["French post"] += 1
            for r in inc_tweets.values():
                check_tweet(r, where + " includes", known_ids)
                same_everywhere(every_tweet, r["id"], r, where + " includes.tweets")
                check(r["author_id"] in inc_users, f"{where}: author {r['author_id']} of {r['id']} not in includes.users")
                used_users.add(r["author_id"])
                for key in r.get("attachments", {}).get("media_keys", []):
                    used_media.add(key)
                check("retweeted" not in {x["type"] for x in r.get("referenced_tweets", [])},
                      f"{where}: included tweet {r['id']} is itself a retweet")
            for key in used_media:
                check(key in inc_media, f"{where}: media_key {key} not in includes.media")
            check(set(inc_media) <= used_media, f"{where}: unused includes.media {set(inc_media) - used_media}")
            check(set(inc_tweets) <= used_tweets, f"{where}: unused includes.tweets {set(inc_tweets) - used_tweets}")
            check(set(inc_users) <= used_users, f"{where}: unused includes.users {set(inc_users) - used_users}")
            # author_id is not an expansion: the owner appears only as the author of a referenced post.
            if owner["id"] in inc_users:
                check(any(r["author_id"] == owner["id"] for r in inc_tweets.values()),
                      f"{where}: timeline owner in includes.users without reason")

    # Timeline tweets that are also someone's include must be the identical object (checked by
    # same_everywhere); every id is unique and time-ordered across the whole set.
    all_tweets = [t for k, t in every_tweet.items() if not k.startswith("media:")]
    by_time = sorted(all_tweets, key=lambda t: t["created_at"])
    check(all(int(a["id"]) < int(b["id"]) for a, b in zip(by_time, by_time[1:])),
          "ids do not strictly increase with created_at across the set")
    per_account = Counter(t["author_id"] for t in all_tweets)
    for u in users["data"]:
        low, high = (3, 8) if u["protected"] else (8, 15)
        check(low <= per_account[u["id"]] <= high, f"{u['username']}: {per_account[u['id']]} posts")

    size = sum(p.stat().st_size for p in DEMO.iterdir() if p.is_file())
    check(size < MAX_BYTES, f"demo data is {size} bytes, over {MAX_BYTES}")
    check_pictures()

    for item in ("retweet", "quote", "long post", "self-thread reply", "reply to someone else", "video",
                 "photo with alt", "photo without alt", "several photos", "ampersand", "lt/gt",
                 "ZWJ emoji before entity", "flag before entity", "escape before entity", "hashtag",
                 "non-ASCII hashtag", "mention", "plain link", "French post"):
        check(seen[item], f"coverage: no {item} in the demo data")

    if errors:
        print("\n".join(f"FAIL {e}" for e in errors))
        print(f"{len(errors)} problem(s)")
        return 1
    print(f"demo data OK: {len(all_tweets)} posts, {size} bytes; coverage: "
          + ", ".join(f"{k} {v}" for k, v in sorted(seen.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
