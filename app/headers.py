"""The security headers every response carries, whoever answers it: the app, gunicorn or nginx.

Kept apart from the web package (and free of imports) so the serving supervisor and the
gunicorn worker can add the same headers to the errors they answer without loading Flask.
"""
from __future__ import annotations

# Everything is served from this origin (no CDN); previews of chosen files are blob: URLs
# and the query image on the results page is a data: URL.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
                           "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
