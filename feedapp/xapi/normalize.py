"""Turn X API v2 response bodies (already JSON-decoded) into feedapp.xapi.types values.

Stdlib only. A body not shaped as the X API v2 documents raises MalformedResponse;
unknown extra fields are ignored. Every text that becomes stored data goes through
feedapp.textclean.clean here, once: characters HTML and XML forbid are gone and bidi
embeddings, overrides and isolates end with their line.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

from feedapp.textclean import Cleaner, clean, scrub
from feedapp.xapi.errors import MalformedResponse
from feedapp.xapi.types import Link, XMedia, XPage, XPost, XQuotedPost, XUser

# X escapes exactly &, < and > in post text; &quot;, &#39;, &nbsp; ... are literal user text.
_ESCAPE_RE = re.compile(r"&(amp|lt|gt);")
_UNESCAPED = {"amp": "&", "lt": "<", "gt": ">"}
# created_at is RFC 3339 in UTC: "2025-03-14T16:05:09.000Z", millis optional.
_CREATED_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z")
# A post's status URL; group 2 is the "/photo/N" or "/video/N" X appends for attached media.
_STATUS_RE = re.compile(r"https?://(?:(?:www|mobile)\.)?(?:x|twitter)\.com/\w+/status/(\d+)"
                        r"(/(?:photo|video)/\d+)?/?(?:[?#].*)?", re.IGNORECASE)
# Entity list -> (field naming it, sigils X accepts before it incl. full-width, Link kind, href).
_ENTITIES = {
    "urls": ("url", "", "url", ""),
    "mentions": ("username", "@＠", "mention", "https://x.com/{}"),
    "hashtags": ("tag", "#＃", "hashtag", "https://x.com/hashtag/{}"),
    "cashtags": ("tag", "$＄", "cashtag", "https://x.com/search?q=%24{}"),
}
Span = tuple[int, int, str, dict]  # (start, end, entity list name, entity)


def _require(ok: object, message: str) -> None:
    if not ok:
        raise MalformedResponse(f"malformed X API response: {message}")


def _get(obj: dict, key: str, kind: type, where: str, default=None):
    """obj[key] if it is a `kind` (a bool is no int), default when absent, else raise."""
    value = obj.get(key, default)
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    _require(value is None or ok, f"{where}.{key} is not of type {kind.__name__}")
    return value


def _objects(obj: dict, key: str, where: str) -> list[dict]:
    """obj[key] as a list of JSON objects (missing = empty), else raise."""
    value = _get(obj, key, list, where, [])
    _require(all(isinstance(v, dict) for v in value), f"{where}.{key} holds a non-object")
    return value


def _parse_time(value: object, where: str) -> datetime:
    match = _CREATED_RE.fullmatch(value) if isinstance(value, str) else None
    _require(match, f"{where}.created_at {value!r} is not an RFC 3339 UTC time")
    *parts, frac = match.groups()
    try:
        return datetime(*map(int, parts), int((frac or "0").ljust(6, "0")), tzinfo=timezone.utc)
    except ValueError:
        raise MalformedResponse(f"malformed X API response: {where}.created_at {value!r}: no date")


def _unescape(text: str) -> str:
    # A single pass: "&amp;lt;" becomes "&lt;", never "<".
    return _ESCAPE_RE.sub(lambda m: _UNESCAPED[m.group(1)], text)


def _user(obj: dict) -> XUser:
    for key in ("id", "username", "name"):  # required by the User schema (X API v2)
        _require(isinstance(obj.get(key), str), f"user {obj.get('id')!r} has no {key}")
    avatar = obj.get("profile_image_url")
    return XUser(id=obj["id"], username=clean(obj["username"]), name=clean(obj["name"]),
                avatar_url=avatar if isinstance(avatar, str) else None,
                protected=obj.get("protected") is True, verified=obj.get("verified") is True)


class _Includes:
    """A body's includes checked and indexed once per page: tweets and users by id, media by key."""

    _KEYS = {"tweets": "id", "users": "id", "media": "media_key"}

    def __init__(self, includes: object):
        _require(isinstance(includes, dict), "includes is not an object")
        lists = {kind: _objects(includes, kind, "includes") for kind in self._KEYS}
        self.counts = {kind: len(items) for kind, items in lists.items()}
        self._index = {kind: {i[key]: i for i in lists[kind] if isinstance(i.get(key), str)}
                       for kind, key in self._KEYS.items()}

    def for_post(self) -> _Used:
        """A view of the index that records what one post looks up."""
        return _Used(self._index)


class _Used:
    """The includes one post used, recorded in lookup order for XPost.raw."""

    def __init__(self, index: dict[str, dict[str, dict]]):
        self._index = index
        self.used: dict[str, list[dict]] = {kind: [] for kind in index}

    def get(self, kind: str, key: object) -> dict | None:
        found = self._index[kind].get(key) if isinstance(key, str) else None
        if found is not None and all(found is not seen for seen in self.used[kind]):
            self.used[kind].append(found)
        return found


def _check_tweet(tweet: object, where: str) -> dict:
    # id and text are the Tweet fields X always returns.
    _require(isinstance(tweet, dict), f"{where} is not an object")
    _require(isinstance(tweet.get("id"), str) and tweet["id"], f"{where} has no id")
    _require(isinstance(tweet.get("text"), str), f"tweet {tweet['id']} has no text")
    _get(tweet, "author_id", str, f"tweet {tweet['id']}")
    return tweet


def _refs(tweet: dict) -> dict[str, str]:
    """referenced_tweets as {type: id}; types are retweeted, quoted and replied_to."""
    refs = {}
    for ref in _objects(tweet, "referenced_tweets", f"tweet {tweet['id']}"):
        _require(isinstance(ref.get("type"), str) and isinstance(ref.get("id"), str),
                 f"tweet {tweet['id']}.referenced_tweets item has no type/id")
        refs.setdefault(ref["type"], ref["id"])
    return refs


def _text_source(tweet: dict) -> tuple[str, dict]:
    """(escaped text, entities); a long post's note_tweet has the full text and its own indices."""
    where, source = f"tweet {tweet['id']}", tweet
    if "note_tweet" in tweet:
        where, source = where + ".note_tweet", _get(tweet, "note_tweet", dict, where)
        _require(isinstance(source.get("text"), str), f"{where} has no text")
    return source["text"], _get(source, "entities", dict, where, {})


def _locate(text: str, entities: dict) -> list[Span]:
    """Entity spans in the escaped text, sorted, never overlapping; unplaceable ones left out."""
    spans: list[Span] = []
    pending = []

    def free(a: int, b: int) -> bool:
        return all(b <= start or a >= end for start, end, _, _ in spans)

    for kind, (field, sigils, _, _) in _ENTITIES.items():
        for ent in _objects(entities, kind, "entities"):
            name, a, b = ent.get(field), ent.get("start"), ent.get("end")
            if not isinstance(name, str) or not name:
                continue
            # X v2: indices are code points into the escaped text, start inclusive, end exclusive.
            ok = type(a) is int and type(b) is int and 0 <= a < b <= len(text)
            piece = text[a:b] if ok else ""
            fits = (piece[:1] in tuple(sigils) and piece[1:].casefold() == name.casefold()
                    if sigils else piece == name)  # "@"/"#"/"$" + name matches in any case
            if fits and free(a, b):
                spans.append((a, b, kind, ent))
            else:
                pending.append((kind, ent, name, sigils))
    # Indices that do not fit (UTF-16 units, unescaped text, shifted): first free whole word.
    for kind, ent, name, sigils in pending:
        prefix = f"[{re.escape(sigils)}]" if sigils else ""
        for m in re.finditer(rf"(?<!\w){prefix}{re.escape(name)}(?!\w)", text,
                             re.IGNORECASE if sigils else 0):
            if free(*m.span()):
                spans.append((*m.span(), kind, ent))
                break
    return sorted(spans, key=lambda span: span[0])


def _link_target(kind: str, ent: dict, piece: str) -> tuple[str, str, str] | None:
    """(Link kind, href, display) for an entity span; None leaves the span as plain text."""
    field, _, link_kind, href = _ENTITIES[kind]
    if kind != "urls":
        return link_kind, href.format(quote(ent[field], safe="")), piece
    expanded = ent.get("expanded_url")
    href = expanded if isinstance(expanded, str) and expanded else ent["url"]
    parts = urlsplit(href)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or scrub(href) != href:
        return None  # e.g. javascript: or a control character -- only clean http(s) hrefs leave
    display = ent.get("display_url")
    if not isinstance(display, str) or not display.strip():
        display = re.sub(r"^https?://", "", href, flags=re.IGNORECASE)
    return link_kind, href, display


def _render(text: str, entities: dict, drop=None) -> tuple[str, tuple[Link, ...]]:
    """Final, clean text and its Links; trailing URL entities for which drop(entity) holds are cut."""
    spans = _locate(text, entities)  # X's indices point into the text as sent: locate first
    cut = len(text)
    # X appends the media link(s) and the quote link at the end of the text: cut from the back.
    for start, end, kind, ent in reversed(spans):
        if drop is None or kind != "urls" or not drop(ent) or scrub(text[end:cut]).strip():
            break
        cut = start
    # Then clean piece by piece, in order: each Link counts the cleaned text before it.
    cleaner = Cleaner()
    out: list[str] = []
    links: list[Link] = []
    pos = length = 0
    for start, end, kind, ent in spans:
        target = _link_target(kind, ent, text[start:end]) if end <= cut else None
        if target is not None:
            plain = cleaner.feed(_unescape(text[pos:start]))  # plain segments only, exactly once
            display = cleaner.feed(target[2])
            length += len(plain)
            if display:
                links.append(Link(length, length + len(display), target[0], target[1], display))
            length += len(display)
            out += [plain, display]
            pos = end
    out.append(cleaner.feed(_unescape(text[pos:cut])))
    final = "".join(out).rstrip()
    # rstrip can only shorten a link whose display ended in white space (a hostile display_url).
    links = [link if link.end <= len(final) else replace(link, end=len(final), display=final[link.start:])
             for link in links if link.start < len(final)]
    return final + cleaner.close(), tuple(links)


def _attachment_link(quoted_id: str | None):
    """drop() for _render: a media link (media_key or .../status/N/photo|video/N) or the quote's."""
    def drop(ent: dict) -> bool:
        expanded = ent.get("expanded_url")
        status = _STATUS_RE.fullmatch(expanded) if isinstance(expanded, str) else None
        return bool(ent.get("media_key")) or bool(status and (status[2] or status[1] == quoted_id))
    return drop


def _one_media(key: str, item: dict) -> XMedia:
    where = f"media {key}"
    kind = _get(item, "type", str, where)
    _require(kind, f"{where} has no type")
    # Only video/mp4 variants play in <video>; HLS (.m3u8) is left out. GIFs carry bit_rate 0.
    mp4 = sorted((v for v in _objects(item, "variants", where)
                  if v.get("content_type") == "video/mp4" and isinstance(v.get("url"), str)),
                 key=lambda v: v.get("bit_rate") or 0)
    photo = kind == "photo"
    return XMedia(key=key, type=kind, url=_get(item, "url", str, where) if photo else None,
                 preview_url=None if photo else _get(item, "preview_image_url", str, where),
                 width=_get(item, "width", int, where), height=_get(item, "height", int, where),
                 alt_text=_clean_or_none(_get(item, "alt_text", str, where)),
                 duration_ms=_get(item, "duration_ms", int, where),
                 variants=tuple({"url": v["url"], "bit_rate": v.get("bit_rate") or 0,
                                 "content_type": "video/mp4"} for v in mp4))


def _clean_or_none(text: str | None) -> str | None:
    return None if text is None else clean(text)


def _media(tweet: dict, inc: _Used) -> tuple[XMedia, ...]:
    where = f"tweet {tweet['id']}.attachments"
    keys = _get(_get(tweet, "attachments", dict, where, {}), "media_keys", list, where, [])
    # X leaves out of includes.media what it cannot return (deleted, withheld): skip those.
    return tuple(_one_media(key, item) for key in keys
                 if (item := inc.get("media", key)) is not None)


def _mentioned(tweet: dict, user_id: object) -> str | None:
    """Username of the tweet's mention entity whose id is user_id, if any."""
    for source in (tweet, tweet.get("note_tweet")):
        if user_id is None or not isinstance(source, dict):
            continue
        for ent in _objects(_get(source, "entities", dict, "tweet", {}), "mentions", "entities"):
            if ent.get("id") == user_id and isinstance(ent.get("username"), str):
                return clean(ent["username"])
    return None


def _author(tweet: dict, inc: _Used, source_user: XUser | None, own: bool,
            hint: dict | None = None) -> XUser:
    """includes.users[author_id], else source_user, else a stub (author_id may not be expanded)."""
    author_id = tweet.get("author_id")
    found = inc.get("users", author_id)
    if found is not None:
        return _user(found)
    if source_user is not None and (author_id == source_user.id or (own and author_id is None)):
        return source_user
    username = _mentioned(hint, author_id) if hint else None  # "RT @NASA: ..." names the author
    return XUser(id=author_id or "", username=username or "", name="")


def _quoted(tweet_id: str, inc: _Used, source_user: XUser | None) -> XQuotedPost | None:
    quoted = inc.get("tweets", tweet_id)
    if quoted is None:
        return None  # deleted or withheld: X leaves it out of includes.tweets
    where = f"includes.tweets {tweet_id}"
    _check_tweet(quoted, where)
    text, links = _render(*_text_source(quoted), drop=_attachment_link(_refs(quoted).get("quoted")))
    created = quoted.get("created_at")
    return XQuotedPost(id=quoted["id"], author=_author(quoted, inc, source_user, own=False),
                      text=text, links=links, media=_media(quoted, inc),
                      created_at=None if created is None else _parse_time(created, where),
                      lang=_clean_or_none(_get(quoted, "lang", str, where)))


def normalize_tweet(tweet: dict, includes: dict, source_user: XUser | None = None) -> XPost:
    """Normalize one timeline tweet into an XPost, resolving repost/quote/reply/media via includes."""
    return _normalize_tweet(tweet, _Includes(includes).for_post(), source_user)


def _normalize_tweet(tweet: dict, inc: _Used, source_user: XUser | None) -> XPost:
    _check_tweet(tweet, "tweet")
    where = f"tweet {tweet['id']}"
    created_at = _parse_time(tweet.get("created_at"), where)
    repost_of = _refs(tweet).get("retweeted")
    original = inc.get("tweets", repost_of)
    # A repost shows the original's author and content but keeps its own id and date.
    content, original_created_at = tweet, None
    if original is not None:
        content = _check_tweet(original, f"includes.tweets {repost_of}")
        if "created_at" in original:
            original_created_at = _parse_time(original["created_at"], f"tweet {repost_of}")
    author = (_author(original, inc, source_user, own=False, hint=tweet) if original is not None
              else _author(tweet, inc, source_user, own=True))
    refs = _refs(content)
    quoted = _quoted(refs["quoted"], inc, source_user) if "quoted" in refs else None
    if repost_of and original is None:  # original deleted/withheld: the "RT @x: ..." text, whole
        text, links = _render(*_text_source(tweet))
    else:
        text, links = _render(*_text_source(content), drop=_attachment_link(quoted and quoted.id))
    reply_user_id = reply_username = None
    if "replied_to" in refs:
        reply_user_id = _get(content, "in_reply_to_user_id", str, where)
        replied = inc.get("users", reply_user_id)
        reply_username = _user(replied).username if replied else _mentioned(content, reply_user_id)
    sensitive = tweet.get("possibly_sensitive") is True or content.get("possibly_sensitive") is True
    return XPost(id=tweet["id"], author=author, text=text, links=links, media=_media(content, inc),
                created_at=created_at, lang=_clean_or_none(_get(content, "lang", str, where)),
                possibly_sensitive=sensitive,
                conversation_id=_get(tweet, "conversation_id", str, where),
                repost_of_id=repost_of, original_created_at=original_created_at,
                reply_to_id=refs.get("replied_to"), reply_to_user_id=reply_user_id,
                reply_to_username=reply_username, quoted=quoted,
                raw={"tweet": tweet, "includes": inc.used})


def normalize_page(payload: dict, source_user: XUser | None = None) -> XPage:
    """Normalize one GET /2/users/:id/tweets body into an XPage, posts in the given order."""
    _require(isinstance(payload, dict), "timeline body is not a JSON object")
    data = _get(payload, "data", list, "body", [])  # zero results: X omits "data"
    meta = _get(payload, "meta", dict, "body", {})
    count = _get(meta, "result_count", int, "meta", len(data))
    _require(count >= 0, "meta.result_count is negative")
    index = _Includes(payload.get("includes", {}))  # once per page, shared by its posts
    counts = index.counts
    return XPage(posts=[_normalize_tweet(tweet, index.for_post(), source_user) for tweet in data],
                newest_id=_get(meta, "newest_id", str, "meta"),
                oldest_id=_get(meta, "oldest_id", str, "meta"),
                next_token=_get(meta, "next_token", str, "meta"), result_count=count,
                # Billing counts every post and user object returned, expansions included.
                post_reads=len(data) + counts["tweets"], user_reads=counts["users"],
                errors=_objects(payload, "errors", "body"))


def normalize_users(payload: dict) -> tuple[list[XUser], list[dict]]:
    """Normalize a /2/users/by (list) or single-user (object) body into (users, errors)."""
    _require(isinstance(payload, dict), "users body is not a JSON object")
    data = payload.get("data", [])  # no name found: X returns only "errors"
    users = _objects({"data": [data] if isinstance(data, dict) else data}, "data", "body")
    return [_user(user) for user in users], _objects(payload, "errors", "body")
