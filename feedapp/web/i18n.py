"""The reader's language: English and French, from Accept-Language or the reader's choice.

Post text is shown as written (with its own lang attribute); everything
around it follows the locale chosen here.
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, redirect, request
from flask_babel import Babel, format_date, format_datetime, get_locale

bp = Blueprint("i18n", __name__)
babel = Babel()

LOCALES = (("en", "English"), ("fr", "Français"))
SUPPORTED = tuple(code for code, _ in LOCALES)
LANG_COOKIE = "lang"
LANG_COOKIE_AGE = 400 * 24 * 3600  # browsers cap cookie lifetimes at 400 days


def select_locale() -> str:
    """The reader's choice (cookie), else the best match of Accept-Language, else English."""
    chosen = request.cookies.get(LANG_COOKIE)
    if request.endpoint == "pwa.show_offline" and request.args.get("lang") in SUPPORTED:
        chosen = request.args["lang"]  # the service worker saves one offline page per language
    if chosen in SUPPORTED:
        return chosen
    return request.accept_languages.best_match(SUPPORTED, default="en")


def current_locale() -> str:
    """The locale of this request as a language code (for <html lang>)."""
    return str(get_locale() or "en")


def when(dt) -> str:
    """A post's date and time, short, in the reader's language: "5 Mar 2030, 09:15 UTC"."""
    return format_datetime(dt, "d MMM y, HH:mm 'UTC'")


def when_full(dt) -> str:
    """The exact date and time for a tooltip: "Tuesday 5 March 2030, 09:15:00 UTC"."""
    return format_datetime(dt, "EEEE d MMMM y, HH:mm:ss 'UTC'")


def day(dt) -> str:
    """A date alone, in the reader's language."""
    return format_date(dt, "medium")


def init_app(app: Flask, translations: str) -> None:
    """Install Flask-Babel with our selector and the template helpers."""
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "UTC")
    babel.init_app(app, locale_selector=select_locale, default_translation_directories=translations)
    app.jinja_env.globals.update(current_locale=current_locale, locales=LOCALES, when=when,
                                 when_full=when_full, day=day)
    app.register_blueprint(bp)


@bp.get("/language/<code>")
def choose_language(code: str):
    """Remember the reader's language, then go back.

    A GET on purpose: the choice changes only how this browser's pages read, so
    a link is enough and every page stays cacheable (no per-visitor form token).
    """
    from .auth import safe_next

    response = redirect(safe_next(request.args.get("next")), code=303)
    if code in SUPPORTED:
        response.set_cookie(LANG_COOKIE, code, max_age=LANG_COOKIE_AGE, httponly=True, samesite="Lax",
                            secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response
