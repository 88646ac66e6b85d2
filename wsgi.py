"""WSGI entry point for `gunicorn wsgi:app` (gunicorn also reads ./gunicorn.conf.py from here)."""
from app import create_app

app = create_app()
