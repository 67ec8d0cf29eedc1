"""Break-room screens: add, list, remove, look up by token, and what a screen shows.

No Flask: the CLI (`screens …`), the console's Screens area and the /screen/TOKEN routes all
call these. A screen's token is random, shown once, and stored only as its SHA-256 (like a
private feed token), so a copy of the database opens no screen. Removing a screen deletes its
row: its URL answers 404 from the next request on, the same as a token that never existed.
Nothing here commits; callers do.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from feedapp import mustread
from feedapp.accounts import audit, hash_secret
from feedapp.models import Office, Post, Screen, utcnow
from feedapp.queries import pinned_posts, posts_for_feed
from feedapp.roles import Actor

NAME_MAX = 100
# Printable names without slashes or controls: they appear in the CLI, the console and the audit log.
NAME_RE = re.compile(r"^[^\x00-\x1f\x7f/]{1,100}$")
SEEN_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often per screen
RECENT = 20  # newest posts of the scope a screen rotates through, besides the pinned ones
PINNED_EVERY = 3  # a pinned post comes back after every this many other posts
# Must-read and pinned posts a screen rotates through at most (the newest marked first): with more, a round
# would take most of an hour before any recent post, and the page would outgrow old players' memory.
HEADS_MAX = 8


class ScreenError(ValueError):
    """Input or state that refuses the change; nothing was changed. str() is the operator-facing reason."""


class ScreenExists(ScreenError):
    """The name is taken by another screen (the console says so; any other ScreenError is about the name itself)."""


def clean_name(name: str) -> str:
    """A screen's name: 1-100 characters without slashes or control characters, spaces collapsed."""
    name = " ".join((name or "").split())
    if not NAME_RE.match(name):
        raise ScreenError("give a name of 1-100 characters, without slashes")
    return name


def add_screen(session: Session, actor: Actor, name: str, office: Office | None = None,
               staff_only: bool = False) -> tuple[Screen, str]:
    """A new screen of office (None: company-wide only) and its token, returned this once. Caller commits.

    Office editors add screens of their own office only; a company-wide screen needs a
    company-wide editor or an admin.
    """
    actor.check(office.id if office else None)
    name = clean_name(name)
    if session.scalar(select(Screen.id).where(Screen.name == name)) is not None:
        raise ScreenExists(f"a screen named {name!r} exists already")
    token = secrets.token_urlsafe(32)
    screen = Screen(name=name, token_hash=hash_secret(token), office_id=office.id if office else None,
                    staff_only=staff_only, created_by=actor.name)
    session.add(screen)
    session.flush()
    audit(session, actor.name, "add_screen", name,
          f"office={office.slug if office else '-'} staff_only={'yes' if staff_only else 'no'}")
    return screen, token


def list_screens(session: Session, actor: Actor) -> list[Screen]:
    """The screens the actor may manage (an office editor: that office's), company-wide first, then by name."""
    stmt = select(Screen).order_by(Screen.office_id.is_not(None), Screen.office_id, Screen.name)
    if not actor.is_admin:
        if not actor.is_editor:
            return []
        if actor.office_only:
            stmt = stmt.where(Screen.office_id == actor.office_id)
    return list(session.scalars(stmt))


def screen_by_name(session: Session, actor: Actor, name: str) -> Screen:
    """The screen with that name that the actor may manage, or ScreenError / Forbidden."""
    screen = session.scalar(select(Screen).where(Screen.name == " ".join((name or "").split())))
    if screen is None:
        raise ScreenError(f"no screen named {name!r}")
    actor.check(screen.office_id)
    return screen


def remove_screen(session: Session, actor: Actor, screen: Screen) -> None:
    """Revoke a screen at once: its row goes, so its page, posts and feed answer 404 from now on. Caller commits."""
    actor.check(screen.office_id)
    audit(session, actor.name, "remove_screen", screen.name)
    session.delete(screen)
    session.flush()


def screen_for_token(session: Session, token: str) -> Screen | None:
    """The screen whose URL carries this token, or None (unknown and removed alike)."""
    digest = hash_secret(token or "")
    screen = session.scalar(select(Screen).where(Screen.token_hash == digest))
    # Looked up by hash, then compared in constant time, as private feed tokens are.
    if screen is None or not hmac.compare_digest(screen.token_hash, digest):
        return None
    return screen


def touch(session: Session, screen: Screen, now: datetime | None = None) -> bool:
    """Record that the screen fetched, at most once per SEEN_EVERY; True when a row was written. Caller commits.

    A wall of screens each polling every minute would otherwise write on every request: the
    row read for the lookup says whether a write is due, and the UPDATE's own condition keeps
    two workers answering the same screen at once from both writing.
    """
    now = now or utcnow()
    if screen.last_seen_at is not None and now - screen.last_seen_at < SEEN_EVERY:
        return False
    result = session.execute(
        update(Screen).where(Screen.id == screen.id,
                             or_(Screen.last_seen_at.is_(None), Screen.last_seen_at < now - SEEN_EVERY))
        .values(last_seen_at=now).execution_options(synchronize_session=False))
    screen.last_seen_at = now
    return bool(result.rowcount)


def must_read_posts(session: Session, screen: Screen, now: datetime) -> list[Post]:
    """The active must-read posts of the screen's audience (published, not ended): they head the rotation."""
    return mustread.active_must_reads(session, screen.office_id, staff=screen.staff_only, now=now)


@dataclass(frozen=True)
class Playlist:
    """What a screen rotates through: the posts (pinned and must-read first) and the order to show them in."""

    posts: list[Post]
    pinned: int  # how many of posts, from the start, are must-read or pinned
    order: list[int]  # indexes into posts, one round of the rotation


def screen_posts(session: Session, screen: Screen, now: datetime | None = None, recent: int = RECENT) -> Playlist:
    """The screen's posts: company-wide plus its office's, staff-only ones only on a staff-only screen.

    Hidden and pending posts never (the named reads keep to feedapp.visibility.published).
    Must-read and pinned posts (at most HEADS_MAX) come first and come back after every PINNED_EVERY others.
    """
    now = now or utcnow()
    staff = screen.staff_only
    heads = [*must_read_posts(session, screen, now), *pinned_posts(session, screen.office_id, staff=staff, now=now)]
    posts: list[Post] = []
    seen: set[int] = set()

    def add(found: list[Post], most: int | None = None) -> None:
        for post in found:
            key = post.canonical_id or post.id  # a post reached twice (a repost, a pinned one) is shown once
            if key not in seen and (most is None or len(posts) < most):
                seen.add(key)
                posts.append(post)

    add(heads, HEADS_MAX)  # beyond it, a pinned post shows among the others if it is recent
    pinned = len(posts)
    add(posts_for_feed(session, screen.office_id, staff=staff, limit=recent))
    return Playlist(posts, pinned, rotation(pinned, len(posts) - pinned))


def rotation(pinned: int, others: int, every: int = PINNED_EVERY) -> list[int]:
    """One round: every pinned post, then the others with the next pinned one after each `every` of them.

    rotation(2, 5) == [0, 1, 2, 3, 4, 0, 5, 6]: pinned posts open the round and come back more often.
    """
    order = list(range(pinned))
    turn = 0
    for i in range(others):
        order.append(pinned + i)
        if pinned and (i + 1) % every == 0 and i + 1 < others:
            order.append(turn % pinned)
            turn += 1
    return order


# A sentence ends at . ! ? … ؟ (and closing quotes) before a space, or at 。！？, which Chinese and Japanese
# follow with no space at all (static/screen.js cuts with the same rule).
SENTENCE_END_RE = re.compile(r"[.!?…؟][\"'”’)\]]*(?=\s)|[。！？][」』”’)）\]]*")


def cut_at_sentence(text: str, limit: int) -> tuple[str, bool]:
    """(text, False) when it fits in limit characters; else its longest head of whole sentences, True.

    Without a sentence end early enough, the head is cut at a word boundary with "…".
    """
    text = text.strip()
    if len(text) <= limit:
        return text, False
    ends = [m.end() for m in SENTENCE_END_RE.finditer(text[:limit + 1]) if m.end() <= limit]
    if ends and ends[-1] >= limit // 3:  # at least a third of the room: else a word cut keeps more
        return text[:ends[-1]].rstrip(), True
    window = text[:limit]
    head = window.rsplit(None, 1)[0] if " " in window.strip() else window[:limit - 1]
    return head.rstrip(" ,;:-") + "…", True


def seconds_for(text: str, base: float) -> float:
    """How long a post stays: base seconds, plus one per 20 words, at most twice base (and base + 20 s)."""
    extra = len(text.split()) // 20
    return base + min(extra, base, 20)
