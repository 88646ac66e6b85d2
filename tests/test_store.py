"""Catalog stores, on every backend: ids that never shift, versions, atomic changes, and stores that cannot lie."""
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

from app.hashing import Hasher
from app.settings import ROOT
from app.stores import Hdf5Store, Manifest, NewItems, StoreError, check_name, memory_store
from app.stores.arrays import Part, check_codes, check_part
from store_helpers import BACKENDS, item_hashes, new_store, use_backend

SHA = "ab" * 32
NAMES = tuple(f"class {c}" for c in range(10))


def manifest(name: str = "shop", images: bool = False, bits: int = 128) -> Manifest:
    return Manifest(catalog=name, model_file="m.tflite", model_sha256=SHA, class_names=NAMES,
                    source="fashion-mnist" if images else "folder", root=None if images else "/srv/catalog",
                    bits=bits, created="2026-11-01T12:00:00", build={"note": "test"})


def items(n: int = 200, dim: int = 32, seed: int = 0, images: bool = False, start: int = 0) -> NewItems:
    """Unit embeddings in 10 categories, some labels unknown; images or relative paths per item."""
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    category = rng.integers(0, 10, n)
    labels = np.where(rng.random(n) < 0.2, -1, category)
    return NewItems(emb, category, labels, item_hashes(n, f"{seed}-"), [f"shop/item_{start + i}.jpg" for i in range(n)],
                    rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) if images else None)


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return use_backend(request, request.param)


def filled(backend: str, tmp_path: Path, n: int = 200, images: bool = False, name: str = "shop", seed: int = 0):
    store = new_store(backend, name, tmp_path)
    writer = store.rebuild(manifest(name, images), seed=seed)
    writer.add(items(n, images=images, seed=seed))
    writer.commit()
    return store


@pytest.mark.parametrize("images", [False, True])
def test_round_trip_keeps_every_field(backend, tmp_path, images):
    given = items(images=images)
    store = filled(backend, tmp_path, images=images)
    snap = store.snapshot()
    assert (snap.version, len(snap), snap.next_id, snap.stores_images) == (1, 200, 200, images)
    assert snap.manifest.build == {"note": "test"} and snap.manifest.embedding_dim == 32
    got = snap.items(np.arange(200))
    np.testing.assert_array_equal(got.ids, np.arange(200))
    np.testing.assert_array_equal(got.categories, given.categories)
    np.testing.assert_array_equal(got.labels, given.labels)
    np.testing.assert_array_equal(got.embeddings, given.embeddings.astype(np.float16).astype(np.float32))
    assert got.hashes == tuple(given.hashes) and got.paths == tuple(given.paths)
    if images:
        np.testing.assert_array_equal(snap.image(17), given.images[17])
    else:
        with pytest.raises(KeyError):
            snap.image(17)
    np.testing.assert_array_equal(snap.counts(), np.bincount(given.categories, minlength=10))
    for c in range(10):
        np.testing.assert_array_equal(snap.ids(c), np.flatnonzero(given.categories == c))
    assert snap.keys()["shop/item_5.jpg"] == (5, given.hashes[5])
    with pytest.raises(KeyError):
        snap.items([200])
    if hasattr(snap, "parts"):
        check_codes(snap.parts, snap.hasher, sample=0)  # stored codes are exactly the hash of stored embeddings
    else:
        assert store.verify().digest == snap.digest  # Milvus: every item read back, its code re-hashed


def test_hdf5_embeddings_are_memory_mapped_and_the_same_across_reopens(tmp_path):
    store = filled("hdf5", tmp_path)
    a, b = store.snapshot(), Hdf5Store(store.folder).snapshot()
    assert isinstance(a.parts[0].embeddings, np.memmap)
    assert a.digest == b.digest and a.version == b.version == 1


def test_ids_are_never_reused_and_untouched_items_keep_ids_and_results(backend, tmp_path):
    store = filled(backend, tmp_path)
    before = store.snapshot()
    query = before.items([10]).embeddings[0]
    code = before.hasher.hash(query)[0]
    old = before.candidates(code, None, 200)
    writer = store.writer()
    new_ids = writer.add(items(5, seed=7, start=1000))
    writer.remove([3, 10, 11])
    assert writer.commit() == 2
    assert list(new_ids) == [200, 201, 202, 203, 204]
    after = store.snapshot()
    assert len(after) == 202 and after.next_id == 205 and 10 not in after and 203 in after
    assert before.version == 1 and len(before) == 200 and 10 in before  # an opened snapshot never changes
    untouched = [i for i in range(200) if i not in (3, 10, 11)]
    a, b = before.items(untouched), after.items(untouched)
    np.testing.assert_array_equal(a.embeddings, b.embeddings)
    assert a.hashes == b.hashes and a.paths == b.paths
    new = after.candidates(code, None, 205)  # the whole catalog, nearest first: old order with the changes applied
    kept = [i for i, d in zip(old.ids, old.hamming) if i not in (3, 10, 11)]
    assert [i for i in new.ids if i < 200] == kept
    writer = store.writer()
    writer.remove([200, 201])
    writer.commit()
    writer = store.writer()
    assert list(writer.add(items(2, seed=8, start=2000))) == [205, 206]  # removed ids are not given again
    writer.commit()
    assert store.snapshot().version == 4


def test_a_rebuild_keeps_given_ids_and_never_lowers_next_id(backend, tmp_path):
    store = filled(backend, tmp_path)
    writer = store.rebuild(manifest())
    again = items(50)
    again.ids = np.arange(50) * 2
    writer.add(again)
    fresh = writer.add(items(3, seed=9))
    writer.commit()
    snap = store.snapshot()
    assert list(fresh) == [200, 201, 202] and snap.next_id == 203 and snap.version == 2
    np.testing.assert_array_equal(snap.ids(), np.sort(np.concatenate([np.arange(50) * 2, fresh])))


def test_bad_changes_are_refused_before_anything_is_written(backend, tmp_path):
    store = filled(backend, tmp_path)
    writer = store.writer()
    with pytest.raises(ValueError, match="embeddings must be"):
        writer.add(NewItems(np.zeros((2, 5), np.float32), [0, 1], [0, 1], item_hashes(2), ["a.jpg", "b.jpg"]))
    with pytest.raises(ValueError, match="inside the catalog folder"):
        writer.add(NewItems(np.ones((1, 32), np.float32), [0], [0], item_hashes(1), ["../../etc/passwd"]))
    with pytest.raises(ValueError, match="categories must be"):
        writer.add(NewItems(np.ones((1, 32), np.float32), [10], [0], item_hashes(1), ["a.jpg"]))
    with pytest.raises(KeyError):
        writer.remove([999])
    writer.abort()
    assert store.snapshot().version == 1


def test_hdf5_deltas_compact_into_one_base_and_old_segments_go(tmp_path):
    store = filled("hdf5", tmp_path)
    writer = store.writer()
    writer.add(items(10, seed=3, start=500))
    writer.remove([0, 1])
    writer.commit()
    before = store.snapshot()
    assert [Path(p).name for p in sorted(store.folder.glob("v*.h5"))] == ["v000001-base.h5", "v000002-delta.h5"]
    assert store.compact() == 3
    after = store.snapshot()
    assert len(after.parts) == 1 and after.next_id == before.next_id
    np.testing.assert_array_equal(after.ids(), before.ids())
    code = before.hasher.hash(before.items([50]).embeddings)[0]
    np.testing.assert_array_equal(after.candidates(code, [2, 5], 30).ids, before.candidates(code, [2, 5], 30).ids)
    writer = store.writer()  # the next commit removes segments neither it nor the one before uses
    writer.remove([50])
    writer.commit()
    assert sorted(p.name for p in store.folder.glob("v*.h5")) == ["v000003-base.h5", "v000004-delta.h5"]


def test_one_writer_at_a_time(tmp_path):
    store = filled("hdf5", tmp_path)
    first = store.writer()
    other = Hdf5Store(store.folder)
    other.lock_wait = 0.3
    with pytest.raises(StoreError, match="being changed by another writer"):
        other.writer()
    first.abort()
    other.writer().abort()


KILLED = """
import sys, time
sys.path.insert(0, sys.argv[2]); sys.path.insert(0, sys.argv[2] + "/tests")
import app.stores.hdf5 as hdf5
from test_store import items
real = hdf5.write_atomically

def paused(path, data, on_written=None):
    def pause():
        print("written", flush=True)
        time.sleep(600)
    return real(path, data, pause)

hdf5.write_atomically = paused
store = hdf5.Hdf5Store(sys.argv[1])
writer = store.writer()
writer.add(items(50, seed=11, start=900))
writer.commit()
"""


def test_a_killed_writer_leaves_the_old_version_whole(tmp_path):
    """SIGKILL with the new segment on disk and the new manifest written but not yet named: version 1 stays."""
    store = filled("hdf5", tmp_path)
    before = store.snapshot()
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(store.folder), str(ROOT)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "written"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    after = Hdf5Store(store.folder).snapshot()
    assert after.version == 1 and after.digest == before.digest and len(after) == 200
    writer = Hdf5Store(store.folder).writer()  # the lock died with the writer; leftovers are cleared
    writer.remove([0])
    writer.commit()
    leftovers = [p.name for p in store.folder.iterdir() if p.name.startswith(".") and p.name != ".lock"]
    assert leftovers == [] and Hdf5Store(store.folder).snapshot().version == 2


# ---------------------------------------------------------------- stores that cannot lie

@pytest.fixture()
def shop(tmp_path) -> Hdf5Store:
    return filled("hdf5", tmp_path, images=True)


def segment(store: Hdf5Store) -> Path:
    return sorted(store.folder.glob("v*.h5"))[-1]


def refused(store: Hdf5Store, says: str) -> str:
    with pytest.raises(StoreError, match=says) as info:
        Hdf5Store(store.folder, store.catalog).snapshot()
    message = str(info.value)
    assert "\n" not in message and "python -m app index build --catalog" in message  # one line naming the fix
    return message


@pytest.mark.parametrize("column", ["items/id", "items/embedding", "items/category", "items/code", "items/path",
                                    "items/hash", "items/image"])
def test_an_edited_column_is_refused(shop, column):
    """Reversing any column with h5py (a valid file, every HDF5 check passing) is caught by the digest."""
    with h5py.File(segment(shop), "r+") as f:
        f[column][...] = f[column][()][::-1]
    refused(shop, "does not match the digest")


def test_flipped_bytes_are_refused(shop):
    path = segment(shop)
    with h5py.File(path, "r") as f:
        offset = f["items/embedding"].id.get_offset()
    with open(path, "r+b") as fh:
        fh.seek(offset + 1000)
        fh.write(b"\x00\xff\x00\xff")
    refused(shop, "does not match the digest")


def test_an_edited_manifest_is_refused(shop):
    record = json.loads((shop.folder / "manifest.json").read_text())
    record["manifest"]["class_names"][3] = "Handbag"
    (shop.folder / "manifest.json").write_text(json.dumps(record))
    refused(shop, "whole-content digest does not match")


def test_a_store_copied_under_another_catalog_name_is_refused(tmp_path):
    """fashion-mnist's store copied over photos' is not served as photos."""
    filled("hdf5", tmp_path, name="fashion-mnist", images=True)
    os.rename(tmp_path / "fashion-mnist", tmp_path / "photos")
    message = refused(Hdf5Store(tmp_path / "photos"), "holds catalog 'fashion-mnist', not 'photos'")
    assert "--catalog photos" in message


def test_a_segment_of_another_catalog_is_refused(tmp_path):
    a, b = filled("hdf5", tmp_path, name="a"), filled("hdf5", tmp_path, name="b", seed=1)
    segment(b).replace(a.folder / segment(b).name)
    refused(a, "belongs to catalog 'b'")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "missing-manifest", "old-format"])
def test_damaged_stores_are_refused(shop, damage):
    path = segment(shop)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        refused(shop, "damaged or incomplete")
    elif damage == "garbage":
        path.write_bytes(b"not a store at all")
        refused(shop, "damaged or incomplete")
    elif damage == "missing-manifest":
        (shop.folder / "manifest.json").unlink()
        refused(shop, "no store at")
    else:
        record = json.loads((shop.folder / "manifest.json").read_text())
        record["format"] = 2
        (shop.folder / "manifest.json").write_text(json.dumps(record))
        refused(shop, "not a format-3 store manifest")


def test_codes_that_do_not_match_embeddings_are_caught():
    snap = memory_store(manifest(), items())
    part = snap.parts[0]
    check_codes([part], snap.hasher, sample=0)
    bad = Part(**{**part.__dict__, "codes": part.codes ^ 0xFF})
    with pytest.raises(ValueError, match="codes do not match their embeddings"):
        check_codes([bad], snap.hasher, sample=0)


@pytest.mark.parametrize("edit, says", [
    (lambda p: {"categories": p.categories + 10}, "category that does not exist"),
    (lambda p: {"labels": p.labels - 5}, "label that does not exist"),
    (lambda p: {"ids": np.zeros_like(p.ids)}, "ids are not unique"),
    (lambda p: {"codes": p.codes[:, :-1]}, "items/code has shape"),
    (lambda p: {"paths": np.array([b"../../etc/passwd"] + list(p.paths[1:]))}, "leaves the catalog folder"),
])
def test_inconsistent_parts_are_refused(edit, says):
    snap = memory_store(manifest(), items())
    part = snap.parts[0]
    with pytest.raises(ValueError, match=says):
        check_part(Part(**{**part.__dict__, **edit(part)}), snap.manifest, snap.hasher)


@pytest.mark.parametrize("name", ["../../tmp/x", "a_b", "Shop", "-shop", "shop-", "", "a" * 41, "shop/x", "ünï"])
def test_catalog_names_follow_one_rule(name):
    with pytest.raises(ValueError, match="catalog names are 1-40 lower-case letters"):
        check_name(name)


@pytest.mark.parametrize("name", ["a", "fashion-mnist", "shop-2", "a" * 40])
def test_good_catalog_names_are_their_own_folder_names(name, tmp_path):
    assert check_name(name) == name
    assert Hdf5Store(tmp_path / name).catalog == name


def test_hasher_codes_come_from_float16_rounded_embeddings():
    hasher = Hasher.create(16, 64, seed=1)
    x = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    np.testing.assert_array_equal(hasher.hash(x), hasher.hash(x.astype(np.float16)))
