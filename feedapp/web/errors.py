"""Error pages: JSON `{"error", "message"}` for API clients, HTML for people."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from flask_babel import gettext, lazy_gettext
from werkzeug.exceptions import HTTPException, InternalServerError, NotFound

from feedapp.textclean import scrub


def init_app(app: Flask) -> None:
    """Answer every HTTP error in the client's format.

    Unhandled exceptions reach Flask as InternalServerError (its original_exception
    set), after Flask has logged them with their traceback; with DEBUG or TESTING on,
    Flask re-raises them instead, so a broken view fails its test with the traceback.
    """
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(InternalServerError, _internal_error)


class SignInMayShow(NotFound):
    """A 404 for an anonymous reader at an address staff might see (a post): the page offers "Sign in", coming back
    to next_path. Raise it for every such address alike, stored or not, so it tells nobody that anything is there."""

    description = lazy_gettext("This post does not exist, or only staff can read it.")

    def __init__(self, next_path: str):
        super().__init__()
        self.next_path = next_path


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" or request.path.endswith(".json")


TITLES = {
    400: lazy_gettext("Something in that request was wrong"),
    403: lazy_gettext("Not allowed"),
    404: lazy_gettext("Page not found"),
    405: lazy_gettext("Not allowed"),
    410: lazy_gettext("Gone"),
    413: lazy_gettext("Too much data"),
    429: lazy_gettext("Too many attempts"),
    500: lazy_gettext("Something went wrong"),
}


def http_error(exc: HTTPException):
    """The error response for an HTTP exception, in the client's format (for handlers of other exceptions)."""
    return _http_error(exc)


def _http_error(exc: HTTPException):
    message = exc.description or ""
    if isinstance(exc, CSRFError):
        message = gettext("This form has expired or did not come from this site. Go back, reload the page and try again.")
    elif exc.code == 404 and message == NotFound.description:
        message = gettext("There is nothing at this address. Check the link, or start from the feed.")
    elif exc.code == 413:
        message = gettext("That was more data than this form accepts.")
    if _wants_json():
        # The message may quote the URL (an office slug): no character JSON consumers' HTML or XML forbids.
        response = jsonify(error=exc.name, message=scrub(str(message)))
    else:
        title = TITLES.get(exc.code, exc.name)
        # The login view follows next to this site's own paths only (auth.safe_next).
        sign_in = url_for("auth.login", next=exc.next_path) if isinstance(exc, SignInMayShow) else None
        response = render_template("error.html", code=exc.code, title=title, message=message, sign_in=sign_in)
    # The exception's own headers (Allow on a 405, Retry-After on a 429), not its content type.
    headers = {name: value for name, value in exc.get_headers() if name.lower() != "content-type"}
    return response, exc.code, {**headers, "Cache-Control": "no-store"}


def _internal_error(exc: InternalServerError):
    if exc.original_exception is not None:  # a bug, not an abort(500): never show its text
        exc = InternalServerError(description=gettext("Something went wrong on our side. Please try again."))
    return _http_error(exc)
