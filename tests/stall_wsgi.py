"""The app with one more route, ``POST /api/_stall``, that never finishes: for tests/test_watchdog.py only.

No input of the shipped app can stall a worker any more (that is the point), so the tests
that show what happens when a request does get stuck bring their own: this module stands
in for ``wsgi:app`` (gunicorn ``--pythonpath tests stall_wsgi:app``) with everything else
the real app, served by the real gunicorn with the shipped configuration and worker.
"""
from flask import Response

from app import create_app

app = create_app()


@app.post("/api/_stall")
def stall() -> Response:
    """Spin in Python for ever, as a decoder stuck in a loop would (the GIL is shared, as there)."""
    n = 0
    while True:
        n += 1
