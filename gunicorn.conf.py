"""gunicorn settings for feedapp: `gunicorn wsgi:app` reads this file from the working directory."""

from gunicorn.glogging import Logger

from feedapp.redact import redact
from feedapp.textclean import LogSanitizer

bind = "127.0.0.1:8000"
worker_class = "gthread"
workers = 2
threads = 4
accesslog = "-"
control_socket_disable = True  # gunicorn 27 opens ~/.gunicorn/gunicorn.ctl by default; two instances would collide


class RedactingLogger(Logger):
    """Access log lines without invite or private-feed tokens; every line one line, without controls."""

    def setup(self, cfg):
        super().setup(cfg)
        # Request lines and headers are client text (decoded as Latin-1: C1 controls too).
        if not any(isinstance(f, LogSanitizer) for f in self.access_log.filters):
            self.access_log.addFilter(LogSanitizer())

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "q", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        atoms["{referer}i"] = redact(atoms.get("{referer}i", ""))
        return atoms


logger_class = RedactingLogger
