"""/admin/survey: start the one-question survey, watch it, close it, read and download its results.

An editor starts one for the company or an office they may edit (a forged office is refused with 403); the
count of answers shows only as "fewer than 5" until 5 are in, then per option with bars and as CSV.
"""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, url_for
from flask_babel import gettext, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import FieldList, SelectField, StringField
from wtforms.validators import Length

from feedapp import survey as surveys
from feedapp.db import get_session
from feedapp.models import Office, Survey

from ..forms import ActionForm, plain_text
from ..state import content_state
from . import actor, area, bp

# The console's words for feedapp.survey.SurveyError codes.
MESSAGES = {
    "question": _l("Write the question."),
    "question_long": _l("Use at most %(max)d characters."),
    "too_few": _l("Give at least %(min)d answers to choose from."),
    "too_many": _l("Give at most %(max)d answers to choose from."),
    "option_long": _l("Keep each answer to at most %(max)d characters."),
    "duplicate": _l("Two answers are the same."),
    "already_open": _l("A survey is already open there: close it first."),
    "closed": _l("This survey is already closed."),
}


class SurveyForm(FlaskForm):
    question = StringField(_l("Question"), validators=[Length(max=surveys.QUESTION_MAX * 2), plain_text])
    options = FieldList(StringField(_l("Answer"), validators=[Length(max=surveys.OPTION_MAX * 2), plain_text]),
                        min_entries=surveys.OPTIONS_MAX, max_entries=surveys.OPTIONS_MAX)
    # Checked in the view, not against the choices: an office outside the editor's is a 403, not a form error.
    office = SelectField(_l("Who is asked"), choices=[], validate_choice=False)


def _form(form: SurveyForm | None = None) -> SurveyForm:
    form = form or SurveyForm()
    who = actor()
    choices = [(str(o.id), o.name) for o in content_state().offices if who.may_edit(o.id)]
    if who.may_edit(None):
        choices.insert(0, ("", gettext("The whole company")))
    form.office.choices = choices
    return form


def _survey(survey_id: int) -> Survey:
    """A survey of an audience this editor may edit (404 unknown, 403 another office's)."""
    survey = get_session().get(Survey, survey_id)
    if survey is None:
        abort(404, description=gettext("There is no such survey."))
    actor().check(survey.office_id)
    return survey


def _render(form: SurveyForm):
    db, who = get_session(), actor()
    names = {o.id: o.name for o in content_state().offices}
    open_ = [s for s in surveys.open_surveys(db) if who.may_edit(s.office_id)]
    past = surveys.past_surveys(db, who)
    results = {s.id: surveys.results(db, s) for s in open_ + past}
    return render_template("admin/survey.html", form=form, open_surveys=open_, past=past, results=results,
                           names=names, action=ActionForm(), minimum=surveys.RESULTS_MIN)


@bp.get("/survey")
def show_survey():
    """The open surveys with their results (from 5 answers), a form to start one, and past surveys."""
    return _render(_form())


@bp.post("/survey")
def start_survey():
    """Start a survey for the company or one office."""
    form = _form(SurveyForm())
    if not form.validate_on_submit():
        return _render(form), 400
    db = get_session()
    office = None
    if form.office.data:
        # isascii: str.isdigit() takes other scripts' digits; the bound: past INTEGER the database errors out.
        digits = form.office.data.isascii() and form.office.data.isdigit() and int(form.office.data) < 2**31
        office = db.get(Office, int(form.office.data)) if digits else None
        if office is None:
            abort(400, description=gettext("There is no such office."))
    actor().check(office.id if office else None)
    try:
        survey = surveys.start(db, actor(), form.question.data or "", list(form.options.data), office)
    except surveys.SurveyError as exc:
        db.rollback()
        field = form.question if exc.code.startswith("question") else form.office if exc.code == "already_open" \
            else form.options
        field.errors = [*field.errors, str(MESSAGES.get(exc.code, str(exc))) % exc.params]
        return _render(form), 400
    db.commit()
    flash(gettext("Survey started: it heads the feed until each reader answers or you close it."))
    return redirect(url_for("admin.show_survey", _anchor=f"survey-{survey.id}"), code=303)


@bp.post("/survey/<int:survey_id>/close")
def close_survey(survey_id: int):
    """Close a survey: its card leaves the feed; its results stay."""
    survey = _survey(survey_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    db = get_session()
    try:
        surveys.close(db, actor(), survey)
    except surveys.SurveyError as exc:
        db.rollback()
        flash(str(MESSAGES.get(exc.code, str(exc))) % exc.params)
        return redirect(url_for("admin.show_survey"), code=303)
    db.commit()
    flash(gettext("Survey closed."))
    return redirect(url_for("admin.show_survey"), code=303)


@bp.get("/survey/<int:survey_id>/results.csv")
def download_survey(survey_id: int):
    """The results as a CSV file (question, option, count, percentage), once 5 have answered."""
    survey = _survey(survey_id)
    res = surveys.results(get_session(), survey)
    if not res.shown:
        abort(404, description=gettext("Results show once %(count)d people have answered.", count=surveys.RESULTS_MIN))
    return Response(surveys.results_csv(res), content_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="survey-{survey.id}.csv"'})


area("show_survey", _l("Survey"))
