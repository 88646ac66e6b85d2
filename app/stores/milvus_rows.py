"""How a catalog lies in Milvus: its collections, their fields, and items packed into rows and back.

Per catalog (and code length) one *items* collection holds the items of every version still
kept, each row stamped with the build it belongs to (``base``), the version that added it
and the one that removed it (``LIVE`` until then): version v sees the rows with
``base == B and added <= v < removed``. A change therefore writes only what changed, and a
reader opened at v keeps reading v while newer versions are written. A *versions* collection
holds one JSON record per version (manifest, next id, counts, hasher centre, digest): writing
it is the commit.

Embeddings (float16) and images travel as base64 text in VARCHAR fields: measured, one
search that returns 256 candidates with their embeddings costs 7-10 ms on Milvus Lite,
while Lite's FLOAT16_VECTOR output failed outright and Milvus 2.3 allows one vector field
per collection. Rows are padded to whole base64 groups so a batch encodes and decodes in one
call.
"""
from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np

from .arrays import Part, read_rows
from .base import HASH_BYTES, Items, StoreError

LIVE = 1 << 62            # "removed" of an item no version has removed
ID_LIMIT = 1 << 40        # ids and bases share the primary key: (base << 40) | id
VARCHAR_LIMIT = 65_535    # Milvus' longest VARCHAR
MAX_PATH_CHARS = 2_048
MAX_TOPK = 16_384         # Milvus' largest search limit
QUERY_CAP = 16_383        # Milvus Lite answers at most this many rows a query
OUT_FIELDS = ["id", "category", "label", "embedding", "hash", "path"]
ALL_FIELDS = ["pk", "id", "base", "added", "removed", "category", "label", "code", "embedding", "hash", "path",
              "image"]


def sql_name(catalog: str) -> str:
    """A catalog name as Milvus allows it in a collection name (check_name forbids "_", so this is one to one)."""
    return catalog.replace("-", "_")


def items_collection(prefix: str, catalog: str, bits: int) -> str:
    return f"{prefix}_{sql_name(catalog)}_items_{bits}"


def versions_collection(prefix: str, catalog: str) -> str:
    return f"{prefix}_{sql_name(catalog)}_versions"


def packed_chars(nbytes: int) -> int:
    return -(-nbytes // 3) * 4


def pack(rows: np.ndarray) -> list[str]:
    """Each row's bytes as base64, padded to whole 3-byte groups (so rows concatenate and decode together)."""
    n = len(rows)
    flat = np.ascontiguousarray(rows).reshape(n, -1).view(np.uint8)
    width = flat.shape[1]
    padded = -(-width // 3) * 3
    if padded != width:
        flat = np.pad(flat, ((0, 0), (0, padded - width)))
    text = base64.b64encode(flat.tobytes()).decode("ascii")
    step = padded // 3 * 4
    return [text[i * step:(i + 1) * step] for i in range(n)]


def unpack(texts: Sequence[str], dtype: np.dtype | type, shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of ``pack``: (len(texts), *shape) of ``dtype``."""
    width = int(np.prod(shape)) * np.dtype(dtype).itemsize
    padded = -(-width // 3) * 3
    if not len(texts):
        return np.zeros((0, *shape), dtype)
    raw = base64.b64decode("".join(texts), validate=True)
    if len(raw) != padded * len(texts):
        raise StoreError(f"a stored row is {len(raw) // max(len(texts), 1)} bytes, expected {padded}: "
                         f"the collection was changed outside Fashion-16")
    rows = np.frombuffer(raw, np.uint8).reshape(len(texts), padded)[:, :width]
    return np.ascontiguousarray(rows).view(dtype).reshape(len(texts), *shape)


def items_schema(bits: int, partition_key: bool):
    """The items collection: ids and version stamps, category (a server's partition key), codes, packed columns."""
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    for name in ("id", "base", "added", "removed"):
        schema.add_field(name, DataType.INT64)
    schema.add_field("category", DataType.INT64, is_partition_key=partition_key)
    schema.add_field("label", DataType.INT64)
    schema.add_field("code", DataType.BINARY_VECTOR, dim=bits)
    schema.add_field("embedding", DataType.VARCHAR, max_length=VARCHAR_LIMIT)
    schema.add_field("hash", DataType.VARCHAR, max_length=2 * HASH_BYTES)
    schema.add_field("path", DataType.VARCHAR, max_length=MAX_PATH_CHARS)
    schema.add_field("image", DataType.VARCHAR, max_length=VARCHAR_LIMIT)
    return schema


def versions_schema():
    """One row per committed version; Milvus wants a vector field in every collection, so a tiny unused one."""
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("version", DataType.INT64, is_primary=True)
    schema.add_field("record", DataType.VARCHAR, max_length=VARCHAR_LIMIT)
    schema.add_field("unused", DataType.BINARY_VECTOR, dim=8)
    return schema


def check_fits(dim: int, image_shape: tuple[int, ...] | None) -> None:
    """Refuse what a VARCHAR cannot hold before anything is written."""
    if packed_chars(2 * dim) > VARCHAR_LIMIT:
        raise StoreError(f"{dim}-d embeddings are too wide for a Milvus store (at most {VARCHAR_LIMIT * 3 // 8:,}-d)")
    if image_shape is not None and packed_chars(int(np.prod(image_shape))) > VARCHAR_LIMIT:
        raise StoreError(f"{image_shape} images are too big for a Milvus store (at most {VARCHAR_LIMIT * 3 // 4:,} "
                         f"bytes each)")


def part_columns(part: Part, start: int, stop: int, codes: np.ndarray, base: int, added: int) -> list:
    """Rows start:stop of a part as the items collection's columns, in schema order."""
    ids = np.asarray(part.ids[start:stop], np.int64)
    n = len(ids)
    paths = [p.decode() for p in part.paths[start:stop]]
    too_long = [p for p in paths if len(p) > MAX_PATH_CHARS]
    if too_long:
        raise StoreError(f"an item path is longer than {MAX_PATH_CHARS} characters: {too_long[0][:80]}...")
    image = pack(read_rows(part.images, start, stop)) if part.images is not None else [""] * n
    return [((base << 40) | ids).tolist(), ids.tolist(), [base] * n, [added] * n, [LIVE] * n,
            np.asarray(part.categories[start:stop], np.int64).tolist(),
            np.asarray(part.labels[start:stop], np.int64).tolist(),
            [bytes(c) for c in codes[start:stop]],
            pack(read_rows(part.embeddings, start, stop).astype(np.float16, copy=False)),
            [h.tobytes().hex() for h in part.hashes[start:stop]], paths, image]


def entity_columns(rows: Sequence[dict], removed: int) -> list:
    """Whole rows read back (every field), as columns to upsert with a new ``removed`` stamp."""
    cols = [[r[name] for r in rows] for name in ALL_FIELDS]
    cols[4] = [removed] * len(rows)
    cols[7] = [bytes(c[0]) if isinstance(c, list) else bytes(c) for c in cols[7]]
    return cols


def items_of(rows: Sequence[dict], dim: int, hamming: Sequence[float] | None = None) -> Items:
    """Query or search entities (OUT_FIELDS) as Items, embeddings as float32."""
    return Items(ids=np.array([r["id"] for r in rows], np.int64),
                 categories=np.array([r["category"] for r in rows], np.int16),
                 labels=np.array([r["label"] for r in rows], np.int16),
                 embeddings=unpack([r["embedding"] for r in rows], np.float16, (dim,)).astype(np.float32),
                 hashes=tuple(r["hash"] for r in rows), paths=tuple(r["path"] for r in rows),
                 hamming=None if hamming is None else np.asarray(hamming, np.float64).round().astype(np.int32))
