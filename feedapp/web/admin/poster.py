"""/admin/poster: a printable A4 poster for notice boards, with a QR code of the app (or of one office's page).

Editors and admins; an office editor gets their office's poster (another office's is refused).
"""

from __future__ import annotations

from flask import abort, render_template, request, url_for
from flask_babel import gettext

from ..scope import base_url
from ..state import content_state
from . import actor, bp
from .users import qr_svg


@bp.get("/poster")
def show_poster():
    """The poster of the company's app, or of one office's page (?office=slug), ready to print on A4."""
    who = actor()
    state = content_state()
    slug = request.args.get("office", "")
    if not slug and who.office_only:
        slug = state.by_id[who.office_id].slug if who.office_id in state.by_id else ""
    office = None
    if slug:
        office = state.by_slug.get(slug)
        if office is None:
            abort(404, description=gettext("There is no office %(slug)s.", slug=slug))
    if not who.may_edit(office.id if office else None):  # an office editor: their own office's poster only
        abort(403, description=gettext("That is outside what your account may change."))
    root = base_url()
    if office:
        page = root + url_for("pages.show_office", slug=office.slug)
        feed = root + url_for("feeds.show_office_feed", slug=office.slug, fmt="rss")
    else:
        page = root + url_for("pages.show_feed")
        feed = root + url_for("feeds.show_company_feed", fmt="rss")
    choices = [(o.slug, o.name) for o in state.offices if who.may_edit(o.id)]
    if who.may_edit(None):
        choices.insert(0, ("", gettext("The whole company")))
    return render_template("admin/poster.html", office=office, page=page, feed=feed, qr=qr_svg(page),
                           choices=choices, chosen=office.slug if office else "")
