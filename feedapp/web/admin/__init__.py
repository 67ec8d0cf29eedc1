"""/admin: the comms console, one module per area, each thin over functions the CLI shares.

Editors and admins enter; each area and each action checks the role and the office scope on the
server (feedapp.roles) for every object it touches. Every action is CSRF-protected and audited.
"""

from __future__ import annotations

import functools

from flask import Blueprint, abort, current_app, render_template, request
from babel.numbers import format_currency
from flask_babel import get_locale, gettext, lazy_gettext as _l
from flask_login import current_user
from werkzeug.exceptions import Forbidden as HTTPForbidden

from feedapp.roles import Actor, Forbidden

from feedapp.db import get_session

from ..auth import require_editor
from ..errors import http_error
from ..scope import MAX_ID

bp = Blueprint("admin", __name__, url_prefix="/admin")

# The console's areas in menu order: (endpoint, label, admins only). Area modules add theirs on import.
AREAS: list[tuple[str, object, bool]] = []


def area(endpoint: str, label, admin_only: bool = False) -> None:
    """Put an area in the console's menu."""
    AREAS.append((f"admin.{endpoint}", label, admin_only))


@bp.before_request
def _editors_only():
    return require_editor()


# Row ids are INTEGER columns and post ids BIGINT (X ids): a larger number in a path is no row, and the
# database would refuse it (PostgreSQL: out of range; SQLite's driver: OverflowError), a 500.
ROW_ID_MAX = 2**31 - 1


@bp.url_value_preprocessor
def _ids_in_range(_endpoint, values):
    for name, value in (values or {}).items():
        if isinstance(value, int) and not 0 < value <= (MAX_ID if name == "post_id" else ROW_ID_MAX):
            abort(404)


@bp.after_request
def _never_cache(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(Forbidden)
def _forbidden(exc: Forbidden):
    get_session().rollback()  # nothing of a refused action is kept
    return http_error(HTTPForbidden(description=gettext("That is outside what your account may change.")))


def actor() -> Actor:
    """The signed-in person as the console's checks see them."""
    return Actor.of(current_user)


def admins_only(view):
    """A view for admins only (403 for editors): staff accounts and branding are theirs."""
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403, description=gettext("This page is for administrators."))
        return view(*args, **kwargs)
    return wrapped


def menu() -> list[tuple[str, object, bool]]:
    """The areas the signed-in person may open: endpoint, label, and whether this request is in it."""
    views = current_app.view_functions
    here = getattr(views.get(request.endpoint), "__module__", None)
    return [(endpoint, label, views[endpoint].__module__ == here) for endpoint, label, admin_only in AREAS
            if current_user.is_admin or not admin_only]


def money(amount: float, exact: bool = False) -> str:
    """US dollars in the reader's locale ("$0.25", "0,25 $US"); exact keeps every digit (a price of $0.005)."""
    return format_currency(amount, "USD", locale=str(get_locale() or "en"), decimal_quantization=not exact)


@bp.context_processor
def _console_menu():
    return {"console_menu": menu, "money": money}


@bp.get("/")
def console_home():
    """The console's front page: its areas, as large targets for a phone."""
    return render_template("admin/home.html")


# Each area module registers its routes; the menu follows the order of the area() calls.
from . import posts  # noqa: E402,F401  (registers "Posts" itself)
from . import mustread  # noqa: E402,F401  (registers "Must read" itself, after Posts)
from . import branding, offices, poster, sources, users  # noqa: E402,F401

area("list_sources", _l("Sources"))
area("list_offices", _l("Offices"))
area("list_users", _l("Staff accounts"), admin_only=True)
area("show_branding", _l("Branding"), admin_only=True)
area("show_poster", _l("Poster"))
from . import survey  # noqa: E402,F401  (registers "Survey" itself)

from . import reach  # noqa: E402,F401  (registers "Reach" itself)
from . import screens  # noqa: E402,F401  (registers "Screens" itself)

from . import audit  # noqa: E402,F401  (registers "Audit log" itself, last)
