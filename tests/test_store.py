"""The catalog store: exact round trip, atomic replacement, and refusal of damaged or foreign files."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from app.settings import ROOT
from app.store import (
    CatalogStore,
    Manifest,
    StoreError,
    assemble,
    peek_manifest,
    read_store,
    summary,
    verify_codes,
    verify_structure,
    write_store,
)

SHA = "ab" * 32
NAMES = tuple(f"class {c}" for c in range(10))


def synthetic_store(n: int = 500, dim: int = 32, bits: int = 128, seed: int = 0, paths: bool = False) -> CatalogStore:
    """Unit embeddings in 10 categories, some labels unknown; images or relative paths per item."""
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    category = rng.integers(0, 10, n).astype(np.int16)
    labels = np.where(rng.random(n) < 0.2, -1, category).astype(np.int16)
    manifest = Manifest(catalog="shop", model_file="m.tflite", model_sha256=SHA, class_names=NAMES,
                        source="folder" if paths else "fashion-mnist", root="/srv/catalog" if paths else None,
                        bits=bits, created="2026-11-01T12:00:00", build={"note": "test"})
    extra = ({"paths": [f"shop/item_{i}.jpg" for i in range(n)]} if paths
             else {"images": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)})
    return assemble(manifest, emb, labels, category, seed=seed, ids=np.arange(n) * 3 + 7, **extra)


def assert_same_store(a: CatalogStore, b: CatalogStore) -> None:
    assert a.manifest == b.manifest
    np.testing.assert_array_equal(a.hasher.hyperplanes, b.hasher.hyperplanes)
    np.testing.assert_array_equal(a.hasher.center, b.hasher.center)
    for name in ("ids", "categories", "labels", "codes", "embeddings", "images", "offsets"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype, name
            np.testing.assert_array_equal(x, y)
    assert a.paths == b.paths


@pytest.mark.parametrize("paths", [False, True])
def test_round_trip_keeps_every_field(tmp_path, paths):
    store = synthetic_store(paths=paths)
    written = write_store(store, tmp_path / "sub" / "s.h5")
    back = read_store(written, model_sha256=SHA)
    assert_same_store(store, back)
    assert back.manifest.build == {"note": "test"} and back.manifest.created == "2026-11-01T12:00:00"
    assert back.labels.dtype == np.int16 and back.embeddings.dtype == np.float16
    assert peek_manifest(written) == store.manifest
    verify_codes(back)


def test_items_are_filed_in_category_runs_with_stable_ids():
    store = synthetic_store()
    verify_structure(store)
    for c in range(10):
        assert np.all(store.categories[store.library(c)] == c)
    assert store.offsets[-1] == len(store) == 500
    for row in (0, 17, 499):  # ids survive the reordering and find their row
        assert store.row_of(int(store.ids[row])) == row
    with pytest.raises(KeyError):
        store.row_of(8)  # ids are 7, 10, 13, ...
    info = summary(store)
    assert info["items"] == 500 and sum(c["items"] for c in info["categories"]) == 500


def test_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    path = write_store(synthetic_store(seed=1), tmp_path / "s.h5")
    before = path.read_bytes()

    def fail() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_store(synthetic_store(seed=2), path, on_written=fail)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]


WRITER = """
import sys, time
sys.path.insert(0, sys.argv[2])
from tests.test_store import synthetic_store
from app.store import write_store

def pause():
    print("written", flush=True)
    time.sleep(600)

write_store(synthetic_store(n=5000, seed=9), sys.argv[1], on_written=pause)
"""


def test_killed_writer_leaves_the_old_file_intact_and_nothing_else(tmp_path):
    """SIGKILL once the new data is on disk but not yet named: the old file is untouched, no temp file remains."""
    path = write_store(synthetic_store(seed=3), tmp_path / "s.h5")
    before = path.read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(ROOT)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "written"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]
    assert_same_store(read_store(path, model_sha256=SHA), synthetic_store(seed=3))


def test_a_dead_writers_named_leftover_is_cleared_but_not_a_live_one(tmp_path):
    """File systems without O_TMPFILE get named temp files; the next write removes those of dead writers."""
    path = write_store(synthetic_store(seed=5), tmp_path / "s.h5")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover, alive = tmp_path / f".s.h5.tmp-{dead.stdout.strip()}", tmp_path / f".s.h5.tmp-{os.getpid()}"
    leftover.write_bytes(b"torn")
    alive.write_bytes(b"in progress")
    write_store(synthetic_store(seed=6), path)
    assert not leftover.exists() and alive.exists()


@pytest.fixture()
def store_file(tmp_path) -> Path:
    return write_store(synthetic_store(seed=4), tmp_path / "s.h5")


def flip_chunk_bytes(path: Path, dataset: str) -> None:
    """Flip bytes inside one dataset's stored chunk, leaving the HDF5 structure intact."""
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info(0)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        chunk = bytearray(fh.read(4))
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(bytes(b ^ 0xFF for b in chunk))


@pytest.mark.parametrize("dataset", ["items/embedding", "items/code", "hasher/hyperplanes", "items/label",
                                     "items/image", "manifest"])
def test_flipped_bytes_fail_the_checksum(store_file, dataset):
    flip_chunk_bytes(store_file, dataset)
    with pytest.raises(StoreError, match="damaged or incomplete.*rebuild it with `python -m app index build"):
        read_store(store_file)


def test_edited_manifest_is_refused_even_with_its_checksum_redone(store_file):
    """Renaming a category inside the file, checksum and all, must not reach users unnoticed."""
    with h5py.File(store_file, "r+") as f:
        manifest = json.loads(f["manifest"][()].tobytes())
        manifest["class_names"][3] = manifest["class_names"][4]
        del f["manifest"]
        f.create_dataset("manifest", data=np.frombuffer(json.dumps(manifest).encode(), np.uint8), fletcher32=True,
                         chunks=True)
    with pytest.raises(StoreError, match="class names are missing or repeated"):
        read_store(store_file)


def test_metadata_in_attributes_is_refused(store_file):
    """Attributes carry no checksum, so the format keeps none but its version: an added one is an edit."""
    with h5py.File(store_file, "r+") as f:
        f.attrs["class_names"] = json.dumps(["renamed"] * 10)
    with pytest.raises(StoreError, match="unexpected attributes"):
        read_store(store_file)


def test_truncated_file_is_refused(store_file):
    store_file.write_bytes(store_file.read_bytes()[: store_file.stat().st_size // 2])
    with pytest.raises(StoreError, match="damaged or incomplete"):
        read_store(store_file)


def test_not_an_hdf5_file_is_refused(tmp_path):
    (tmp_path / "x.h5").write_bytes(b"not a store at all")
    with pytest.raises(StoreError, match="damaged or incomplete"):
        read_store(tmp_path / "x.h5")


def test_missing_file_names_the_build_command(tmp_path):
    with pytest.raises(StoreError, match="store not found.*python -m app index build --catalog none"):
        read_store(tmp_path / "none.h5")


def test_wrong_format_version_is_refused(store_file):
    with h5py.File(store_file, "r+") as f:
        f.attrs["format_version"] = 1
    with pytest.raises(StoreError, match="store format 1 is not supported"):
        read_store(store_file)


def test_store_of_another_model_is_refused(store_file):
    assert read_store(store_file, model_sha256=SHA).manifest.model_sha256 == SHA
    with pytest.raises(StoreError, match=f"built with model {SHA[:12]}, but m.tflite is {'ef' * 6}"):
        read_store(store_file, model_sha256="ef" * 32)


def replace_dataset(f: h5py.File, name: str, data: np.ndarray) -> None:
    del f[name]
    f.create_dataset(name, data=data, fletcher32=True, chunks=True)


@pytest.mark.parametrize("edit, says", [
    (lambda f: replace_dataset(f, "items/category", f["items/category"][:-1]), "items/category has shape"),
    (lambda f: replace_dataset(f, "items/code", f["items/code"][:, :-1]), "items/code has shape"),
    (lambda f: replace_dataset(f, "items/category", f["items/category"][()][::-1]), "not ordered by category"),
    (lambda f: replace_dataset(f, "items/category", f["items/category"][()] + 10), "category that does not exist"),
    (lambda f: replace_dataset(f, "items/label", f["items/label"][()] - 5), "label that does not exist"),
    (lambda f: replace_dataset(f, "items/id", np.zeros_like(f["items/id"][()])), "ids are not unique"),
    (lambda f: replace_dataset(f, "hasher/center", f["hasher/center"][:-1]), "center has shape"),
    (lambda f: replace_dataset(f, "items/image", f["items/image"][:-3]), "images for"),
    (lambda f: replace_dataset(f, "hasher/hyperplanes", f["hasher/hyperplanes"][:64]), "manifest says 128 bits"),
])
def test_inconsistent_contents_are_refused(store_file, edit, says):
    with h5py.File(store_file, "r+") as f:
        edit(f)
    with pytest.raises(StoreError, match=says):
        read_store(store_file)


def test_paths_that_leave_the_catalog_folder_are_refused(tmp_path):
    store = synthetic_store(n=50, paths=True)
    bad = CatalogStore(**{**{k: getattr(store, k) for k in ("manifest", "hasher", "ids", "categories", "labels",
                                                          "codes", "embeddings", "images")},
                          "paths": ("../../etc/passwd",) + store.paths[1:]})
    with pytest.raises(StoreError, match="leaves the catalog folder"):
        read_store(write_store(bad, tmp_path / "bad.h5"))


def test_verify_codes_detects_tampered_codes(store_file):
    store = read_store(store_file)
    verify_codes(store)
    codes = store.codes.copy()
    codes[: len(codes) // 10] ^= 0xFF
    tampered = CatalogStore(**{**{k: getattr(store, k) for k in ("manifest", "hasher", "ids", "categories", "labels",
                                                               "embeddings", "images", "paths")}, "codes": codes})
    verify_structure(tampered)  # still well-formed: only the deep check can tell
    with pytest.raises(ValueError, match="codes do not match their embeddings"):
        verify_codes(tampered)
