"""The site's branding as pages, feeds and the manifest show it, and the routes of its files.

Every value comes from the per-worker ContentState (re-read only when a scope version changes):
no request reads branding from the database, and a change shows within FEEDAPP_STATE_TTL. The
logo's files and the accent stylesheet have URLs that change with their content, so browsers and
the service worker may keep them for a year and still see a change at once.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, current_app, url_for
from flask_babel import gettext

from feedapp.assets import asset_url
from feedapp.db import get_session
from feedapp.manage.branding import DEFAULT_THEME, ICON_SIZES, palette
from feedapp.models import SiteFile

from .state import content_state

bp = Blueprint("brand", __name__)

IMMUTABLE = "public, max-age=31536000, immutable"
# The static icons shipped in static/icons/ (made for the default theme colour), used while no logo is set.
STATIC_ICONS = {"icon-192": "icons/icon-192.png", "icon-512": "icons/icon-512.png",
                "maskable-512": "icons/maskable-512.png", "apple-touch-icon": "icons/apple-touch-icon.png"}
# URL name -> SiteFile name. The stored logo keeps a JPEG's format, so its URL names no type; the rest are PNG.
SERVED = {**{f"{name}.png": name for name in (*ICON_SIZES, "logo-header")}, "logo": "logo"}
URL_NAMES = {name: url_name for url_name, name in SERVED.items()}
COLOUR_RE = re.compile(r"^[0-9a-f]{6}$")


def site_name() -> str:
    """The name staff see in the header, page titles, the manifest and feed titles (the console's, else config)."""
    return content_state().branding.name or current_app.config["FEEDAPP_SITE_NAME"]


def short_name() -> str:
    """The name under the home screen icon (the console's, else a translated default)."""
    return content_state().branding.short_name or gettext("Staff feed")


def theme_colour() -> str:
    """The theme colour (#rrggbb): <meta name="theme-color">, the manifest, the accent of the pages."""
    return content_state().branding.theme or DEFAULT_THEME


def accent_css_url() -> str | None:
    """The stylesheet that sets the accent tokens when the console set a theme colour; None for the default."""
    theme = content_state().branding.theme
    return url_for("brand.show_accent_css", colour=theme[1:]) if theme else None


def brand_file_url(name: str) -> str | None:
    """The URL of a file made from the logo (logo, logo-header, an icon name), or None without a logo."""
    etag = content_state().branding.etags.get(name)
    if etag is None:
        return None
    return url_for("brand.show_file", etag=etag, name=URL_NAMES[name])


def icon_url(name: str) -> str:
    """An icon's URL: the one made from the logo when one is set, else the static one."""
    return brand_file_url(name) or asset_url(STATIC_ICONS[name])


@bp.get("/brand/<etag>/<name>")
def show_file(etag: str, name: str):
    """A logo file, kept by browsers for a year: its URL changes with its bytes (the etag in the path)."""
    if name not in SERVED or len(etag) > 64:
        abort(404)
    row = get_session().get(SiteFile, SERVED[name])
    if row is None or row.etag != etag:
        abort(404)  # an old URL: pages already name the new one
    return Response(row.data, mimetype=row.content_type, headers={
        "Cache-Control": IMMUTABLE, "ETag": f'"{row.etag}"', "Content-Length": str(len(row.data))})


@bp.get("/brand/accent-<colour>.css")
def show_accent_css(colour: str):
    """The accent tokens of static/feed.css for a theme colour, light and dark.

    The body depends on the URL alone (no database), so it is kept for a year; the pages name the
    current colour's URL. A separate file because the pages' CSP (style-src 'self') forbids inline styles.
    """
    if not COLOUR_RE.match(colour):
        abort(404)
    tokens = palette(f"#{colour}")
    body = (f":root{{--acc:{tokens.acc};--soft:{tokens.soft}}}\n"
            f"@media (prefers-color-scheme:dark){{:root{{--acc:{tokens.acc_dark};--soft:{tokens.soft_dark}}}}}\n")
    return Response(body, mimetype="text/css", headers={"Cache-Control": IMMUTABLE})
