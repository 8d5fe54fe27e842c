"""WSGI entry point: `gunicorn wsgi:app`."""
from kato_web import create_app

app = create_app()
