"""The API's OpenAPI 3.0 document: the one source of truth, served at /api/openapi.json and /api/docs.

Written in Python so its limits come from the code (modes, k, box sizes) and it ships with
the package (the Docker image has no docs/ folder); docs/openapi.json is this document,
written out for readers of the repository (the tests keep it identical). The tests validate
real responses of every route against its schemas.
"""
from __future__ import annotations

from functools import cache

from ..imaging.crop import MIN_SIDE
from ..search import DEFAULT_K, MAX_K, MODES

VERSION = "3.0"


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error(description: str) -> dict:
    return json_body(ref("Error"), description)


PARAMETERS = {
    "catalog": {"type": "string", "description": "Which catalog to search (GET /api/health lists them); default: "
                                                 "the server's default catalog (`photos`)."},
    "k": {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": DEFAULT_K,
          "description": "Number of results, in ASCII digits."},
    "mode": {"type": "string", "enum": list(MODES),
             "description": "Which categories are searched: `routed` only the likeliest, `direct` all, `soft` the "
                            "likeliest and, when the model is unsure, the next ones (the answering one is the one "
                            "whose items match best). Default: the catalog's `default_mode` (GET /api/health), "
                            "chosen on validation data."},
    "category": {"type": "string", "description": "Search only this category (one the catalog has items in; "
                                                  "GET /api/health lists them), whatever the mode says."},
    "box": {"type": "string", "pattern": r"^[0-9.]+,[0-9.]+,[0-9.]+,[0-9.]+$",
            "description": f"Search only this part of the picture: `x,y,w,h` as fractions (0-1) of its width and "
                           f"height as shown (after EXIF rotation), e.g. `0.1,0.2,0.5,0.6`; `w` and `h` at least "
                           f"{MIN_SIDE:g}, `x + w` and `y + h` at most 1. The server crops after decoding."},
}

SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "additionalProperties": False,
              "properties": {"error": {"type": "string", "example": "the file is not an image (or not one we "
                                                                    "can read)"}}},
    "CategoryScore": {"type": "object", "required": ["name", "probability"], "additionalProperties": False,
                      "properties": {"name": {"type": "string", "example": "Shoes"},
                                     "probability": {"type": "number", "minimum": 0, "maximum": 1}}},
    "Hit": {
        "type": "object", "required": ["id", "category", "similarity", "hamming", "image_url"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "integer", "minimum": 0, "description": "Catalog item id: given once, never reused"},
            "category": {"type": "string", "description": "The category the item is filed under"},
            "similarity": {"type": "number", "minimum": 0, "maximum": 1,
                           "description": "Cosine similarity of the embeddings (the pages show it as a % match)"},
            "hamming": {"type": "integer", "minimum": 0, "description": "Hamming distance of the hash codes"},
            "path": {"type": "string", "description": "Photo catalogs only: the photo file, relative to the "
                                                      "catalog's folder"},
            "image_url": {"type": "string", "example": "http://localhost:8000/images/photos/2150?v=3b2f0d7c4f0e4c35",
                          "description": "Absolute URL of the item's picture (cacheable for good: the `v` hash "
                                         "names its content)"},
        },
    },
    "SearchResult": {
        "type": "object", "additionalProperties": False,
        "required": ["catalog", "catalog_version", "mode", "category", "top_categories", "searched_categories",
                     "category_filter", "results_category", "note", "results", "timings_ms", "box"],
        "properties": {
            "catalog": {"type": "string", "example": "photos"},
            "catalog_version": {"type": "integer", "minimum": 1,
                                "description": "The catalog version every result comes from"},
            "mode": {"type": "string", "enum": list(MODES)},
            "category": ref("CategoryScore"),
            "top_categories": {"type": "array", "items": ref("CategoryScore"), "maxItems": 3,
                               "description": "The three likeliest categories, the predicted one first"},
            "searched_categories": {"type": "array", "items": {"type": "string"}},
            "category_filter": {"type": "string", "nullable": True,
                                "description": "The category the request asked for (`category`), else null"},
            "results_category": {"type": "string", "nullable": True,
                                 "description": "The category of the best result (soft mode may answer from a "
                                                "runner-up); null without results"},
            "note": {"type": "string", "nullable": True,
                     "description": "Said when the likeliest category is one the catalog has no items in"},
            "results": {"type": "array", "items": ref("Hit"), "description": "Most similar first"},
            "timings_ms": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0},
                           "description": "Server time per stage (decode, preprocess, forward, hash, scan, rerank) "
                                          "and total; a saved query searched again has no decode or model stages"},
            "box": {"type": "string", "nullable": True, "description": "The crop box searched, else null"},
            "query_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16}$",
                         "description": "The saved query (absent when the server keeps none): search it again "
                                        "with GET /api/queries/{query_id}"},
            "results_url": {"type": "string", "description": "Absolute address of these results as a page "
                                                             "(absent when the server keeps no queries)"},
        },
    },
    "Category": {"type": "object", "required": ["name", "items"], "additionalProperties": False,
                 "properties": {"name": {"type": "string"}, "items": {"type": "integer", "minimum": 0}}},
    "Catalog": {
        "type": "object", "additionalProperties": False,
        "required": ["name", "title", "version", "items", "demo", "default_mode", "categories", "model", "bits",
                     "embedding_dim", "source", "created", "store", "engine"],
        "properties": {
            "name": {"type": "string"},
            "title": {"type": "string"},
            "version": {"type": "integer", "minimum": 1},
            "items": {"type": "integer", "minimum": 0},
            "demo": {"type": "boolean", "description": "The research paper's demonstration, not a shop's catalog"},
            "default_mode": {"type": "string", "enum": list(MODES)},
            "categories": {"type": "array", "items": ref("Category"),
                           "description": "Every category of the model, with how many items the catalog has in it"},
            "model": {"type": "object", "additionalProperties": False,
                      "required": ["name", "file", "sha256", "runtime", "input"],
                      "properties": {"name": {"type": "string"}, "file": {"type": "string"},
                                     "sha256": {"type": "string", "description": "The model's identity"},
                                     "runtime": {"type": "string", "enum": ["litert", "keras"]},
                                     "input": {"type": "array", "items": {"type": "integer"}}}},
            "bits": {"type": "integer"},
            "embedding_dim": {"type": "integer"},
            "source": {"type": "string", "enum": ["photos", "fashion-mnist", "folder", "synthetic"]},
            "created": {"type": "string"},
            "store": {"type": "string", "description": "The store backend (hdf5, memory, milvus)"},
            "engine": {"type": "string", "description": "What scans the codes (faiss, numpy, milvus)"},
        },
    },
    "Health": {
        "type": "object", "required": ["status", "default_catalog", "catalogs", "modes", "max_k"],
        "additionalProperties": False,
        "properties": {"status": {"type": "string", "enum": ["ok"]}, "default_catalog": {"type": "string"},
                       "catalogs": {"type": "array", "items": ref("Catalog")},
                       "modes": {"type": "array", "items": {"type": "string", "enum": list(MODES)}},
                       "max_k": {"type": "integer"}},
    },
    "AddedItems": {
        "type": "object", "required": ["catalog", "catalog_version", "items"], "additionalProperties": False,
        "properties": {
            "catalog": {"type": "string"}, "catalog_version": {"type": "integer"},
            "items": {"type": "array", "items": {
                "type": "object", "required": ["id", "category", "path", "existing", "image_url"],
                "additionalProperties": False,
                "properties": {"id": {"type": "integer"}, "category": {"type": "string"}, "path": {"type": "string"},
                               "existing": {"type": "boolean", "description": "The same photo was there already"},
                               "image_url": {"type": "string"}}}},
        },
    },
    "RemovedItem": {"type": "object", "required": ["catalog", "catalog_version", "removed"],
                    "additionalProperties": False,
                    "properties": {"catalog": {"type": "string"}, "catalog_version": {"type": "integer"},
                                   "removed": {"type": "integer"}}},
    "OpenApi": {"type": "object", "required": ["openapi", "info", "paths", "components"]},
}


def query_params(*names: str) -> list[dict]:
    return [{"name": n, "in": "query", "required": False, "schema": PARAMETERS[n]} for n in names]


METHOD_NOT_ALLOWED = {"$ref": "#/components/responses/MethodNotAllowed"}
TOO_MANY = {"description": "This client address started more searches than the rate limit allows "
                           "(FASHION16_RATE_LIMIT a second, FASHION16_RATE_BURST at once above that; answered by "
                           "nginx in front of the app). Retry-After says when to try again.",
            "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}},
            "content": {"application/json": {"schema": ref("Error")}}}
BAD_FIELD = ("a bad `k`, `mode`, `category` or `box`, a field given twice with different values, or an unknown "
             "`catalog` (the message names the catalogs)")
ADMIN = [{"bearer": []}]
ADMIN_ERRORS = {"401": error("No admin token (`Authorization: Bearer <token>`)"),
                "403": error("A wrong admin token"),
                "404": error("No such catalog or item, or the admin API is off (no FASHION16_ADMIN_TOKEN)"),
                "409": error("The catalog's store cannot take the change now")}


def paths() -> dict:
    image_param = [{"name": "catalog", "in": "path", "required": True, "schema": {"type": "string"}},
                   {"name": "item_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}]
    return {
        "/api/search": {"post": {
            "summary": "Search a catalog with an uploaded picture",
            "description": "Every field may also be given in the query string; one given in both places with "
                           "different values is refused (400). With `save=1`, when the server keeps queries "
                           "(FASHION16_RESULTS), the answer names the saved query and its results page.",
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["image"],
                "properties": {"image": {"type": "string", "format": "binary",
                                         "description": "One JPEG (camera MPO included), PNG, WebP or GIF (first "
                                                        "frame); EXIF rotation is applied"},
                               **PARAMETERS,
                               "save": {"type": "string", "enum": ["1", "0", "true", "false", "yes", "no"],
                                        "description": "Keep this query (a small thumbnail and the model's "
                                                       "outputs, for FASHION16_RESULTS_TTL_HOURS) so it can be "
                                                       "searched again by id or opened as a page; default: no"}}}}}},
            "responses": {
                "200": json_body(ref("SearchResult"), "Ranked results, most similar first"),
                "400": error("No `image` or more than one, an empty file, not an image, a damaged or truncated "
                             "image, " + BAD_FIELD),
                "405": METHOD_NOT_ALLOWED,
                "413": error("The body is over the upload limit (FASHION16_MAX_UPLOAD_MB), the form has too many "
                             "parts, or the image has more pixels than allowed (checked from its header before "
                             "decoding); or a JPEG whose markers say it would be slow to decode (more than 64 "
                             "scans, more than 4 million 8x8 blocks visited by its scans, more than 1,000 "
                             "markers), or any image that takes more than 2 s of CPU to decode"),
                "415": error("An image type we do not read (for example BMP or TIFF), or a lossless or "
                             "hierarchical JPEG"),
                "429": TOO_MANY,
            }}},
        "/api/queries/{query_id}": {"get": {
            "summary": "Search a saved query again: another category, mode or k, at the catalog's current version",
            "description": "Uses the model outputs kept with the query (no picture, no model pass). Queries are "
                           "kept FASHION16_RESULTS_TTL_HOURS (24 by default).",
            "parameters": [{"name": "query_id", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16}$"}},
                           *query_params("category", "mode", "k")],
            "responses": {
                "200": json_body(ref("SearchResult"), "Ranked results, most similar first"),
                "400": error(BAD_FIELD),
                "404": error("No such query (never made, or long gone), or the server keeps no queries"),
                "405": METHOD_NOT_ALLOWED,
                "410": error("The query expired, its catalog is no longer served, or the catalog's model changed: "
                             "search with the picture again"),
            }}},
        "/api/health": {"get": {
            "summary": "Liveness, and which catalogs and models this process serves",
            "responses": {"200": json_body(ref("Health"), "The app is up, with every catalog loaded"),
                          "405": METHOD_NOT_ALLOWED}}},
        "/api/openapi.json": {"get": {
            "summary": "This document",
            "responses": {"200": json_body(ref("OpenApi"), "The OpenAPI 3.0 description of the API")}}},
        "/api/docs": {"get": {
            "summary": "This document as a web page",
            "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        "/images/{catalog}/{item_id}": {"get": {
            "summary": "A catalog item's picture",
            "description": "The photo file for photo catalogs, a PNG for Fashion-MNIST. With `v` (the content hash "
                           "results carry) it is cacheable for good (`immutable`); without it, revalidate with the "
                           "ETag (`If-None-Match` gives 304).",
            "parameters": [*image_param, {"name": "v", "in": "query", "required": False,
                                          "schema": {"type": "string"}}],
            "responses": {
                "200": {"description": "The picture", "content": {"image/jpeg": {"schema": {"type": "string",
                                                                                             "format": "binary"}},
                                                                  "image/png": {"schema": {"type": "string",
                                                                                           "format": "binary"}}}},
                "304": {"description": "Not modified (the If-None-Match ETag still matches)"},
                "404": {"description": "No such catalog or item, or `v` names a picture the item no longer has "
                                       "(a page: image addresses are for browsers)",
                        "content": {"text/html": {"schema": {"type": "string"}}}},
            }}},
        "/api/catalogs/{name}/items": {"post": {
            "summary": "Admin: add photos to a catalog (needs FASHION16_ADMIN_TOKEN)",
            "security": ADMIN,
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["image"],
                "properties": {"image": {"type": "array", "items": {"type": "string", "format": "binary"}},
                               "category": {"type": "string",
                                            "description": "File them under this category (default: the model's "
                                                           "guess)"}}}}}},
            "responses": {"201": json_body(ref("AddedItems"), "Added: one new catalog version"),
                          "400": error("No photo, a bad photo, or an unknown category"), **ADMIN_ERRORS}}},
        "/api/catalogs/{name}/items/{item_id}": {"delete": {
            "summary": "Admin: remove an item from a catalog (needs FASHION16_ADMIN_TOKEN)",
            "security": ADMIN,
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                           {"name": "item_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "responses": {"200": json_body(ref("RemovedItem"), "Removed: one new catalog version"),
                          **ADMIN_ERRORS}}},
    }


@cache
def document() -> dict:
    """The whole OpenAPI document (built once per process)."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Fashion-16 API",
            "version": VERSION,
            "description": (
                "Search clothing catalogs by photo. One server holds several catalogs: `photos` (real clothing "
                "photos, the default), `fashion-mnist` (the research paper's demo) and any a shop builds from its "
                "own photos. The picture is classified by the catalog's model, hashed and compared with the items "
                "of the categories its mode routes it to (or the one `category` names); results are re-ranked by "
                "the cosine similarity of the model's embeddings.\n\n"
                "Errors are JSON `{\"error\": \"...\"}`: 4xx for client mistakes, 500 only for faults on the "
                "server's side. URLs in answers are absolute, built from the `Host` the client used."),
        },
        "paths": paths(),
        "components": {
            "schemas": SCHEMAS,
            "responses": {"MethodNotAllowed": {
                "description": "Wrong HTTP method; the Allow header lists the right ones",
                "headers": {"Allow": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": ref("Error")}}}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def describe(schema: dict) -> str:
    """A schema in a few words for the docs page: "integer, 1-100", "array of Hit", "Hit", "string or null"."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[1]
    kind = schema.get("type", "any")
    if kind == "array":
        kind = f"array of {describe(schema.get('items', {}))}"
    elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        kind = f"object of {describe(schema['additionalProperties'])}"
    words = [kind]
    if "enum" in schema:
        words.append("one of " + ", ".join(str(v) for v in schema["enum"]))
    if "minimum" in schema and "maximum" in schema:
        words.append(f"{schema['minimum']:g}-{schema['maximum']:g}")
    if schema.get("format") == "binary":
        words = ["file"]
    text = ", ".join(words)
    return f"{text} or null" if schema.get("nullable") else text
