"""Content scopes: which part of the content a write changes, and which parts a response shows.

The content is cut into scopes, each with its own version (table scope_versions):
SITE (what every response shows or depends on: the offices, the sources and their
settings, which accounts are protected) and, per audience and office, the posts:
"public:company", "public:office:<id>", "staff:company", "staff:office:<id>".
A write bumps the scopes it changes (feedapp.ingest.store.bump_content_version); a
response's ETag, Last-Modified and render-cache key come from the versions of the
scopes it shows (reader_scopes), so a post of one office leaves the other offices'
feeds alone, and a staff-only post every public response.
"""

from __future__ import annotations

from collections.abc import Iterable

SITE = "site"
# A response that may show posts of any office (a post's own page): not a slug, which is [a-z0-9-].
EVERY_OFFICE = "*"


def posts_scope(office_id: int | None, staff_only: bool) -> str:
    """The scope of the posts of a source of this office (None: company-wide) and visibility."""
    audience = "staff" if staff_only else "public"
    return f"{audience}:office:{office_id}" if office_id is not None else f"{audience}:company"


def reader_scopes(office_ids: Iterable[int | None], staff: bool) -> tuple[str, ...]:
    """SITE and the posts' scopes of these offices (None: company-wide) that a reader sees.

    Public readers see the public posts; staff (signed in, or through a private feed
    token) the staff-only ones too.
    """
    audiences = (False, True) if staff else (False,)
    return (SITE, *(posts_scope(office_id, staff_only) for staff_only in audiences for office_id in office_ids))

