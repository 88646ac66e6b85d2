"""The HDF5 index: exact round trip, atomic replacement, and refusal of damaged or foreign files."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from app.config import ROOT
from app.index_store import (
    CategoryLibrary, GalleryIndex, IndexStoreError, code_prefix, index_summary, read_index, verify_codes,
    verify_structure, write_index,
)
from app.indexer import assemble

SHA = "ab" * 32


def synthetic_index(n: int = 500, dim: int = 32, bits: int = 128, seed: int = 0, paths: bool = False) -> GalleryIndex:
    """Unit embeddings in 10 categories, some labels unknown; images or relative paths per item."""
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    category = rng.integers(0, 10, n).astype(np.int16)
    labels = np.where(rng.random(n) < 0.2, -1, category).astype(np.int16)
    extra = ({"paths": [f"shop/item_{i}.jpg" for i in range(n)], "root": "/srv/catalog", "source": "folder"}
             if paths else {"images": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)})
    return assemble(emb, labels, category, SHA, bits=bits, seed=seed, meta={"note": "test"}, **extra)


def assert_same_index(a: GalleryIndex, b: GalleryIndex) -> None:
    np.testing.assert_array_equal(a.hasher.hyperplanes, b.hasher.hyperplanes)
    np.testing.assert_array_equal(a.hasher.center, b.hasher.center)
    assert (a.model_sha256, a.class_names, a.source, a.root, a.paths) == \
        (b.model_sha256, b.class_names, b.source, b.root, b.paths)
    for name in ("labels", "item_category", "images"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert len(a.categories) == len(b.categories)
    for la, lb in zip(a.categories, b.categories):
        for name in ("ids", "codes", "embeddings", "bucket_prefix", "bucket_start", "bucket_count"):
            x, y = getattr(la, name), getattr(lb, name)
            assert x.dtype == y.dtype, name
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("paths", [False, True])
def test_round_trip_keeps_every_field(tmp_path, paths):
    index = synthetic_index(paths=paths)
    written = write_index(index, tmp_path / "sub" / "g.h5")
    back = read_index(written, model_sha256=SHA)
    assert_same_index(index, back)
    assert back.meta["note"] == "test" and back.meta["created"]
    assert back.labels.dtype == np.int16 and back.categories[0].embeddings.dtype == np.float16
    verify_codes(back)


def test_libraries_hold_their_category_sorted_into_buckets():
    index = synthetic_index()
    verify_structure(index)
    for c, lib in enumerate(index.categories):
        assert np.all(index.item_category[lib.ids] == c)
        prefix = code_prefix(lib.codes)
        assert np.all(np.diff(prefix.astype(np.int64)) >= 0)
        for code in lib.codes[:5]:
            members = np.isin(lib.ids, lib.bucket_of(code))
            assert members.any() and np.all(prefix[members] == code_prefix(code[None])[0])
            assert not np.any(prefix[~members] == code_prefix(code[None])[0])
    summary = index_summary(index)
    assert summary["items"] == 500 and sum(c["items"] for c in summary["categories"]) == 500


def test_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    path = write_index(synthetic_index(seed=1), tmp_path / "g.h5")
    before = path.read_bytes()
    broken = synthetic_index(seed=2)
    lib = broken.categories[6]  # categories 0-5 get written before this one fails
    lib.bucket_count = np.array([object()] * len(lib.bucket_count))
    with pytest.raises(TypeError):
        write_index(broken, path)
    assert path.read_bytes() == before
    assert_same_index(read_index(path), synthetic_index(seed=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.h5"]


WRITER = """
import sys, numpy as np
from app.hashing import Hasher
from app.index_store import CategoryLibrary, GalleryIndex, write_index
rng = np.random.default_rng(0)
n = 60000
emb = rng.standard_normal((n, 256)).astype(np.float32)
labels = rng.integers(0, 10, n).astype(np.int16)
hasher = Hasher.create(256, 256)
codes = hasher.hash(emb)
libs = [CategoryLibrary(np.flatnonzero(labels == c), codes[labels == c], emb[labels == c].astype(np.float16))
        for c in range(10)]
index = GalleryIndex(hasher, "cd" * 32, [str(c) for c in range(10)], libs, labels, labels,
                     images=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
print("writing", flush=True)
write_index(index, sys.argv[1])
"""


def test_killed_writer_leaves_the_old_file_intact(tmp_path):
    """SIGKILL in the middle of writing a 60,000-item index: the old file is untouched and readable."""
    path = write_index(synthetic_index(seed=3), tmp_path / "g.h5")
    before = path.read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        tmp = tmp_path / f".g.h5.tmp-{proc.pid}"
        deadline = time.monotonic() + 60
        while not (tmp.exists() and tmp.stat().st_size > 1_000_000) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert tmp.exists(), "the writer never got going"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    assert_same_index(read_index(path, model_sha256=SHA), synthetic_index(seed=3))
    with pytest.raises(IndexStoreError):  # the torn temp file is not a usable index
        read_index(tmp)
    # The next write clears the dead writer's leftover, but not a file a live process may be writing.
    alive = tmp_path / f".g.h5.tmp-{os.getppid()}"
    alive.write_bytes(b"in progress")
    write_index(synthetic_index(seed=5), path)
    assert not tmp.exists() and alive.exists()


@pytest.fixture()
def index_file(tmp_path) -> Path:
    return write_index(synthetic_index(seed=4), tmp_path / "g.h5")


def flip_chunk_bytes(path: Path, dataset: str) -> None:
    """Flip bytes inside one dataset's stored chunk, leaving the HDF5 structure intact."""
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info(0)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        chunk = bytearray(fh.read(8))
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(bytes(b ^ 0xFF for b in chunk))


@pytest.mark.parametrize("dataset", ["categories/3/embeddings", "categories/0/codes", "hasher/hyperplanes", "items/label"])
def test_flipped_bytes_fail_the_checksum(index_file, dataset):
    flip_chunk_bytes(index_file, dataset)
    with pytest.raises(IndexStoreError, match="corrupt or incomplete.*rebuild it with `python -m app index build"):
        read_index(index_file)


def test_truncated_file_is_refused(index_file):
    index_file.write_bytes(index_file.read_bytes()[: index_file.stat().st_size // 2])
    with pytest.raises(IndexStoreError, match="corrupt or incomplete"):
        read_index(index_file)


def test_not_an_hdf5_file_is_refused(tmp_path):
    (tmp_path / "x.h5").write_bytes(b"not an index at all")
    with pytest.raises(IndexStoreError, match="corrupt or incomplete"):
        read_index(tmp_path / "x.h5")


def test_missing_file_names_the_build_command(tmp_path):
    with pytest.raises(IndexStoreError, match="index not found.*python -m app index build"):
        read_index(tmp_path / "none.h5")


def test_wrong_format_version_is_refused(index_file):
    with h5py.File(index_file, "r+") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(IndexStoreError, match="format version 99 is not supported"):
        read_index(index_file)


def test_index_of_another_model_is_refused(index_file):
    assert read_index(index_file, model_sha256=SHA).model_sha256 == SHA
    with pytest.raises(IndexStoreError, match=f"built with model {SHA[:12]}.*model in use is {'ef' * 6}"):
        read_index(index_file, model_sha256="ef" * 32)


def replace(f: h5py.File, name: str, data: np.ndarray) -> None:
    del f[name]
    f.create_dataset(name, data=data, fletcher32=True, chunks=True)


@pytest.mark.parametrize("edit, says", [
    (lambda f: replace(f, "items/category", f["items/category"][:-1]), "differ in length"),
    (lambda f: replace(f, "categories/2/codes", f["categories/2/codes"][:, :-1]), "category 2: codes"),
    (lambda f: replace(f, "categories/5/ids", f["categories/5/ids"][()] + 10_000), "ids out of range"),
    (lambda f: replace(f, "hasher/center", f["hasher/center"][:-1]), "center has shape"),
    (lambda f: replace(f, "items/images", f["items/images"][:-3]), "images for"),
    (lambda f: replace(f, "categories/1/bucket_count", f["categories/1/bucket_count"][()] * 2), "bucket table"),
    (lambda f: f.attrs.__setitem__("bits", 64), "bits attribute 64 disagrees"),
])
def test_inconsistent_contents_are_refused(index_file, edit, says):
    with h5py.File(index_file, "r+") as f:
        edit(f)
    with pytest.raises(IndexStoreError, match=says):
        read_index(index_file)


def test_item_in_two_libraries_is_refused(index_file):
    with h5py.File(index_file, "r+") as f:
        ids = f["categories/4/ids"][()]
        ids[1] = ids[0]
        replace(f, "categories/4/ids", ids)
    with pytest.raises(IndexStoreError, match="exactly one category library"):
        read_index(index_file)


def test_verify_codes_detects_tampered_codes(index_file):
    index = read_index(index_file)
    verify_codes(index)
    lib = index.categories[7]
    tampered = CategoryLibrary(lib.ids, lib.codes.copy(), lib.embeddings, lib.bucket_prefix, lib.bucket_start,
                               lib.bucket_count)
    tampered.codes[: max(2, len(lib) // 10), 2:] ^= 0xFF  # prefixes (buckets) kept, the rest inverted
    index.categories[7] = tampered
    verify_structure(index)  # still well-formed: only the deep check can tell
    with pytest.raises(ValueError, match="category 7: .* codes do not match their embeddings"):
        verify_codes(index)


def test_an_item_listed_twice_is_refused():
    index = synthetic_index()
    lib = index.categories[4]
    lib.ids, lib.codes, lib.embeddings = (np.concatenate([a, a[:1]]) for a in (lib.ids, lib.codes, lib.embeddings))
    lib.bucket_count[-1] += 1
    with pytest.raises(ValueError, match="exactly one category library"):
        verify_structure(index)
