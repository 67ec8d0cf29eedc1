"""Flask's cookie sessions, tuned for a site most readers use without ever signing in."""

from __future__ import annotations

from flask.sessions import SecureCookieSessionInterface


class LazySessionInterface(SecureCookieSessionInterface):
    """No signing work for requests without a session cookie, and no blanket Vary: Cookie.

    Flask adds Vary: Cookie whenever anything looked at the session, and
    Flask-Login looks on every response. Views whose body depends on cookies
    (the pages) say so themselves; a public feed must stay shareable.
    """

    def open_session(self, app, request):
        if not request.cookies.get(self.get_cookie_name(app)) and app.secret_key:
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app, session, response) -> None:
        if not session and not session.modified:
            return  # nothing stored, nothing to send
        super().save_session(app, session, response)
