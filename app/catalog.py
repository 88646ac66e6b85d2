"""A catalog is a model plus its store, read at one version: what a user searches, by name.

The app serves several side by side: ``photos`` (real clothing photos, the default),
``fashion-mnist`` (the paper's catalog) and every catalog a shop builds from its own
folder. Each store names the model file it was built with and its SHA-256; a catalog opens
only with that very model. A ``Catalog`` object never changes: it is one version of the
catalog, so a request that resolves its catalog once (``Catalogs.resolve``) sees one
snapshot from start to end. ``Catalogs.refresh`` swaps in newer versions as stores change.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .imaging.crop import Box
from .imaging.decode import MAX_PIXELS, decode
from .runtime import InferenceModel, open_model
from .search import DEFAULT_K, DEFAULT_MODE, MODES, SearchEngine, SearchResult, SoftRouting, check_query
from .settings import Settings
from .sources import resolve_root
from .stores import Hdf5Store, Items, Snapshot, Store, StoreError, check_name, open_store
from .stores.hdf5 import build_hint

UPLOADS_PREFIX = "@uploads/"  # item paths of photos added through the admin API (kept in the uploads folder)


@dataclass(frozen=True)
class CatalogSpec:
    """A catalog the project ships: the model it uses and the source it is indexed from."""

    name: str
    title: str
    model: str    # model name: models/NAME.tflite
    source: str   # sources.open_source spec
    demo: bool = False  # the paper's demonstration, not a shop's catalog


BUILTIN = {
    "photos": CatalogSpec("photos", "Clothing photos", model="photos", source="photos"),
    "fashion-mnist": CatalogSpec("fashion-mnist", "Fashion-MNIST (the paper's demo)", model="fashion16",
                                 source="fashion-mnist", demo=True),
}
SERVING_MODEL = "{}.tflite"


def store_uri(settings: Settings, name: str) -> str:
    """Where a catalog's store is: its FASHION16_STORES entry, else the folder ``STORE_DIR/NAME``."""
    check_name(name)
    return dict(settings.stores).get(name) or f"hdf5:{settings.store_dir / name}"


def catalog_store(settings: Settings, name: str) -> Store:
    return open_store(store_uri(settings, name), name)


def model_path(settings: Settings, model: str) -> Path:
    return settings.models_dir / SERVING_MODEL.format(model)


def uploads_dir(settings: Settings, name: str) -> Path:
    """Where photos added through the admin API are kept ("_" cannot start a catalog name: no clash)."""
    return settings.store_dir / "_uploads" / check_name(name)


class Catalog:
    """One searchable catalog at one version: turns a query picture into ranked catalog items."""

    def __init__(self, name: str, model: InferenceModel, store: Store, snapshot: Snapshot, uploads: Path,
                 title: str | None = None):
        self.name, self.model, self.store, self.snapshot, self.uploads = name, model, store, snapshot, uploads
        self.title = title or (BUILTIN[name].title if name in BUILTIN else name.replace("-", " ").capitalize())
        self.engine = engine_for(model)
        root = snapshot.manifest.root
        self.root = resolve_root(root) if root else None

    def __len__(self) -> int:
        return len(self.snapshot)

    @property
    def version(self) -> int:
        return self.snapshot.version

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.snapshot.manifest.class_names

    @property
    def stores_images(self) -> bool:
        """Fashion-MNIST keeps its 28x28 images in the store; photo catalogs point at files."""
        return self.snapshot.stores_images

    @property
    def demo(self) -> bool:
        return self.name in BUILTIN and BUILTIN[self.name].demo

    def counts(self) -> np.ndarray:
        return self.snapshot.counts()

    def stocked(self) -> list[str]:
        """The categories this catalog has items in."""
        return [n for n, c in zip(self.class_names, self.counts()) if c > 0]

    @property
    def default_mode(self) -> str:
        """The mode searched when a request names none: the one its model card says won on validation data."""
        return default_mode(self.model.card)

    def category_indices(self, names: Collection[str]) -> list[int]:
        """Category names (as the catalog spells them) to indices; ValueError naming the categories it has."""
        out = []
        for name in names:
            if name not in self.class_names:
                raise ValueError(f"there is no category {name!r} in the {self.name} catalog; it has "
                                 f"{', '.join(self.stocked())}")
            out.append(self.class_names.index(name))
        return out

    def search(self, query: bytes | Image.Image | np.ndarray, k: int = DEFAULT_K, mode: str | None = None,
               max_pixels: int = MAX_PIXELS, exclude: Collection[int] = (), categories: Collection[str] | None = None,
               box: Box | None = None) -> SearchResult:
        """Rank the catalog for one query picture; bytes are decoded and checked like an upload.

        ``box`` crops the decoded picture first (one garment of a photo); ``categories`` names
        the categories to search instead of the mode's routing; ``mode`` None is the catalog's default.
        """
        mode = self.default_mode if mode is None else mode
        check_query(k, mode)
        chosen = None if categories is None else self.category_indices(categories)
        t0 = time.perf_counter()
        if isinstance(query, bytes):
            query = self.model.decode(query, max_pixels, zoom=box.zoom if box else 1.0)
        if box is not None and not box.whole:
            query = box.crop(query if isinstance(query, Image.Image) else Image.fromarray(np.asarray(query)))
        t1 = time.perf_counter()
        x = self.model.prepare(query)
        t2 = time.perf_counter()
        probs, emb = self.model.forward_one(x)
        t3 = time.perf_counter()
        result = self.engine.search(self.snapshot, probs, emb, k, mode, exclude, chosen)
        timings = {"decode": t1 - t0, "preprocess": t2 - t1, "forward": t3 - t2}
        result.timings_ms = {**{s: round(1000 * v, 3) for s, v in timings.items()}, **result.timings_ms,
                             "total": round(1000 * (time.perf_counter() - t0), 3)}
        return result

    def rank(self, probs: np.ndarray, emb: np.ndarray, k: int = DEFAULT_K, mode: str | None = None,
             categories: Collection[str] | None = None) -> SearchResult:
        """Search again with a query's model outputs (a saved search): no picture, no model pass."""
        mode = self.default_mode if mode is None else mode
        check_query(k, mode)
        chosen = None if categories is None else self.category_indices(categories)
        t0 = time.perf_counter()
        result = self.engine.search(self.snapshot, probs, emb, k, mode, (), chosen)
        result.timings_ms["total"] = round(1000 * (time.perf_counter() - t0), 3)
        return result

    def more_like(self, item_id: int, k: int = DEFAULT_K, mode: str | None = None,
                  categories: Collection[str] | None = None) -> SearchResult:
        """Items like a catalog item, the item itself left out: its stored embedding, routed to its category.

        No model pass and no file read: the store holds what the search needs. ``direct``
        searches the whole catalog; ``routed`` and ``soft`` the item's own library;
        ``categories`` the ones named.
        """
        mode = self.default_mode if mode is None else mode
        check_query(k, mode)
        chosen = None if categories is None else self.category_indices(categories)
        t0 = time.perf_counter()
        item = self.item(item_id)
        probs = np.zeros(len(self.class_names), np.float32)
        probs[int(item.categories[0])] = 1.0
        result = self.engine.search(self.snapshot, probs, item.embeddings[0], k, mode, (item_id,), chosen)
        result.timings_ms["total"] = round(1000 * (time.perf_counter() - t0), 3)
        return result

    def item(self, item_id: int) -> Items:
        """One item (KeyError when this version has no such id)."""
        return self.snapshot.items([item_id])

    def item_file(self, item_id: int, path: str | None = None) -> Path:
        """The photo file of an item; KeyError for unknown items and for catalogs that keep their images."""
        if self.stores_images:
            raise KeyError(item_id)
        file = self.file_of(self.item(item_id).paths[0] if path is None else path)
        if file is None:
            raise KeyError(item_id)
        return file

    def file_of(self, path: str) -> Path | None:
        """Where an item path's photo is: the uploads folder for admin uploads, else under the catalog's root."""
        if path.startswith(UPLOADS_PREFIX):
            return self.uploads / path[len(UPLOADS_PREFIX):]
        return None if self.root is None else self.root / path

    def item_picture(self, item_id: int) -> Image.Image | np.ndarray:
        """A catalog item's own picture: its stored image, or its decoded photo."""
        if self.stores_images:
            return self.snapshot.image(item_id)
        return decode(self.item_file(item_id).read_bytes())

    def reopen(self) -> Catalog | None:
        """This catalog at its store's latest version, or None when it is already the latest."""
        latest = self.store.version()
        if latest is None or latest == self.version:
            return None
        snapshot = self.store.snapshot()
        check_model(snapshot, self.model, self.store)
        return Catalog(self.name, self.model, self.store, snapshot, self.uploads, self.title)


_ENGINES: dict[int, SearchEngine] = {}


def default_mode(card: dict) -> str:
    """A model card's ``default_mode``; else ``soft`` where the card records it beat ``routed`` on validation data.

    The photo model's card holds that comparison (``soft_routing_tuning``: 0.9355 against
    0.9238, precision@20 on the validation photos); a card without one keeps the paper's
    ``routed``. Test data never decides: it is measured once, after every choice.
    """
    named = card.get("default_mode")
    if named in MODES:
        return named
    tuning = card.get("soft_routing_tuning") or {}
    soft, routed = tuning.get("precision_soft"), tuning.get("precision_routed")
    if isinstance(soft, (int, float)) and isinstance(routed, (int, float)) and soft > routed:
        return "soft"
    return DEFAULT_MODE


def engine_for(model: InferenceModel) -> SearchEngine:
    """One search engine per model, with the soft-routing settings tuned for it (its card)."""
    key = id(model)
    if key not in _ENGINES:
        _ENGINES[key] = SearchEngine(soft=SoftRouting(**model.card.get("soft_routing", {})))
    return _ENGINES[key]


def check_model(snapshot: Snapshot, model: InferenceModel, store: Store) -> None:
    """A store opens only with the very model it was built with, and carries that model's categories."""
    m = snapshot.manifest
    if m.model_sha256 != model.sha256:
        raise StoreError(f"{store.uri} was built with model {m.model_sha256[:12]}, but {m.model_file} is "
                         f"{model.sha256[:12]}; {build_hint(m.catalog)}")
    if tuple(m.class_names) != tuple(model.class_names):
        raise StoreError(f"{store.uri}: its categories ({', '.join(m.class_names)}) are not those of its model "
                         f"{m.model_file} ({', '.join(model.class_names)}); {build_hint(m.catalog)}")
    spec = BUILTIN.get(m.catalog)
    if spec is not None and Path(m.model_file).stem != spec.model:
        raise StoreError(f"{store.uri} holds the built-in catalog {m.catalog} made with model {m.model_file}; "
                         f"it must be made with {SERVING_MODEL.format(spec.model)}; {build_hint(m.catalog)}")


def open_catalog(settings: Settings, name: str, models: dict[Path, InferenceModel] | None = None,
                 store: Store | None = None) -> Catalog:
    """Open a catalog's store (latest version) and the model it names, verified against each other."""
    store = store or catalog_store(settings, name)
    snapshot = store.snapshot()  # StoreError naming the fix when it is missing, damaged, foreign or edited
    manifest = snapshot.manifest
    file = settings.models_dir / manifest.model_file
    models = {} if models is None else models
    if file not in models:
        if not file.is_file():
            trains = "fashion-mnist" if file.stem == BUILTIN["fashion-mnist"].model else "photos"
            raise StoreError(f"catalog {manifest.catalog}: its model {file} is missing; restore it (it is committed: "
                             f"`git checkout -- models/`) or train it with `python -m app train --catalog {trains}`")
        models[file] = open_model(file, settings.inference_threads)
    check_model(snapshot, models[file], store)
    return Catalog(name, models[file], store, snapshot, uploads_dir(settings, name))


class Catalogs(Mapping[str, Catalog]):
    """The catalogs one process serves, by name, each at its latest opened version."""

    def __init__(self, catalogs: dict[str, Catalog], default: str):
        if not catalogs:
            raise StoreError("no catalogs to serve")
        self._catalogs = dict(catalogs)
        self.default = default if default in catalogs else next(iter(catalogs))
        self._refreshing = threading.Lock()

    def __getitem__(self, name: str) -> Catalog:
        return self._catalogs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._catalogs)

    def __len__(self) -> int:
        return len(self._catalogs)

    def resolve(self, name: str | None) -> Catalog:
        """The named catalog, the default when ``name`` is empty; KeyError names the catalogs there are."""
        if not name:
            return self._catalogs[self.default]
        if name not in self._catalogs:
            raise KeyError(f"there is no catalog {name!r}; the catalogs are {', '.join(self._catalogs)}")
        return self._catalogs[name]

    def refresh(self) -> list[tuple[str, int]]:
        """Open newer versions of any changed store and swap them in; returns (catalog, version) swapped.

        A new version that fails verification is not served: the last good one stays (the
        error propagates to the caller, which logs it).
        """
        swapped = []
        with self._refreshing:
            for name, catalog in list(self._catalogs.items()):
                newer = catalog.reopen()
                if newer is not None:
                    self._catalogs[name] = newer  # one reference swap: a request holds the old or the new
                    swapped.append((name, newer.version))
        return swapped


def served_names(settings: Settings) -> list[str]:
    """FASHION16_CATALOGS if set; else the built-ins, then every other catalog in the store folder or settings."""
    if settings.catalogs:
        return list(settings.catalogs)
    found = sorted(p.parent.name for p in settings.store_dir.glob("*/manifest.json"))
    found += [name for name, _ in settings.stores]
    names = list(BUILTIN)
    for n in found:
        if n not in names:
            names.append(n)
    return names


def open_catalogs(settings: Settings) -> Catalogs:
    """Every served catalog, opened and verified; any missing or mismatched one raises StoreError."""
    models: dict[Path, InferenceModel] = {}
    catalogs = {}
    for name in served_names(settings):
        try:
            check_name(name)
        except ValueError as exc:
            raise StoreError(f"FASHION16_CATALOGS: {exc}") from None
        catalogs[name] = open_catalog(settings, name, models)
    return Catalogs(catalogs, settings.default_catalog)


def legacy_store_files(settings: Settings) -> list[Path]:
    """Stores of the earlier single-file format (NAME.h5), which this version no longer reads."""
    return sorted(settings.store_dir.glob("*.h5"))


__all__ = ["BUILTIN", "Catalog", "CatalogSpec", "Catalogs", "Hdf5Store", "catalog_store", "check_model",
           "model_path", "open_catalog", "open_catalogs", "served_names", "store_uri", "uploads_dir"]
