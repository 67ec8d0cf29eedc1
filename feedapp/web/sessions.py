"""Flask's cookie sessions, without the signing work for requests that carry no session cookie."""

from __future__ import annotations

from flask.sessions import SecureCookieSessionInterface


class LazySessionInterface(SecureCookieSessionInterface):
    """Most readers never get a session cookie; skip building a serializer for them."""

    def open_session(self, app, request):
        if not request.cookies.get(self.get_cookie_name(app)) and app.secret_key:
            return self.session_class()
        return super().open_session(app, request)
