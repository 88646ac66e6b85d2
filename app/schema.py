"""The JSON shapes of the API and of ``search --json``, built in one place from result objects."""
from __future__ import annotations

from collections.abc import Callable

from .catalog import Catalog, Catalogs
from .search import MAX_K, MODES, Hit, SearchResult

ImageUrl = Callable[[Hit], str]
IMAGE_PATH = "/images/{catalog}/{id}?v={hash}"  # where a server serving the catalog shows an item's picture


def image_path(catalog: Catalog) -> ImageUrl:
    """Image URLs as paths on a server serving ``catalog`` (what ``search --json`` gives: it has no server)."""
    return lambda hit: IMAGE_PATH.format(catalog=catalog.name, id=hit.id, hash=hit.hash)


def hit_json(catalog: Catalog, hit: Hit, image_url: ImageUrl | None = None) -> dict:
    row = {"id": hit.id, "category": catalog.class_names[hit.category], "similarity": round(hit.similarity, 4),
           "hamming": hit.hamming}
    if not catalog.stores_images:
        row["path"] = hit.path
    if image_url is not None:
        row["image_url"] = image_url(hit)
    return row


def routing_note(catalog: Catalog, result: SearchResult) -> str | None:
    """Said when the model's likeliest category is one this catalog has no items in."""
    names, predicted = catalog.class_names, result.category
    if result.routing[predicted] > 0 or not result.searched:
        return None
    return (f"this catalog has no {names[predicted]} items; showing the likeliest category it has: "
            f"{names[result.searched[0]]}" if result.mode != "direct" else
            f"this catalog has no {names[predicted]} items")


def result_json(catalog: Catalog, result: SearchResult, image_url: ImageUrl | None = None) -> dict:
    """A search result, most similar first; ``image_url`` names each result's image when given."""
    names = catalog.class_names
    return {
        "catalog": catalog.name,
        "catalog_version": result.version,
        "mode": result.mode,
        "category": {"name": names[result.category], "probability": round(float(result.probabilities.max()), 4)},
        "top_categories": [{"name": names[c], "probability": round(p, 4)} for c, p in result.top_categories(3)],
        "searched_categories": [names[c] for c in result.searched],
        "category_filter": names[result.searched[0]] if result.chosen and len(result.searched) == 1 else None,
        "results_category": names[result.hits[0].category] if result.hits else None,
        "note": routing_note(catalog, result),
        "results": [hit_json(catalog, hit, image_url) for hit in result.hits],
        "timings_ms": result.timings_ms,
    }


def catalog_json(catalog: Catalog) -> dict:
    """What /api/health says of one catalog: size, version, categories and model identity (no server paths)."""
    m = catalog.snapshot.manifest
    return {
        "name": catalog.name, "title": catalog.title, "version": catalog.version, "items": len(catalog),
        "demo": catalog.demo, "default_mode": catalog.default_mode,
        "categories": [{"name": name, "items": int(n)} for name, n in zip(catalog.class_names, catalog.counts())],
        "model": {"name": catalog.model.name, "file": catalog.model.path.name, "sha256": catalog.model.sha256,
                  "runtime": catalog.model.runtime, "input": list(catalog.model.input_shape)},
        "bits": catalog.snapshot.hasher.bits, "embedding_dim": m.embedding_dim, "source": m.source,
        "created": m.created, "store": catalog.store.uri.split(":", 1)[0], "engine": catalog.snapshot.scan_engine,
    }


def health_json(catalogs: Catalogs) -> dict:
    return {
        "status": "ok",
        "default_catalog": catalogs.default,
        "catalogs": [catalog_json(c) for c in catalogs.values()],
        "modes": list(MODES),
        "max_k": MAX_K,
    }
