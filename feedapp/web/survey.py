"""/survey: a reader answers the one-question survey from the card at the top of the feed.

The card is part of the render-cached page, the same for everyone the page is shared by (it changes only
when a survey starts or closes, which bumps the page's scopes), so it carries no CSRF token: a token belongs
to one browser's session. static/survey.js fetches one from /survey/token when the reader taps an option;
without JavaScript, or with an expired token, the answer comes back as a one-button confirmation carrying a
fresh token. Nothing is counted without a valid token.

Signed-in staff answer as themselves (once per person, whatever the device); anonymous readers per device, by
a random token in an HttpOnly cookie of this path only (pages stay cacheable), stored only hashed, plus a
limit per client address against clearing the cookie to answer again. A second answer is refused by the
server; the `survey_done` cookie (ids only, never the answer) lets the page hide an answered card.
"""

from __future__ import annotations

import secrets

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request
from flask_babel import gettext
from flask_login import current_user
from flask_wtf.csrf import generate_csrf, validate_csrf
from werkzeug.exceptions import TooManyRequests
from wtforms import ValidationError

from feedapp import survey as surveys
from feedapp.db import get_session
from feedapp.models import Survey
from feedapp.throttle import Limit

from .auth import safe_next
from .limits import anonymous_client, throttle
from .security import csrf

bp = Blueprint("survey", __name__, url_prefix="/survey")

DEVICE_COOKIE = "survey_device"
DONE_COOKIE = "survey_done"
COOKIE_AGE = 400 * 24 * 3600  # browsers cap cookie lifetimes at 400 days
DONE_KEPT = 20
# Anonymous answers per client address (a whole office behind one NAT shares it): enough for a break room's
# readers, few enough that clearing the cookie to stuff the count soon stops counting.
ANSWER_LIMIT = Limit("survey-answer-client", 30, 60 * 60, failures_only=False)
ID_MAX = 2**31 - 1


@bp.get("/token")
def show_token():
    """A CSRF token for the card's form (static/survey.js asks when the reader taps an option)."""
    response = jsonify(csrfToken=generate_csrf())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/<int:survey_id>/answer")
@csrf.exempt  # checked below: without a valid token, the reader confirms on a page that carries one
def answer_survey(survey_id: int):
    """Count the reader's answer once, then back to the page they came from (303) with a thank-you."""
    if not 0 < survey_id <= ID_MAX:
        abort(404)
    db = get_session()
    survey = db.get(Survey, survey_id)
    if survey is None:
        abort(404, description=gettext("There is no such survey."))
    option = request.form.get("option", type=int)
    if option is None or not 0 <= option < len(survey.options):
        abort(400, description=gettext("Choose one of the answers."))
    back = safe_next(request.form.get("next"))
    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError:
        # No token (no JavaScript) or an old one: ask once more, on a page of this browser's own.
        response = current_app.make_response(render_template(
            "survey_confirm.html", survey=survey, option=option, back=back, token=generate_csrf()))
        response.headers["Cache-Control"] = "no-store"
        return response
    if survey.closed_at is not None:
        flash(gettext("This survey has closed."))
        return redirect(back, code=303)
    token = None
    if current_user.is_authenticated:
        responder = surveys.user_responder(current_user.id)
    else:
        token = request.cookies.get(DEVICE_COOKIE) or ""
        if not 20 <= len(token) <= 100:
            token = secrets.token_urlsafe(32)
        responder = surveys.device_responder(token)
        if not surveys.has_answered(db, survey.id, responder):
            attempt = throttle().attempt([(ANSWER_LIMIT, anonymous_client())])
            if not attempt.allowed:
                raise TooManyRequests(gettext("Too many answers from this network. Try again later."),
                                      retry_after=attempt.retry_after)
    try:
        counted = surveys.answer(db, survey.id, option, responder)
    except surveys.SurveyError:  # closed since it was read above
        db.rollback()
        flash(gettext("This survey has closed."))
        return redirect(back, code=303)
    db.commit()
    flash(gettext("Thank you: your answer is counted.") if counted
          else gettext("You have already answered this survey."))
    response = redirect(back, code=303)
    _remember(response, survey.id, token)
    return response


def _remember(response, survey_id: int, token: str | None) -> None:
    secure = current_app.config["SESSION_COOKIE_SECURE"]
    if token is not None:
        response.set_cookie(DEVICE_COOKIE, token, max_age=COOKIE_AGE, path=bp.url_prefix + "/",
                            secure=secure, httponly=True, samesite="Lax")
    done = [i for i in request.cookies.get(DONE_COOKIE, "").split(".") if i.isdigit() and i != str(survey_id)]
    done = [str(survey_id), *done][:DONE_KEPT]
    # Read by static/survey.js (not HttpOnly): ids of answered surveys only, never what was answered.
    response.set_cookie(DONE_COOKIE, ".".join(done), max_age=COOKIE_AGE, secure=secure, samesite="Lax")
