"""A catalog read from Milvus at one version: the Snapshot protocol, each call a filtered search or query.

Every read carries the version's filter (``base == B and added <= v and removed > v``), so
rows written by newer versions are never seen, and the commit's Milvus timestamp as its
guarantee: on a server a read waits until the version's own writes are visible (exact, as
Strong consistency would be) without waiting for writes made since (Strong waits for a time
tick, measured 250-400 ms a read). Milvus Lite has no timestamps to wait for: its reads are
Strong and cost nothing more.

Hamming ties at the edge of a search's top n are settled as the array stores settle them,
by the lowest ids: a range search finds every item at the edge distance (only when the
library holds more items than asked for).
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..hashing import Hasher
from .arrays import content_digest
from .base import Items, Manifest, StoreError
from .milvus_client import READ_TIMEOUT_S, Location, client, milvus_errors
from .milvus_rows import MAX_TOPK, OUT_FIELDS, items_of, unpack

ID_PAGE = 16_000  # ids per query when reading a whole catalog (Milvus Lite answers at most 16,383 rows a query)
FORMAT = 1
TIE_MARGIN = 32  # ids asked for beyond n (n/4 when more): an edge tie within them is settled without a range search


@dataclass(frozen=True)
class VersionRecord:
    """What the versions collection says about one version (JSON in its ``record`` field)."""

    data: dict

    @property
    def version(self) -> int:
        return int(self.data["version"])

    @property
    def base(self) -> int:
        return int(self.data["base"])

    @property
    def items(self) -> str:
        return self.data["items"]

    @property
    def ts(self) -> int:
        return int(self.data.get("ts") or 0)

    @property
    def image_shape(self) -> tuple[int, ...] | None:
        shape = self.data.get("image_shape")
        return None if shape is None else tuple(int(s) for s in shape)

    def hasher(self) -> Hasher:
        """The hyperplanes remade from the seed, centred where the build centred them."""
        m = self.data["manifest"]
        center = unpack([self.data["center"]], np.float32, (int(m["embedding_dim"]),))[0]
        return Hasher.create(int(m["embedding_dim"]), int(m["bits"]), int(m["seed"]), center)

    @classmethod
    def parse(cls, text: str, where: str, catalog: str) -> VersionRecord:
        try:
            data = json.loads(text)
            ok = data.get("format") == FORMAT and {"manifest", "version", "next_id", "digest", "counts"} <= set(data)
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            raise StoreError(f"{where}: a version record of catalog {catalog} is not one Fashion-16 wrote")
        return cls(data)


def read_kwargs(ts: int) -> dict:
    """Reads that see everything written up to ``ts`` (a server's commit timestamp); Lite: Strong."""
    if ts:
        return {"consistency_level": "Customized", "guarantee_timestamp": ts, "timeout": READ_TIMEOUT_S}
    return {"consistency_level": "Strong", "timeout": READ_TIMEOUT_S}


class MilvusSnapshot:
    """One version of a catalog in Milvus; holds no items, only the client and the version's filter."""

    def __init__(self, where: Location, catalog: str, record: VersionRecord):
        data = record.data
        self.where, self.record = where, record
        try:
            self.manifest = Manifest.from_dict(data["manifest"])
            self.hasher = record.hasher()
            self.version, self.next_id, self.digest = record.version, int(data["next_id"]), data["digest"]
            self._counts = np.asarray(data["counts"], np.int64)
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{where.uri}: the record of version {data.get('version')} is damaged ({exc})") from None
        if self.manifest.catalog != catalog:
            raise StoreError(f"{where.uri} holds catalog {self.manifest.catalog!r} where {catalog!r} was expected")
        if content_digest(data["manifest"], self.hasher, self.version, self.next_id,
                          data.get("segments", [])) != self.digest:
            raise StoreError(f"{where.uri}: the record of catalog {catalog} version {self.version} does not match "
                             f"its digest: it was edited outside Fashion-16")
        self.scan_engine = where.kind
        self.dim = int(self.manifest.embedding_dim)
        self._visible = f"base == {record.base} and added <= {self.version} and removed > {self.version}"
        self._read = read_kwargs(record.ts)

    @property
    def _client(self):
        return client(self.where)

    def __len__(self) -> int:
        return int(self._counts.sum())

    @property
    def stores_images(self) -> bool:
        return self.record.image_shape is not None

    def counts(self) -> np.ndarray:
        return self._counts.copy()

    def _filter(self, category: int | None, extra: str = "") -> str:
        expr = self._visible if category is None else f"category == {int(category)} and {self._visible}"
        return f"{expr} and {extra}" if extra else expr

    # -------------------------------------------------------------- search

    def candidates(self, code: np.ndarray, categories: Sequence[int] | None, n: int) -> Items:
        found = []
        for c in [None] if categories is None else list(categories):
            held = len(self) if c is None else int(self._counts[c]) if 0 <= c < len(self._counts) else 0
            if held and n > 0:
                found.append(self._nearest(np.asarray(code, np.uint8).tobytes(), c, min(n, held, MAX_TOPK), held))
        return Items.concat(found, self.dim)

    def _search(self, code: bytes, expr: str, limit: int, fields: list[str], params: dict | None = None) -> list:
        with milvus_errors(self.where, "searching"):
            return self._client.search(self.record.items, [code], anns_field="code", limit=limit, filter=expr,
                                       output_fields=fields,
                                       search_params={"metric_type": "HAMMING", "params": params or {}},
                                       **self._read)[0]

    def _nearest(self, code: bytes, category: int | None, n: int, held: int) -> Items:
        """The n nearest by (Hamming distance, id), with everything a response shows.

        A library no bigger than n comes whole in one search. Otherwise the search returns ids
        and distances only, for a few more than n: an edge distance shared past them (rare)
        is settled by a range search; the n chosen are then read in one query (measured on a
        2.3 server at 20k items: ids then rows 21 ms; one search returning n + 96 rows, 23 ms).
        """
        expr = self._filter(category)
        if n >= held:
            hits = self._search(code, expr, n, OUT_FIELDS)
            ranked = sorted(hits, key=lambda h: (round(h["distance"]), h["entity"]["id"]))
            return items_of([h["entity"] for h in ranked], self.dim, [round(h["distance"]) for h in ranked])
        limit = min(n + max(TIE_MARGIN, n // 4), held, MAX_TOPK)
        pairs = sorted((round(h["distance"]), h["entity"]["id"]) for h in self._search(code, expr, limit, ["id"]))
        if len(pairs) > n and pairs[n - 1][0] == pairs[-1][0]:  # the edge distance may go on past what came
            edge = pairs[n - 1][0]
            tied = self._search(code, expr, MAX_TOPK, ["id"], {"radius": edge + 1, "range_filter": edge})
            pairs = sorted({p for p in pairs if p[0] < edge} | {(edge, h["entity"]["id"]) for h in tied})
        chosen = pairs[:n]
        rows = {r["id"]: r for r in self._query(f"id in {sorted(i for _, i in chosen)}", OUT_FIELDS, category)}
        if len(rows) != len(chosen):
            raise StoreError(f"{self.where.uri}: items of version {self.version} vanished while it was read "
                             f"(a version that old is no longer kept)")
        return items_of([rows[i] for _, i in chosen], self.dim, [d for d, _ in chosen])

    # -------------------------------------------------------------- by id

    def _query(self, extra: str, fields: list[str], category: int | None = None) -> list[dict]:
        with milvus_errors(self.where, "reading items"):
            return self._client.query(self.record.items, filter=self._filter(category, extra), output_fields=fields,
                                      **self._read)

    def items(self, ids: Sequence[int]) -> Items:
        ids = [int(i) for i in np.asarray(ids, np.int64).reshape(-1)]
        by_id = {}
        for start in range(0, len(ids), ID_PAGE // 4):
            chunk = sorted(set(ids[start:start + ID_PAGE // 4]))
            by_id.update({r["id"]: r for r in self._query(f"id in {chunk}", OUT_FIELDS)})
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise KeyError(missing[0])
        return items_of([by_id[i] for i in ids], self.dim)

    def __contains__(self, item_id: int) -> bool:
        return bool(self._query(f"id == {int(item_id)}", ["id"]))

    def present(self, ids: Sequence[int]) -> set[int]:
        """Which of these ids this version holds (one query per few thousand)."""
        ids = sorted({int(i) for i in ids})
        found: set[int] = set()
        for start in range(0, len(ids), ID_PAGE // 4):
            found |= {r["id"] for r in self._query(f"id in {ids[start:start + ID_PAGE // 4]}", ["id"])}
        return found

    def image(self, item_id: int) -> np.ndarray:
        if not self.stores_images:
            raise KeyError(item_id)
        return self.images([item_id])[0]

    def images(self, ids: Sequence[int]) -> np.ndarray:
        """Store-held images of these items, in that order (KeyError for unknown ids)."""
        ids = [int(i) for i in ids]
        shape = self.record.image_shape
        if shape is None:
            raise KeyError(ids[0] if ids else -1)
        rows = {r["id"]: r["image"] for r in self._query(f"id in {sorted(set(ids))}", ["id", "image"])}
        if any(i not in rows for i in ids):
            raise KeyError(next(i for i in ids if i not in rows))
        return unpack([rows[i] for i in ids], np.uint8, shape)

    # -------------------------------------------------------------- the whole catalog

    def pages(self, fields: list[str], category: int | None = None, page: int = ID_PAGE) -> Iterator[list[dict]]:
        """Every item of this version (of one category) in id order, a page of ids at a time."""
        for start in range(0, self.next_id, page):
            rows = self._query(f"id >= {start} and id < {start + page}", ["id", *fields], category)
            if rows:
                yield sorted(rows, key=lambda r: r["id"])

    def ids(self, category: int | None = None) -> np.ndarray:
        out = [np.array([r["id"] for r in rows], np.int64) for rows in self.pages([], category)]
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def keys(self) -> dict[str, tuple[int, str]]:
        return {r["path"]: (r["id"], r["hash"]) for rows in self.pages(["path", "hash"])
                for r in rows}

    def live_count(self) -> int:
        """Items Milvus holds for this version (its record says how many there must be)."""
        with milvus_errors(self.where, "counting items"):
            rows = self._client.query(self.record.items, filter=self._visible, output_fields=["count(*)"],
                                      **self._read)
        return int(rows[0]["count(*)"]) if rows else 0

    def check_codes(self, rows: Sequence[dict]) -> int:
        """How many of these rows' codes are not the hash of their embedding (a float16 tie may flip a bit)."""
        if not rows:
            return 0
        emb = unpack([r["embedding"] for r in rows], np.float16, (self.dim,))
        codes = np.stack([np.frombuffer(_code_bytes(r["code"]), np.uint8) for r in rows])
        flipped = np.unpackbits(self.hasher.hash(emb.astype(np.float32)) ^ codes, axis=1).sum(1)
        return int((flipped > 2).sum())


def _code_bytes(value) -> bytes:
    """A binary vector as pymilvus returns it (bytes, or a one-element list of bytes)."""
    return bytes(value[0]) if isinstance(value, list) else bytes(value)
