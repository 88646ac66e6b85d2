"""A catalog is a model plus its store: what a user searches, by name.

The app serves several side by side: ``photos`` (real clothing photos, the default),
``fashion-mnist`` (the paper's catalog) and every store a shop builds from its own
folder (``python -m app index build --catalog shop --gallery DIR``). Each store names the
model file it was built with and its SHA-256; a catalog opens only with that very model.
Catalogs that share a model share one loaded copy.
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .imaging.decode import MAX_PIXELS, decode
from .runtime import InferenceModel, open_model
from .search import DEFAULT_K, DEFAULT_MODE, SearchEngine, SearchResult, SoftRouting, check_query
from .settings import Settings
from .sources import resolve_root
from .store import CatalogStore, StoreError, peek_manifest, read_store, rebuild_hint


@dataclass(frozen=True)
class CatalogSpec:
    """A catalog the project ships: the model it uses and the source it is indexed from."""

    name: str
    title: str
    model: str    # model name: models/NAME.tflite
    source: str   # sources.open_source spec

    def store_path(self, settings: Settings) -> Path:
        return store_path(settings, self.name)


BUILTIN = {
    "photos": CatalogSpec("photos", "Clothing photos", model="photos", source="photos"),
    "fashion-mnist": CatalogSpec("fashion-mnist", "Fashion-MNIST (the paper's)", model="fashion16",
                                 source="fashion-mnist"),
}
SERVING_MODEL = "{}.tflite"


def store_path(settings: Settings, name: str) -> Path:
    return settings.store_dir / f"{name.replace('-', '_')}.h5"


def model_path(settings: Settings, model: str) -> Path:
    return settings.models_dir / SERVING_MODEL.format(model)


class Catalog:
    """One searchable catalog: turns a query picture into ranked catalog items."""

    def __init__(self, name: str, model: InferenceModel, store: CatalogStore, store_file: Path,
                 title: str | None = None):
        self.name, self.model, self.store, self.store_file = name, model, store, store_file
        self.title = title or (BUILTIN[name].title if name in BUILTIN else name.replace("-", " ").capitalize())
        self.engine = SearchEngine(store, soft=SoftRouting(**model.card.get("soft_routing", {})))
        root = store.manifest.root
        self.root = resolve_root(root) if root else None

    def __len__(self) -> int:
        return len(self.store)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.store.class_names

    @property
    def stores_images(self) -> bool:
        """Fashion-MNIST keeps its 28x28 images in the store; photo catalogs point at files."""
        return self.store.images is not None

    def search(self, query: bytes | Image.Image | np.ndarray, k: int = DEFAULT_K, mode: str = DEFAULT_MODE,
               max_pixels: int = MAX_PIXELS) -> SearchResult:
        """Rank the catalog for one query picture; bytes are decoded and checked like an upload."""
        check_query(k, mode)
        t0 = time.perf_counter()
        if isinstance(query, bytes):
            query = self.model.decode(query, max_pixels)
        t1 = time.perf_counter()
        x = self.model.prepare(query)
        t2 = time.perf_counter()
        probs, emb = self.model.forward_one(x)
        t3 = time.perf_counter()
        result = self.engine.search(probs, emb, k, mode)
        timings = {"decode": t1 - t0, "preprocess": t2 - t1, "forward": t3 - t2}
        result.timings_ms = {**{s: round(1000 * v, 3) for s, v in timings.items()}, **result.timings_ms,
                             "total": round(1000 * (time.perf_counter() - t0), 3)}
        return result

    def item_query(self, item_id: int) -> Image.Image | np.ndarray:
        """A catalog item's own picture, to search with ("more like this"); KeyError when there is none."""
        row = self.store.row_of(item_id)
        if self.store.images is not None:
            return self.store.images[row]
        return decode(self.item_file(item_id).read_bytes())

    def item_file(self, item_id: int) -> Path:
        """The file of a photo catalog's item; KeyError for unknown items and catalogs without files."""
        row = self.store.row_of(item_id)
        if self.store.paths is None or self.root is None:
            raise KeyError(item_id)
        return self.root / self.store.paths[row]

    def item_image(self, item_id: int) -> np.ndarray:
        """A store-held item image (uint8 array); KeyError for unknown items and file catalogs."""
        if self.store.images is None:
            raise KeyError(item_id)
        return self.store.images[self.store.row_of(item_id)]


def open_catalog(path: Path, settings: Settings, models: dict[Path, InferenceModel] | None = None,
                 name: str | None = None) -> Catalog:
    """Open a store and the model it names (from the models folder), verified against each other."""
    manifest = peek_manifest(path)
    if manifest is None:
        read_store(path)  # raises the StoreError that says what is wrong with the file
        raise StoreError(f"{path} has no manifest")
    file = settings.models_dir / manifest.model_file
    models = {} if models is None else models
    if file not in models:
        if not file.is_file():
            trains = "fashion-mnist" if file.stem == BUILTIN["fashion-mnist"].model else "photos"
            raise StoreError(f"catalog {manifest.catalog}: its model {file} is missing; restore it (it is committed: "
                             f"`git checkout -- models/`) or train it with `python -m app train --catalog {trains}`")
        models[file] = open_model(file, settings.inference_threads)
    store = read_store(path, model_sha256=models[file].sha256)
    check_categories(store, models[file].class_names, path)
    return Catalog(name or manifest.catalog, models[file], store, path)


def check_categories(store: CatalogStore, model_classes: tuple[str, ...], path: Path) -> None:
    """A store's category names are its model's (an edited name must never reach users)."""
    if tuple(store.class_names) != tuple(model_classes):
        raise StoreError(f"{path}: its categories ({', '.join(store.class_names)}) are not those of its model "
                         f"{store.manifest.model_file} ({', '.join(model_classes)}); "
                         f"{rebuild_hint(path, store.manifest)}")


class Catalogs(Mapping[str, Catalog]):
    """The catalogs one process serves, by name, and which one answers when none is named."""

    def __init__(self, catalogs: dict[str, Catalog], default: str):
        if not catalogs:
            raise StoreError("no catalogs to serve")
        self._catalogs = catalogs
        self.default = default if default in catalogs else next(iter(catalogs))

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


def served_names(settings: Settings) -> list[str]:
    """FASHION16_CATALOGS if set; else the built-ins, then every other store in the store folder."""
    if settings.catalogs:
        return list(settings.catalogs)
    found = sorted(m.catalog for p in settings.store_dir.glob("*.h5") if (m := peek_manifest(p)) is not None)
    return list(BUILTIN) + [n for n in found if n not in BUILTIN]


def open_catalogs(settings: Settings) -> Catalogs:
    """Every served catalog, opened and verified; any missing or mismatched one raises StoreError."""
    models: dict[Path, InferenceModel] = {}
    catalogs = {}
    for name in served_names(settings):
        path = store_path(settings, name)
        if not path.is_file():
            raise StoreError(f"catalog {name}: store {path} not found; build it with "
                             f"`python -m app index build --catalog {name}`"
                             + ("" if name in BUILTIN else " --gallery DIR"))
        catalogs[name] = open_catalog(path, settings, models, name)
    return Catalogs(catalogs, settings.default_catalog)
