"""/admin/screens: break-room screens. Editors add and remove the screens of what they edit (an office
editor: that office's only, checked again in feedapp.screens); a new screen's URL is shown once, with its QR code.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from feedapp import screens
from feedapp.db import get_session
from feedapp.models import Office, Screen

from ..forms import REQUIRED, ActionForm, plain_text
from ..scope import base_url
from ..state import content_state
from . import actor, area, bp
from .users import qr_svg


class ScreenForm(FlaskForm):
    name = StringField(_l("Name (where it hangs)"), validators=[
        DataRequired(REQUIRED), Length(max=screens.NAME_MAX, message=_l("Use at most %(max)d characters.")),
        plain_text])
    office = SelectField(_l("Posts it shows"), validate_choice=True)
    staff_only = BooleanField(_l("Inside the premises: staff-only posts too"))


def _form() -> ScreenForm:
    form = ScreenForm()
    who = actor()
    choices = [("", gettext("Company-wide posts only"))] if who.may_edit(None) else []
    choices += [(o.slug, gettext("Company-wide and %(office)s", office=o.name)) for o in content_state().offices
                if who.may_edit(o.id)]
    form.office.choices = choices
    return form


def _render_list(form: ScreenForm):
    db = get_session()
    rows = screens.list_screens(db, actor())
    return render_template("admin/screens.html", screens=rows, form=form, action=ActionForm(),
                           offices=content_state().by_id)


@bp.get("/screens")
def list_screens():
    """The screens this editor manages, when each last fetched, and a form to add one."""
    return _render_list(_form())


@bp.post("/screens")
def create_screen():
    """Add a screen and show its URL and QR code, this once."""
    form = _form()
    if not form.validate_on_submit():
        return _render_list(form), 400
    db = get_session()
    info = content_state().by_slug.get(form.office.data)
    office = db.get(Office, info.id) if info else None
    try:
        screen, token = screens.add_screen(db, actor(), form.name.data, office, form.staff_only.data)
    except screens.ScreenExists:
        form.name.errors.append(gettext("A screen with that name exists already."))
        return _render_list(form), 400
    except screens.ScreenError:  # the name itself (a slash): say so, not "exists already"
        form.name.errors.append(gettext("Use a name without slashes."))
        return _render_list(form), 400
    db.commit()
    url = base_url() + url_for("screens.show_screen", token=token)
    feed = base_url() + url_for("screens.show_screen_feed", token=token)
    return render_template("admin/screen_added.html", screen=screen, url=url, feed=feed, qr=qr_svg(url),
                           office=info)


@bp.get("/screens/<int:screen_id>/remove")
def confirm_remove_screen(screen_id: int):
    """The confirm step of removing a screen."""
    return render_template("admin/screen_remove.html", screen=_get_screen(screen_id), action=ActionForm())


@bp.post("/screens/<int:screen_id>/remove")
def remove_screen(screen_id: int):
    """Remove a screen: its URL stops working at once."""
    screen = _get_screen(screen_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    db = get_session()
    name = screen.name
    screens.remove_screen(db, actor(), screen)
    db.commit()
    flash(gettext("Screen %(name)s removed: its address no longer works.", name=name))
    return redirect(url_for("admin.list_screens"), code=303)


def _get_screen(screen_id: int) -> Screen:
    """A screen this editor may manage (403 for another office's)."""
    screen = get_session().get(Screen, screen_id)
    if screen is None:
        abort(404, description=gettext("There is no such screen."))
    actor().check(screen.office_id)
    return screen


area("list_screens", _l("Screens"))
