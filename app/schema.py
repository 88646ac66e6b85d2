"""The JSON shapes of the API and of ``search --json``, built in one place from result objects."""
from __future__ import annotations

from collections.abc import Callable

from .catalog import Catalog, Catalogs
from .search import MAX_K, MODES, SearchResult


def result_json(catalog: Catalog, result: SearchResult, image_url: Callable[[int], str] | None = None) -> dict:
    """A search result, most similar first; ``image_url`` names each result's image when given."""
    names = catalog.class_names
    rows = []
    for hit in result.hits:
        row = {"id": hit.id, "category": names[hit.category], "similarity": round(hit.similarity, 4),
               "hamming": hit.hamming}
        if catalog.store.paths is not None:
            row["path"] = catalog.store.paths[catalog.store.row_of(hit.id)]
        if image_url is not None:
            row["image_url"] = image_url(hit.id)
        rows.append(row)
    return {
        "catalog": catalog.name,
        "mode": result.mode,
        "category": {"name": names[result.category], "probability": round(float(result.probabilities.max()), 4)},
        "top_categories": [{"name": names[c], "probability": round(p, 4)} for c, p in result.top_categories(3)],
        "searched_categories": [names[c] for c in result.searched],
        "results_category": names[result.hits[0].category] if result.hits else None,
        "results": rows,
        "timings_ms": result.timings_ms,
    }


def catalog_json(catalog: Catalog) -> dict:
    """What /api/health says of one catalog: size, categories and model identity (no server paths)."""
    m = catalog.store.manifest
    return {
        "name": catalog.name, "title": catalog.title, "items": len(catalog),
        "categories": [{"name": name, "items": int(catalog.store.offsets[c + 1] - catalog.store.offsets[c])}
                       for c, name in enumerate(catalog.class_names)],
        "model": {"name": catalog.model.name, "file": catalog.model.path.name, "sha256": catalog.model.sha256,
                  "runtime": catalog.model.runtime, "input": list(catalog.model.input_shape)},
        "bits": catalog.store.bits, "embedding_dim": m.embedding_dim, "source": m.source, "created": m.created,
        "engine": catalog.engine.engine,
    }


def health_json(catalogs: Catalogs) -> dict:
    return {
        "status": "ok",
        "default_catalog": catalogs.default,
        "catalogs": [catalog_json(c) for c in catalogs.values()],
        "modes": list(MODES),
        "max_k": MAX_K,
    }
