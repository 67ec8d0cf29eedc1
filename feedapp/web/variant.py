"""The one place that says what a cached page or feed depends on besides the content.

A view describes its response as a Variant: the route and its arguments, the
canonical query, the office whose posts it adds, the language it is written
in, who reads it, the private-feed token it names and the base URL of its
links. The render-cache key and the ETag are made from every field of it, so
an input a body uses but the key forgets cannot happen by omission: a new input
has to become a field, and then it is in the key. Inputs a view does not
declare cannot reach its body: unknown query parameters are dropped from the
canonical path templates link to, and what is not a page (a feed, the OPML)
is built in the default language and never looks at who is signed in.

Which content scopes a response shows (feedapp.content_scopes) follows from
three fields: office (company-wide posts plus that office's; EVERY_OFFICE for a
response that may show a post of any office, such as a post's own page:
`variant(office=EVERY_OFFICE)`), company (False: no company-wide posts, as in
an office-only feed, `variant(office=slug, company=False)`, or in a list of
feeds that shows no post, `variant(company=False)`: the site scope only) and
staff (viewer or reader set: staff-only posts too).
feedapp.web.http.cached_response takes the versions of exactly those scopes
into the ETag, Last-Modified and render-cache key.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import astuple, dataclass
from urllib.parse import urlencode

from flask import current_app, g, request
from flask_login import current_user

from feedapp.content_scopes import EVERY_OFFICE

from .i18n import current_locale
from .scope import base_url

# Per RFC 9110 §8.8.3 an entity tag is opaque; a keyed hash keeps it so: nobody can
# compute one from public data (the content versions, a route) to learn how often,
# or when, content they cannot see has changed. (A public response's versions are
# those of public scopes only, so a staff-only post moves no public ETag at all.)
ETAG_BYTES = 12
__all__ = ["EVERY_OFFICE", "Variant", "canonical_path", "variant"]


@dataclass(frozen=True)
class Variant:
    """Everything besides the content that a cached body depends on."""

    route: str  # endpoint name
    args: tuple[tuple[str, str], ...]  # route arguments and the canonical query, sorted
    base: str  # absolute root of the links in the body
    locale: str | None  # the interface language; None: built in the default language
    office: str | None  # the office whose posts are added to the company-wide ones; EVERY_OFFICE: any office's
    viewer: int | None  # the signed-in reader (the page names them, and shows staff-only posts)
    reader: int | None  # the owner of a private feed token
    token: str | None  # SHA-256 of the private feed token the body links to (its rel=self)
    company: bool = True  # the company-wide posts are in the body (False: an office's own posts only, or no posts)
    # The must-reads shown that the viewer has acknowledged (feedapp.mustread): a "got it" changes that
    # person's pages only, so it is part of their variant rather than a scope everyone's versions carry.
    acked: tuple[int, ...] = ()

    @property
    def staff(self) -> bool:
        """The body may hold staff-only posts: it is for a signed-in reader or a private feed's owner."""
        return self.viewer is not None or self.reader is not None

    def etag(self, versions: tuple[int, ...]) -> str:
        """A weak ETag for this variant at these versions of the scopes it shows (RFC 9110 §8.8.3)."""
        message = repr((versions, astuple(self))).encode()
        digest = hmac.new(current_app.secret_key.encode(), message, hashlib.sha256).hexdigest()
        return f'W/"{digest[:2 * ETAG_BYTES]}"'


def variant(*, query: dict[str, object] | None = None, office: str | None = None, page: bool = True,
            reader: int | None = None, token: str | None = None, company: bool = True,
            acked: tuple[int, ...] = ()) -> Variant:
    """The Variant of the current request: its route, plus what the view resolved.

    query holds the parameters the view reads, already validated (None values
    are left out); everything else in the query string is ignored, and the
    templates link to the canonical path made from this query only. A page is
    a template, which may use the reader's language and name; anything else
    (feeds, OPML) is made by a pure builder from its arguments, in the default
    language, whoever asks.
    """
    args = {k: str(v) for k, v in (request.view_args or {}).items() if k != "token"}
    canonical = {k: str(v) for k, v in (query or {}).items() if v is not None}
    # With the script root: the path is a redirect target (`next=`), which must stay inside the app.
    g.canonical_path = request.script_root + request.path + (f"?{urlencode(sorted(canonical.items()))}" if canonical else "")
    return Variant(
        route=request.endpoint or "",
        args=tuple(sorted(args.items())) + tuple(("?" + k, v) for k, v in sorted(canonical.items())),
        base=base_url(),
        locale=current_locale() if page else None,
        office=office,
        viewer=current_user.id if page and current_user.is_authenticated else None,
        reader=reader,
        token=hashlib.sha256(token.encode()).hexdigest() if token else None,
        company=company,
        acked=tuple(sorted(acked)),
    )


def canonical_path() -> str:
    """This page's path with only the query parameters its view reads (for links back to it)."""
    # Responses that are never cached may link back with their whole query (e.g. /login?next=…).
    return g.get("canonical_path") or request.script_root + request.full_path.rstrip("?")
