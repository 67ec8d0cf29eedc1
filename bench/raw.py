"""The ceiling for bench/http_bench.py: a raw WSGI callable returning constant bytes, same gunicorn settings.

No framework, no routing, no I/O: whatever a Python app does per request, under
the same server it cannot answer faster than this.
"""

BODY = b"Hello, World!"
HEADERS = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
