"""WSGI entry point: `gunicorn wsgi:app`."""

from feedapp import create_app

app = create_app()
