"""HTTP surfaces, one blueprint per module; views never call the X API."""

from __future__ import annotations

import re

from flask import Flask

from feedapp.render import page as page_render
from feedapp.render import post as post_render

# X tags some posts with codes that are not languages (X API: "und", "qme", "zxx" …).
NOT_LANGUAGES = {"und", "qam", "qct", "qht", "qme", "qst", "zxx", "art"}
LANG_RE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def lang_attr(code: str | None) -> str | None:
    """A post's language as an HTML lang value, or None when X gave no real language."""
    if not code or code in NOT_LANGUAGES or not LANG_RE.match(code):
        return None
    return code


def init_app(app: Flask, translations: str) -> None:
    """Register blueprints, error handlers, headers, caching and template helpers."""
    from . import (account, acks, admin, auth, branding, errors, feeds, health, http, i18n, media, pages, posts, push,
                   pwa, reach, screens, security, state, survey)
    from .sessions import LazySessionInterface
    from .variant import canonical_path

    app.session_interface = LazySessionInterface()
    app.url_map.converters["xid"] = posts.XIdConverter  # before any rule that names it
    for module in (health, pages, posts, acks, feeds, account, admin, pwa, push, reach, media, branding, survey,
                   screens):
        app.register_blueprint(module.bp)
    auth.init_app(app)
    i18n.init_app(app, translations)
    errors.init_app(app)
    security.init_app(app)
    http.init_app(app)
    state.init_app(app)
    media.init_app(app)
    app.jinja_env.globals.update(
        text_html=post_render.text_html,
        quoted_html=post_render.quoted_html,
        quote_visible=post_render.quote_visible,
        permalink=post_render.permalink,
        status_url=post_render.status_url,
        small_photo=media.page_photo,  # our /media/ route (FEEDAPP_MEDIA_PROXY), else X's small variant
        scaled=post_render.scaled,
        smallest_mp4=post_render.smallest_mp4,
        safe_url=post_render.safe_url,
        avatar=media.page_avatar,
        initials=post_render.initials,
        avatar_hue=post_render.avatar_hue,
        lang_attr=lang_attr,
        canonical_path=canonical_path,
        profile_url=post_render.profile_url,
        page_id=page_render.page_id,
        reply_to=page_render.reply_to,
        handle_list=page_render.handle_list,
        quoted_time=page_render.quoted_time,
        summary=page_render.summary,
        preview_image=media.page_preview_image,
        site_name=branding.site_name,
        theme_colour=branding.theme_colour,
        accent_css_url=branding.accent_css_url,
        icon_url=branding.icon_url,
        brand_file_url=branding.brand_file_url,
        branding=lambda: state.content_state().branding,
    )
