"""The site's name as staff see it: header, page titles, the web app manifest."""

from __future__ import annotations

from flask import current_app


def site_name() -> str:
    """The name staff see in the header, page titles, the manifest and feed titles."""
    return current_app.config["FEEDAPP_SITE_NAME"]
