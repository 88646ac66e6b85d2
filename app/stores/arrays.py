"""Items held as arrays (in memory or memory-mapped from a file): the snapshot the HDF5 and memory stores share.

A snapshot is a list of *parts* (an HDF5 store's segments: a base plus the deltas added
since) and the ids removed since they were written. Each category of each part gets its
own Hamming scanner over its live items (app/scan.py: FAISS, or NumPy as the reference),
so a query scans only the libraries it is routed to. Embeddings stay as stored (float16,
possibly a read-only memory map shared by every worker through the page cache); only the
candidates of a query are converted to float32 for the re-rank.
"""
from __future__ import annotations

import hashlib
import json
import mmap
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..hashing import Hasher, check_bits
from ..scan import make_scanner
from .base import HASH_BYTES, Items, Manifest

CODE_CHECK_SAMPLE = 20_000  # items whose codes are re-hashed at open (all of them in smaller catalogs)
FLOAT32_COPY_BYTES = 64 * 2**20  # catalogs whose float32 embeddings fit here keep a private float32 copy


@dataclass
class Part:
    """One segment's items, row-aligned arrays (read-only once built)."""

    ids: np.ndarray                     # (n,) int64
    categories: np.ndarray              # (n,) int16
    labels: np.ndarray                  # (n,) int16
    codes: np.ndarray                   # (n, bits/8) uint8
    embeddings: np.ndarray              # (n, dim) float16 (or float32), maybe a memory map
    hashes: np.ndarray                  # (n, HASH_BYTES) uint8
    paths: np.ndarray                   # (n,) fixed-length UTF-8 bytes
    images: np.ndarray | None = None    # (n, h, w) uint8
    removed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # ids this part takes away

    def __len__(self) -> int:
        return len(self.ids)

    def columns(self) -> list[tuple[str, np.ndarray]]:
        """Every array, in the fixed order the content digest reads them."""
        cols = [("id", self.ids), ("category", self.categories), ("label", self.labels), ("code", self.codes),
                ("embedding", self.embeddings), ("hash", self.hashes), ("path", self.paths)]
        if self.images is not None:
            cols.append(("image", self.images))
        cols.append(("removed", self.removed))
        return cols


def read_rows(arr: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows start:stop as an array of their own.

    A memory map is read with a plain file read rather than through the map: a pass over a
    5 GB column (a digest, a segment written from the spool) then leaves those pages in the
    page cache only, not resident in this process, so its memory stays that of one chunk.
    """
    if isinstance(arr, np.memmap) and isinstance(arr.base, mmap.mmap) and arr.filename and arr.ndim:
        stop = min(stop, len(arr))
        width = int(np.prod(arr.shape[1:], dtype=np.int64))
        count = max(0, stop - start) * width
        with open(arr.filename, "rb") as f:
            f.seek(arr.offset + start * width * arr.itemsize)
            rows = np.fromfile(f, dtype=arr.dtype, count=count)
        if len(rows) != count:
            raise ValueError(f"{arr.filename} ends before row {stop}")
        return rows.reshape(-1, *arr.shape[1:])
    return np.ascontiguousarray(arr[start:stop])


def take_rows(arr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Scattered rows (a sample), read from the file when ``arr`` is a memory map (see ``read_rows``): faulting
    them in through the map would map their neighbours too (fault-around), most of a big column for a sample."""
    if not (isinstance(arr, np.memmap) and isinstance(arr.base, mmap.mmap) and arr.filename and arr.ndim):
        return np.asarray(arr[rows])
    size = int(np.prod(arr.shape[1:], dtype=np.int64)) * arr.itemsize
    out = np.empty((len(rows), *arr.shape[1:]), arr.dtype)
    with open(arr.filename, "rb") as f:
        for i, r in enumerate(np.asarray(rows, np.int64)):
            out[i] = np.frombuffer(os.pread(f.fileno(), size, arr.offset + int(r) * size), arr.dtype).reshape(
                arr.shape[1:])
    return out


def part_digest(part: Part, chunk_bytes: int = 64 << 20) -> str:
    """SHA-256 over every array of a part (name, dtype, shape, bytes): any edit, of any field, changes it."""
    h = hashlib.sha256()
    for name, arr in part.columns():
        h.update(f"{name}|{arr.dtype.str}|{arr.shape}|".encode())
        step = max(1, chunk_bytes // max(1, arr[:1].nbytes))  # rows per read: memory bounded by bytes, not rows
        for start in range(0, max(len(arr), 1), step):
            h.update(read_rows(arr, start, start + step).tobytes())
    return h.hexdigest()


def content_digest(manifest: Manifest | dict, hasher: Hasher, version: int, next_id: int,
                   part_digests: Iterable[str]) -> str:
    """The whole-content digest of a version: identity (the manifest as stored), hyperplanes and every part."""
    record = manifest.to_dict() if isinstance(manifest, Manifest) else manifest
    h = hashlib.sha256()
    h.update(json.dumps(record, sort_keys=True).encode())
    h.update(f"|{version}|{next_id}|".encode())
    h.update(hasher.hyperplanes.astype(np.float32).tobytes())
    h.update(hasher.center.astype(np.float32).tobytes())
    for d in part_digests:
        h.update(d.encode())
    return h.hexdigest()


def hash_hex(row: np.ndarray) -> str:
    return row.tobytes().hex()


def hash_bytes(hexes: Sequence[str]) -> np.ndarray:
    """Hex content hashes to the (n, HASH_BYTES) uint8 array parts keep."""
    if any(len(h) != 2 * HASH_BYTES for h in hexes):
        raise ValueError(f"content hashes must be {2 * HASH_BYTES} hex digits")
    return np.frombuffer(bytes.fromhex("".join(hexes)), np.uint8).reshape(len(hexes), HASH_BYTES).copy()


def encode_paths(paths: Sequence[str]) -> np.ndarray:
    return np.array([p.encode() for p in paths], dtype=np.bytes_) if len(paths) else np.zeros(0, "S1")


def check_part(part: Part, manifest: Manifest, hasher: Hasher) -> None:
    """Shapes, types and references of one part agree with the manifest; ValueError says what does not."""
    n, m = len(part.ids), manifest
    dim = hasher.hyperplanes.shape[1]
    expected = {"category": (n,), "label": (n,), "code": (n, m.bits // 8), "embedding": (n, dim),
                "hash": (n, HASH_BYTES)}
    for name, arr in part.columns():
        if name in expected and arr.shape != expected[name]:
            raise ValueError(f"items/{name} has shape {arr.shape}, expected {expected[name]}")
    if part.paths.shape != (n,):
        raise ValueError(f"{len(part.paths)} paths for {n} items")
    if part.images is not None and len(part.images) != n:
        raise ValueError(f"{len(part.images)} images for {n} items")
    if n and (part.categories.min() < 0 or part.categories.max() >= len(m.class_names)):
        raise ValueError("an item is filed under a category that does not exist")
    if n and (part.labels.min() < -1 or part.labels.max() >= len(m.class_names)):
        raise ValueError("an item has a label that does not exist")
    if n and (len(np.unique(part.ids)) != n or part.ids.min() < 0):
        raise ValueError("item ids are not unique non-negative numbers")
    for raw in part.paths:
        p = raw.decode()
        if p.startswith("/") or ".." in p.split("/") or not p:
            raise ValueError(f"an item path leaves the catalog folder: {p!r}")


def check_codes(parts: Sequence[Part], hasher: Hasher, sample: int = CODE_CHECK_SAMPLE) -> None:
    """Stored codes are the hash of the stored embeddings (all items, or an even sample of big catalogs)."""
    total = sum(len(p) for p in parts)
    step = max(1, total // sample) if sample else 1
    bad = checked = 0
    for part in parts:
        rows = np.arange(0, len(part), step)
        for start in range(0, len(rows), 8192):
            r = rows[start:start + 8192]
            emb = read_rows(part.embeddings, start, start + len(r)) if step == 1 else take_rows(part.embeddings, r)
            fresh = hasher.hash(np.asarray(emb, np.float32))
            flipped = np.unpackbits(fresh ^ part.codes[r], axis=1).sum(1)
            bad += int((flipped > 2).sum())  # a float16 tie may flip a bit; an edit flips many
            checked += len(r)
    if checked and bad > max(1, checked // 100):
        raise ValueError(f"{bad} of {checked} checked codes do not match their embeddings")


class ArraySnapshot:
    """One version of a catalog over parts, with a scanner per category per part; safe to share between threads."""

    def __init__(self, manifest: Manifest, hasher: Hasher, parts: Sequence[Part], version: int, next_id: int,
                 digest: str, engine: str = "auto"):
        check_bits(hasher.bits)
        self.manifest, self.hasher, self.version, self.next_id, self.digest = manifest, hasher, version, next_id, digest
        self.parts = list(parts)
        self.engine = engine
        removed = np.concatenate([p.removed for p in self.parts]) if self.parts else np.zeros(0, np.int64)
        self._alive = [~np.isin(p.ids, removed) if len(removed) else np.ones(len(p), bool) for p in self.parts]
        self._by_id = [np.argsort(p.ids, kind="stable") for p in self.parts]
        ncat = len(manifest.class_names)
        self._rows: list[list[np.ndarray]] = []     # [part][category] -> live rows
        self._scanners: list[list] = []
        self._all_scanners = []
        counts = np.zeros(ncat, np.int64)
        for part, alive in zip(self.parts, self._alive):
            cats = np.where(alive, part.categories, -1)
            rows = [np.flatnonzero(cats == c) for c in range(ncat)]
            self._rows.append(rows)
            self._scanners.append([make_scanner(part.codes[r], engine) for r in rows])
            live = np.flatnonzero(alive)
            self._all_scanners.append((live, make_scanner(part.codes[live], engine)))
            counts += np.array([len(r) for r in rows], np.int64)
        self._counts = counts
        self._hex = [np.frombuffer(p.hashes.tobytes().hex().encode(), "S16") if len(p) else np.zeros(0, "S16")
                     for p in self.parts]
        # Small catalogs keep a float32 copy for the re-rank (converting float16 candidates costs ~2 ms a
        # query); big ones read float16 from the shared memory map and convert only the candidates.
        small = sum(len(p) for p in self.parts) * hasher.hyperplanes.shape[1] * 4 <= FLOAT32_COPY_BYTES
        self._float32 = [np.asarray(p.embeddings, np.float32) if small else None for p in self.parts]
        self.scan_engine = self._all_scanners[0][1].engine if self._all_scanners else engine

    # -------------------------------------------------------------- reading

    def __len__(self) -> int:
        return int(self._counts.sum())

    @property
    def stores_images(self) -> bool:
        return bool(self.parts) and self.parts[0].images is not None

    def counts(self) -> np.ndarray:
        return self._counts.copy()

    def candidates(self, code: np.ndarray, categories: Sequence[int] | None, n: int) -> Items:
        per_category = [None] if categories is None else list(categories)
        found: list[Items] = []
        for c in per_category:
            dists, locs = [], []
            for p, part in enumerate(self.parts):
                if c is None:
                    rows, scanner = self._all_scanners[p]
                else:
                    rows, scanner = self._rows[p][c], self._scanners[p][c]
                if not len(rows):
                    continue
                d, r = scanner.search(code, n)
                dists.append(d)
                locs.append(np.stack([np.full(len(r), p), rows[r]], 1))
            if not dists:
                continue
            dist, loc = np.concatenate(dists), np.concatenate(locs)
            ids = np.empty(len(loc), np.int64)
            for p in np.unique(loc[:, 0]):
                mask = loc[:, 0] == p
                ids[mask] = self.parts[p].ids[loc[mask, 1]]
            keep = np.lexsort((ids, dist))[:n]  # nearest first, ties by id, whatever the parts' layout
            dist, loc = dist[keep], loc[keep]
            found.append(self._gather(loc, dist))
        return Items.concat(found, self.hasher.hyperplanes.shape[1])

    def items(self, ids: Sequence[int]) -> Items:
        ids = np.asarray(ids, np.int64).reshape(-1)
        loc = np.array([self._locate(int(i)) for i in ids], np.int64).reshape(-1, 2)
        return self._gather(loc, None)

    def ids(self, category: int | None = None) -> np.ndarray:
        out = [p.ids[self._alive[i] if category is None else self._rows[i][category]]
               for i, p in enumerate(self.parts)]
        return np.sort(np.concatenate(out)) if out else np.zeros(0, np.int64)

    def image(self, item_id: int) -> np.ndarray:
        p, r = self._locate(item_id)
        images = self.parts[p].images
        if images is None:
            raise KeyError(item_id)
        return np.asarray(images[r])

    def keys(self) -> dict[str, tuple[int, str]]:
        out: dict[str, tuple[int, str]] = {}
        for part, alive in zip(self.parts, self._alive):
            for r in np.flatnonzero(alive):
                out[part.paths[r].decode()] = (int(part.ids[r]), hash_hex(part.hashes[r]))
        return out

    def live_rows(self) -> Iterator[tuple[Part, np.ndarray]]:
        """Each part with the rows of its items that are not removed (what a compaction keeps)."""
        for part, alive in zip(self.parts, self._alive):
            yield part, np.flatnonzero(alive)

    def __contains__(self, item_id: int) -> bool:
        try:
            self._locate(int(item_id))
        except KeyError:
            return False
        return True

    # -------------------------------------------------------------- internals

    def _locate(self, item_id: int) -> tuple[int, int]:
        for p, part in enumerate(self.parts):
            order = self._by_id[p]
            i = int(np.searchsorted(part.ids, item_id, sorter=order))
            if i < len(order) and part.ids[order[i]] == item_id and self._alive[p][order[i]]:
                return p, int(order[i])
        raise KeyError(item_id)

    def _gather(self, loc: np.ndarray, hamming: np.ndarray | None) -> Items:
        """Items at (part, row) locations, in that order, embeddings as float32."""
        dim = self.hasher.hyperplanes.shape[1]
        n = len(loc)
        ids = np.empty(n, np.int64)
        cats = np.empty(n, np.int16)
        labels = np.empty(n, np.int16)
        emb = np.empty((n, dim), np.float32)
        hashes: list[str] = [""] * n
        paths: list[str] = [""] * n
        for p in np.unique(loc[:, 0]) if n else ():
            sel = np.flatnonzero(loc[:, 0] == p)
            rows = loc[sel, 1]
            part = self.parts[p]
            ids[sel], cats[sel], labels[sel] = part.ids[rows], part.categories[rows], part.labels[rows]
            if self._float32[p] is not None:
                emb[sel] = self._float32[p][rows]
            else:
                order = np.argsort(rows)  # memory maps read fastest in file order
                emb[sel[order]] = part.embeddings[rows[order]]
            for s, h, path in zip(sel, self._hex[p][rows].tolist(), part.paths[rows].tolist()):
                hashes[s], paths[s] = h.decode(), path.decode()
        return Items(ids, cats, labels, emb, tuple(hashes), tuple(paths),
                     None if hamming is None else np.asarray(hamming, np.int32))
