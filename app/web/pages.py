"""HTML pages: the upload form, results of an upload, and "more like this" from a catalog item.

Everything works as a plain form post; static/app.js only adds drag-and-drop and a preview.
"""
from __future__ import annotations

from flask import Blueprint, g, render_template, request, url_for

from .imaging import is_small, thumbnail_data_url
from .queries import DEFAULT_K, DEFAULT_MODE, item_query, parse_mode, run_search, search_upload, upload_limit_mb
from .service import service

bp = Blueprint("pages", __name__)

MODE_HELP = {
    "routed": "Only the predicted category: fastest (the paper's method).",
    "direct": "The whole catalog, whatever the category.",
    "soft": "The few likeliest categories when the classifier is unsure.",
}


@bp.app_template_filter("percent")
def percent(probability: float) -> str:
    return f"{100 * probability:.1f}%"


@bp.app_template_filter("sentence")
def sentence(message: str) -> str:
    """Error messages are written as clauses ("the file is empty"); show them as sentences."""
    message = message.strip()
    if not message:
        return message
    return message[0].upper() + message[1:] + ("" if message[-1] in ".!?" else ".")


def render_form(error: str | None = None, mode: str = DEFAULT_MODE) -> str:
    """The upload form, with an error message when re-shown after a bad upload."""
    return render_template("index.html", modes=MODE_HELP, mode=mode, error=error, k=DEFAULT_K,
                           max_mb=upload_limit_mb())


@bp.get("/")
def index() -> str:
    return render_form()


@bp.post("/search")
def search() -> str:
    g.mode = mode = parse_mode(request.form.get("mode"))  # kept for re-showing the form on errors
    result, image = search_upload(DEFAULT_K, mode)
    query = {"src": thumbnail_data_url(image), "alt": "Your uploaded image", "pixelated": is_small(image.size)}
    return render_template("results.html", result=result, query=query, mode=mode, modes=MODE_HELP,
                           pixelated=service().stores_images)


@bp.get("/item/<int:item_id>")
def item(item_id: int) -> str:
    mode = parse_mode(request.args.get("mode"))
    image = item_query(item_id)
    result = run_search(image, DEFAULT_K, mode)
    pixelated = service().stores_images
    query = {"src": url_for("gallery.image", item_id=item_id), "alt": f"Catalog item {item_id}",
             "pixelated": pixelated, "item_id": item_id}
    return render_template("results.html", result=result, query=query, mode=mode, modes=MODE_HELP,
                           pixelated=pixelated)
