"""The bundled demo company, loaded through the same normalize-and-store path as polling."""

from __future__ import annotations

import json
from importlib import resources

from sqlalchemy.orm import Session

from feedapp.models import Office, Source
from feedapp.queries import office_by_slug
from feedapp.xapi.normalize import normalize_page, normalize_users
from feedapp.xapi.types import XUser

from .sources import upsert_source
from .store import store_posts


def _read(name: str) -> dict:
    return json.loads(resources.files("feedapp.demo").joinpath(name).read_text(encoding="utf-8"))


def load_demo(session: Session) -> list[str]:
    """Create the demo offices and sources and store their posts; safe to run twice."""
    manifest = _read("manifest.json")
    lines = [f"demo company: {manifest['company']}"]
    for item in manifest["offices"]:
        if office_by_slug(session, item["slug"]) is None:
            session.add(Office(slug=item["slug"], name=item["name"], language=item.get("language")))
    session.flush()
    users, _ = normalize_users(_read("users.json"))
    by_name = {u.username.lower(): u for u in users}
    for item in manifest["sources"]:
        user = by_name[item["username"].lower()]
        office = office_by_slug(session, item["office"]) if item.get("office") else None
        source, _ = upsert_source(session, user, office, bool(item.get("staff_only")))
        session.flush()
        new = _store_pages(session, source, user, manifest["pages"].get(user.username, []))
        lines.append(f"@{source.username}: {new} new posts")
    session.commit()
    return lines


def _store_pages(session: Session, source: Source, user: XUser, files: list[str]) -> int:
    new = 0
    for name in files:
        page = normalize_page(_read(name), source_user=user)
        new += len(store_posts(session, source, page.posts))
        if page.posts:
            newest = max(int(p.id) for p in page.posts)
            source.since_id = max(source.since_id or 0, newest)
    return new
