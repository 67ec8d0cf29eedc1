"""The installable app: web app manifest, service worker and offline page."""

from __future__ import annotations

import hashlib
import json

from flask import Blueprint, Response, current_app, render_template, request, url_for
from flask_babel import force_locale, gettext
from flask_login import AnonymousUserMixin, current_user

from feedapp.assets import asset_url

from .branding import accent_css_url, brand_file_url, icon_url, short_name, site_name, theme_colour
from .i18n import SUPPORTED, current_locale

bp = Blueprint("pwa", __name__)

BACKGROUND = "#ffffff"
# Files every page needs, cached when the worker installs (the "app shell"); with a logo set, its icons
# (feedapp.web.branding) replace the static ones, and a theme colour adds its stylesheet.
SHELL_ASSETS = ("feed.css", "feed.js")
ICONS = ("icon-192", "icon-512", "maskable-512", "apple-touch-icon")
# The worker's own policy (connect-src falls back to default-src): same origin only.
WORKER_CSP = "default-src 'self'"


@bp.get("/manifest.webmanifest")
def show_manifest():
    """The web app manifest (W3C Web Application Manifest), in the reader's language."""
    manifest = {
        "id": "/",
        "name": site_name(),
        "short_name": short_name(),
        "description": gettext("News from the company for every team."),
        "lang": current_locale(),
        "dir": "ltr",
        "start_url": url_for("pages.show_feed"),
        "scope": "/",
        "display": "standalone",
        "theme_color": theme_colour(),
        "background_color": BACKGROUND,
        "icons": [
            {"src": icon_url("icon-192"), "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": icon_url("icon-512"), "sizes": "512x512", "type": "image/png", "purpose": "any"},
            {"src": icon_url("maskable-512"), "sizes": "512x512", "type": "image/png", "purpose": "maskable"},
        ],
    }
    body = json.dumps(manifest, ensure_ascii=False, indent=1)
    # no-cache with an ETag: the browser asks each time it looks (rarely: installing, checking for an update) and
    # gets a 304 while nothing changed, so a new name, colour or icon from the console shows at once.
    response = Response(body, mimetype="application/manifest+json",
                        headers={"Cache-Control": "public, no-cache", "Vary": "Accept-Language, Cookie"})
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/sw.js")
def show_service_worker():
    """The service worker, from the site root so its scope is the whole site."""
    offline = {code: url_for("pwa.show_offline", lang=code) for code in SUPPORTED}
    shell = [asset_url(name) for name in SHELL_ASSETS] + [icon_url(name) for name in ICONS]
    shell += [url for url in (accent_css_url(), brand_file_url("logo-header")) if url] + list(offline.values())
    body = render_template("sw.js", version=_version(shell), shell=shell, offline_urls=offline,
                           removed_url=url_for("posts.list_removed"), notification=_notification_defaults())
    # Browsers must re-check the worker on every visit to pick up a new version (SW spec, "update").
    response = Response(body, mimetype="text/javascript", headers={
        "Cache-Control": "no-cache",
        # A worker's own CSP governs its fetch(), and templates/sw.js fetches only our own origin, in both
        # FEEDAPP_MEDIA_PROXY modes: X's images and videos (proxy off) it leaves to the page and the browser.
        "Content-Security-Policy": WORKER_CSP,
    })
    # Browsers re-check the worker on every navigation: an unchanged one costs a 304, not its body.
    response.add_etag()
    return response.make_conditional(request)


def _notification_defaults() -> dict:
    """What the worker's notifications show besides the push's own text: the site's icon, a badge, and (in every
    language, as the worker is one file for all) the line for a push it cannot read."""
    generic = {}
    for code in SUPPORTED:
        with force_locale(code):
            generic[code] = {"title": gettext("Must-read post"),
                             "body": gettext("There is a new must-read post. Open the app to read it.")}
    return {"icon": icon_url("icon-192"), "badge": asset_url("icons/badge-96.png"), "generic": generic,
            "key_url": url_for("push.show_key"), "subscriptions_url": url_for("push.add_subscription")}


@bp.get("/offline")
def show_offline():
    """What the worker shows for a page that was never opened while online.

    The worker saves it when it installs, often while someone is signed in, and shows it to
    whoever holds the phone later: it is rendered as for an anonymous reader, never naming anyone.
    """
    body = render_template("offline.html", current_user=AnonymousUserMixin())
    return body, 200, {"Cache-Control": "no-cache"}


@bp.after_app_request
def _mark_audience(response):
    # Tells the service worker which cache an HTML page may go to, and when a reader signed out.
    if response.mimetype == "text/html":
        response.headers["X-Feedapp-Audience"] = "staff" if current_user.is_authenticated else "public"
        response.headers["Content-Language"] = current_locale()  # the worker's offline page follows it
    return response


def _version(shell: list[str]) -> str:
    """Changes whenever a shell file or the worker itself changes: old caches then go."""
    digest = current_app.extensions.get("feedapp.sw_source")
    if digest is None:  # read the worker's template once per process, not on every update check
        source = current_app.jinja_env.loader.get_source(current_app.jinja_env, "sw.js")[0]
        digest = current_app.extensions["feedapp.sw_source"] = hashlib.sha256(source.encode()).hexdigest()
    return hashlib.sha256(("\n".join(shell) + digest).encode()).hexdigest()[:12]
