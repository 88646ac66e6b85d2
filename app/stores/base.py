"""What every store backend speaks: the manifest, items by id, and the read/write protocols.

Vocabulary (README, "Glossary"): a *catalog* is a named set of *items* searched together;
its *store* is where those items live (an HDF5 folder, memory, Milvus); a *version* is one
committed state of a store, and a *snapshot* is a store read at one version: what one
request uses from start to end. Callers hold item *ids*, never rows: an id is given once,
never reused, and names one picture for good (a changed photo gets a new id).
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol, runtime_checkable

import numpy as np

from ..hashing import Hasher

NAME_RULE = "1-40 lower-case letters, digits and hyphens, starting and ending with a letter or digit"
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
HASH_BYTES = 8  # an item's content hash: the first 8 bytes of the SHA-256 of its picture


class StoreError(RuntimeError):
    """A store is missing, damaged, tampered with, or not the one asked for; the message names the fix."""


def check_name(name: str) -> str:
    """A catalog name, validated: it is also a folder name and a URL part, so one lossless rule for all."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"catalog names are {NAME_RULE}; got {name!r}")
    return name


@dataclass(frozen=True)
class Manifest:
    """What a catalog is: its name, the model that embeds it, its categories and where its photos are."""

    catalog: str
    model_file: str           # file name inside the models folder, e.g. "photos.tflite"
    model_sha256: str
    class_names: tuple[str, ...]
    source: str               # "fashion-mnist", "photos", "folder" or "synthetic"
    root: str | None = None   # where the items' photo paths start (relative to the repository when inside it)
    bits: int = 256
    seed: int = 0             # of the random hyperplanes: Hasher.create(embedding_dim, bits, seed, centre) remakes them
    embedding_dim: int = 0
    created: str = ""
    build: dict = field(default_factory=dict)  # how the last full build went: items/s, seconds, skipped files

    def to_dict(self) -> dict:
        return {**asdict(self), "class_names": list(self.class_names)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        missing = [k for k in ("catalog", "model_file", "model_sha256", "class_names", "source") if k not in data]
        if missing:
            raise ValueError(f"manifest lacks {', '.join(missing)}")
        data = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**data, "class_names": tuple(data["class_names"])})

    def with_(self, **changes) -> Manifest:
        return replace(self, **changes)


@dataclass(frozen=True)
class Items:
    """Some items of one snapshot, with everything a response shows (one read per response).

    ``hamming`` is set for search candidates (distance of each code to the query's).
    ``paths`` name each item's picture in its source: a photo file relative to the catalog's
    root, or (catalogs that keep their images) the source's own name for it, e.g. ``train/123``.
    """

    ids: np.ndarray             # (n,) int64
    categories: np.ndarray      # (n,) int16: the library an item is filed under
    labels: np.ndarray          # (n,) int16: its known category, -1 when unknown
    embeddings: np.ndarray      # (n, dim) float32
    hashes: tuple[str, ...]     # hex content hash of each item's picture
    paths: tuple[str, ...]
    hamming: np.ndarray | None = None  # (n,) int32

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: np.ndarray) -> Items:
        rows = np.asarray(rows, np.int64)
        return Items(self.ids[rows], self.categories[rows], self.labels[rows], self.embeddings[rows],
                     tuple(self.hashes[r] for r in rows), tuple(self.paths[r] for r in rows),
                     None if self.hamming is None else self.hamming[rows])

    @classmethod
    def concat(cls, parts: Sequence[Items], dim: int) -> Items:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int16), np.zeros(0, np.int16),
                       np.zeros((0, dim), np.float32), (), (), np.zeros(0, np.int32))
        if len(parts) == 1:
            return parts[0]
        paths = tuple(p for part in parts for p in part.paths)
        hamming = None if parts[0].hamming is None else np.concatenate([p.hamming for p in parts])
        return cls(np.concatenate([p.ids for p in parts]), np.concatenate([p.categories for p in parts]),
                   np.concatenate([p.labels for p in parts]), np.concatenate([p.embeddings for p in parts]),
                   tuple(h for p in parts for h in p.hashes), paths, hamming)


@dataclass
class NewItems:
    """Items to add: model outputs and what the catalog keeps of each picture (a path or the image itself)."""

    embeddings: np.ndarray                # (n, dim) float32, unit rows
    categories: np.ndarray                # (n,) int: the library each is filed under
    labels: np.ndarray                    # (n,) int: known category or -1
    hashes: Sequence[str]                 # hex content hash of each picture (HASH_BYTES bytes)
    paths: Sequence[str]                  # the picture's name in its source (a photo file, relative to the root)
    images: np.ndarray | None = None      # (n, h, w) uint8: catalogs that keep their images (Fashion-MNIST)
    ids: np.ndarray | None = None         # ids carried over from an earlier version (rebuilds); else new ids

    def __len__(self) -> int:
        return len(self.embeddings)


@runtime_checkable
class Snapshot(Protocol):
    """A store read at one version. Everything a request needs, by id; never changes once opened."""

    manifest: Manifest
    hasher: Hasher
    version: int
    digest: str       # whole-content digest of this version (ids, categories, codes, embeddings, paths, ...)
    next_id: int      # the id the next added item gets
    scan_engine: str  # what scans the codes ("faiss", "numpy", "milvus")

    def __len__(self) -> int: ...

    def counts(self) -> np.ndarray:
        """Items per category, (num_categories,) int64."""

    def candidates(self, code: np.ndarray, categories: Sequence[int] | None, n: int) -> Items:
        """Up to ``n`` nearest items by Hamming distance in each listed category (None: in the whole catalog)."""

    def items(self, ids: Sequence[int]) -> Items:
        """The items with these ids, in that order; KeyError for an id the snapshot does not hold."""

    def ids(self, category: int | None = None) -> np.ndarray:
        """Every item id (of one category), ascending."""

    def image(self, item_id: int) -> np.ndarray:
        """A store-held image (Fashion-MNIST); KeyError for unknown items and for catalogs of files."""

    def keys(self) -> dict[str, tuple[int, str]]:
        """path -> (id, content hash) of every item: what lets a rebuild or an add keep ids."""

    @property
    def stores_images(self) -> bool: ...


class Writer(Protocol):
    """Changes to one store, made visible together by ``commit`` as a new version (or not at all)."""

    def add(self, items: NewItems) -> np.ndarray:
        """Queue items; returns the ids they will have."""

    def remove(self, ids: Sequence[int]) -> None:
        """Queue removals; KeyError for ids the store does not hold."""

    def commit(self, build: dict | None = None) -> int:
        """Make the queued changes one new version, atomically; returns it. ``build`` notes how a rebuild went."""

    def abort(self) -> None:
        """Drop the queued changes."""


@runtime_checkable
class Store(Protocol):
    """Where one catalog lives: the latest version to read, and writers that make new ones."""

    catalog: str
    uri: str

    def exists(self) -> bool: ...

    def version(self) -> int | None:
        """The latest committed version, cheaply (workers poll it); None when nothing is committed."""

    def snapshot(self) -> Snapshot:
        """The latest version, opened and verified (StoreError naming the fix otherwise)."""

    def writer(self) -> Writer:
        """Changes on top of the latest version."""

    def rebuild(self, manifest: Manifest, seed: int = 0, next_id: int = 0, hasher: Hasher | None = None,
                version: int | None = None) -> Writer:
        """A writer whose commit replaces the whole content with what it was given.

        The hyperplanes are drawn from ``seed`` and centred on the new items' mean at commit;
        ids given in NewItems are kept, the others numbered from ``next_id`` on (never reused).
        A migration keeps the catalog it copies: its ``hasher`` (same codes) and its ``version``
        number (above this store's latest).
        """

    def describe(self) -> str:
        """One line: what kind of store this is and what it supports (said at start)."""
