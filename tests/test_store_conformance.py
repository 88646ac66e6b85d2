"""Milvus stores behave as the HDF5 store does, against the real thing (a Milvus Lite file, the local Milvus server).

One history (a build, then adds and removes) is written to an HDF5 store and to each Milvus
store: the same ids, versions, next ids and digests come out, searches return the ids a
brute-force Hamming scan of the stored codes returns (ties by id, at the edge of the top n
too), snapshots never see a later version, a commit that dies leaves the old version, and a
store that cannot be used says why in one line. The command line and gunicorn run on it too.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from app.cli import main
from app.search import SearchEngine
from app.settings import ROOT, Settings, SettingsError
from app.stores import Hdf5Store, Manifest, NewItems, StoreError, open_store
from app.stores.milvus import MilvusStore
from bench.servers import free_port, running
from conftest import reachable_folder
from store_helpers import HAS_LITE, MILVUS_BACKENDS, item_hashes, new_store, use_backend
from test_gunicorn import GUNICORN, get_json

pytestmark = pytest.mark.milvus
if not MILVUS_BACKENDS:
    pytest.skip("Milvus is not installed (requirements-milvus.txt)", allow_module_level=True)

NAMES = tuple(f"class {c}" for c in range(10))
DIM, BITS, N = 32, 64, 3000  # 64-bit codes: many items share the edge distance of a top n, so ties are exercised


def manifest(name: str = "shop") -> Manifest:
    return Manifest(catalog=name, model_file="m.tflite", model_sha256="ab" * 32, class_names=NAMES, source="folder",
                    root="/srv/shop", bits=BITS, created="2026-11-01T12:00:00")


def clustered(n: int, seed: int, start: int = 0) -> NewItems:
    """Unit embeddings around one centre per category (so routing matters), paths named by position."""
    rng = np.random.default_rng(seed)
    cats = rng.integers(0, 10, n)
    centres = np.random.default_rng(99).standard_normal((10, DIM))
    emb = centres[cats] + 1.5 * rng.standard_normal((n, DIM))
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    return NewItems(emb, cats, np.where(rng.random(n) < 0.1, -1, cats), item_hashes(n, f"{seed}-"),
                    [f"item_{start + i}.jpg" for i in range(n)])


def history(store, snapshots: list) -> None:
    """Version 1: a build of N items; version 2: 50 added, 40 removed (the snapshot of each version kept)."""
    writer = store.rebuild(manifest(store.catalog), seed=3)
    writer.add(clustered(N, seed=1))
    writer.commit()
    snapshots.append(store.snapshot())
    writer = store.writer()
    writer.add(clustered(50, seed=2, start=N))
    writer.remove(list(range(0, 400, 10)))
    writer.commit()
    snapshots.append(store.snapshot())


@pytest.fixture(scope="module", params=MILVUS_BACKENDS)
def pair(request, tmp_path_factory):
    """(HDF5 snapshots, Milvus snapshots, Milvus store) of the same history, version 1 and version 2."""
    backend = use_backend(request, request.param)
    folder = tmp_path_factory.mktemp("conformance")
    reference, milvus = [], []
    history(Hdf5Store(folder / "shop"), reference)
    store = new_store(backend, "shop", folder)
    history(store, milvus)
    return reference, milvus, store


def brute_force(snapshot, code: np.ndarray, categories, n: int) -> tuple[list[int], list[int]]:
    """The n nearest live items per category by (Hamming distance, id), from the stored embeddings' codes."""
    ids, dists = [], []
    for c in [None] if categories is None else categories:
        held = snapshot.ids(c)
        codes = snapshot.hasher.hash(snapshot.items(held).embeddings)
        d = np.unpackbits(codes ^ code, axis=1).sum(1)
        order = np.lexsort((held, d))[:n]
        ids += held[order].tolist()
        dists += d[order].tolist()
    return ids, dists


def test_same_ids_versions_next_ids_and_digests_as_hdf5(pair):
    reference, milvus, _ = pair
    for a, b in zip(reference, milvus):
        assert (b.version, b.next_id, len(b), b.digest) == (a.version, a.next_id, len(a), a.digest)
        np.testing.assert_array_equal(b.counts(), a.counts())
        np.testing.assert_array_equal(b.ids(), a.ids())
        assert b.keys() == a.keys()
    assert [s.version for s in milvus] == [1, 2] and milvus[1].next_id == N + 50


@pytest.mark.parametrize("categories, n", [([4], 256), (None, 256), ([2, 7, 9], 60), ([5], 5)])
def test_candidates_are_the_brute_force_nearest_ties_by_id(pair, categories, n):
    reference, milvus, _ = pair
    snap = milvus[1]
    rng = np.random.default_rng(5)
    queries = np.concatenate([snap.items([500, 1234]).embeddings, clustered(4, seed=8).embeddings])
    for q in queries + 0.01 * rng.standard_normal(queries.shape).astype(np.float32):
        code = snap.hasher.hash(q)[0]
        got = snap.candidates(code, categories, n)
        ids, dists = brute_force(reference[1], code, categories, n)
        assert got.ids.tolist() == ids and got.hamming.tolist() == dists
        np.testing.assert_array_equal(got.ids, reference[1].candidates(code, categories, n).ids)
        np.testing.assert_array_equal(got.embeddings, reference[1].items(got.ids).embeddings)
        assert got.paths == reference[1].items(got.ids).paths


@pytest.mark.parametrize("mode", ["routed", "direct", "soft"])
def test_searches_give_the_same_hits_as_hdf5(pair, mode):
    reference, milvus, _ = pair
    engine = SearchEngine(candidates=256)
    queries = clustered(6, seed=11).embeddings
    probs = np.full((6, 10), 0.02, np.float32)
    probs[np.arange(6), np.arange(6)] = 0.5  # unsure: soft scans three libraries
    probs[np.arange(6), np.arange(6) + 1] = 0.3
    for q, p in zip(queries, probs):
        a = engine.search(reference[1], p, q, k=20, mode=mode)
        b = engine.search(milvus[1], p, q, k=20, mode=mode)
        assert [(h.id, h.hamming, h.path) for h in b.hits] == [(h.id, h.hamming, h.path) for h in a.hits]
        np.testing.assert_allclose([h.similarity for h in b.hits], [h.similarity for h in a.hits], atol=1e-6)
        assert b.searched == a.searched and b.version == 2


def test_changes_are_seen_at_once_and_an_old_snapshot_never_sees_them(pair):
    _, (v1, v2), _ = pair
    assert 0 not in v2 and N + 49 in v2 and 0 in v1 and N not in v1
    with pytest.raises(KeyError):
        v2.items([10])
    with pytest.raises(KeyError):
        v1.items([N])
    assert v1.items([10]).paths == ("item_10.jpg",) and v2.items([N]).paths == (f"item_{N}.jpg",)
    code = v1.hasher.hash(v1.items([10]).embeddings)[0]
    before = v1.candidates(code, None, 100)
    assert before.ids[0] == 10 and before.hamming[0] == 0  # version 1 still finds what version 2 removed
    assert 10 not in v2.candidates(code, None, 100).ids
    assert len(v1) == N and len(v2) == N + 10 and v1.keys()["item_10.jpg"][0] == 10 and "item_10.jpg" not in v2.keys()


def test_a_commit_that_dies_leaves_the_old_version_and_the_next_one_undoes_its_rows(pair, monkeypatch):
    _, (_, v2), store = pair
    store = MilvusStore(store.uri, store.catalog)
    writer = store.writer()
    writer.add(clustered(7, seed=21, start=9000))
    writer.remove([21, 22])

    def dies(*_args):
        raise RuntimeError("killed before the version record was written")

    with monkeypatch.context() as patch:
        patch.setattr(MilvusStore, "_publish", dies)
        with pytest.raises(RuntimeError):
            writer.commit()  # its rows are written, restamped and counted: only the record is missing
    again = store.snapshot()
    assert (again.version, again.digest, len(again)) == (2, v2.digest, N + 10) and 21 in again
    writer = store.writer()
    writer.remove([23])
    assert writer.commit() == 3
    v3 = store.verify()
    assert (len(v3), v3.next_id) == (N + 9, N + 50) and 21 in v3 and 23 not in v3
    assert v3.counts().sum() == len(v3.ids())


def test_unusable_stores_fail_with_one_line(pair, tmp_path):
    _, _, store = pair
    messages = []
    for uri, catalog, says in [
        (store.uri, "photos", "catalog photos: no store in .* \\(it holds shop\\); build it with"),
        (f"milvus-lite:{tmp_path}/missing/x.db", "shop", "the folder .* does not exist"),
    ] + [(f"milvus://127.0.0.1:{free_port()}", "shop", "no Milvus server answers at 127.0.0.1")] * (
            store.where.kind == "milvus"):  # once: a server that is not there costs the 5 s connection timeout
        with pytest.raises(StoreError, match=says) as info:
            open_store(uri, catalog).snapshot()
        messages.append(str(info.value))
    for uri in ("milvus://host-without-port", "milvus-lite:x.sqlite", "milvus://h:1/bad-prefix"):
        with pytest.raises(ValueError, match="milvus"):
            open_store(uri, "shop")
    assert all("\n" not in m and len(m) < 300 for m in messages)


@pytest.mark.skipif(not HAS_LITE, reason="Milvus Lite is not installed")
def test_a_lite_file_held_by_another_process_is_refused_in_one_line(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from app.stores import open_store; "
                               "open_store(sys.argv[1], 'shop').exists(); print('open', flush=True); time.sleep(60)",
                               f"milvus-lite:{tmp_path}/held.db"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreError, match="another process holds it .* serve from a Milvus server"):
            open_store(f"milvus-lite:{tmp_path}/held.db", "shop").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_lite_file_is_served_by_one_worker():
    stores = {"FASHION16_STORES": "photos=milvus-lite:/srv/photos.db"}
    assert Settings.from_env(stores).workers == 1
    with pytest.raises(SettingsError, match="FASHION16_WORKERS=3: catalog photos's Milvus Lite file is held by one"):
        Settings.from_env({**stores, "FASHION16_WORKERS": "3"})
    assert Settings.from_env({"FASHION16_STORES": "photos=milvus://db:19530", "FASHION16_WORKERS": "3"}).workers == 3


# ---------------------------------------------------------------- the command line and gunicorn on Milvus

@pytest.fixture(scope="module")
def migrated(request, store_dir, tmp_path_factory):
    """The session's small Fashion-MNIST store copied into the last Milvus backend, by `index migrate`."""
    backend = use_backend(request, MILVUS_BACKENDS[-1])
    uri = new_store(backend, "fashion-mnist", tmp_path_factory.mktemp("migrated")).uri
    assert main(["index", "migrate", "--from", str(store_dir / "fashion-mnist"), "--to", uri]) == 0
    return uri


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_line_works_on_a_milvus_store(migrated, store_dir, tmp_path, capsys, monkeypatch, query_png):
    monkeypatch.setenv("FASHION16_STORE_DIR", str(store_dir))
    code, out, _ = cli(capsys, "index", "verify", "--catalog", "fashion-mnist", "--store", migrated)
    assert code == 0 and "OK (catalog fashion-mnist version 1, 2000 items" in out
    (tmp_path / "q.png").write_bytes(query_png)
    searches = [json.loads(cli(capsys, "search", tmp_path / "q.png", "--catalog", "fashion-mnist", "--json",
                               *extra)[1]) for extra in ([], ["--store", migrated])]
    assert [r["id"] for r in searches[1]["results"]] == [r["id"] for r in searches[0]["results"]]
    code, out, err = cli(capsys, "index", "migrate", "--from", store_dir / "fashion-mnist", "--to", migrated)
    assert code == 2 and err.startswith("error: ") and "copies into an empty store only" in err and err.count("\n") == 1
    code, out, err = cli(capsys, "index", "info", "--catalog", "photos", "--store", migrated)
    assert code == 2 and "no store in" in err and "(it holds fashion-mnist)" in err


@pytest.mark.skipif("milvus" not in MILVUS_BACKENDS, reason="the milvus package (local server) is not installed")
def test_gunicorn_workers_share_a_milvus_server_and_follow_its_versions(migrated, tmp_path, query_png):
    """Two workers serve the catalog from the server: the same answers as from HDF5, and a removal is seen by both."""
    from bench.load import multipart

    env = {"FASHION16_STORES": f"fashion-mnist={migrated}", "FASHION16_CATALOGS": "fashion-mnist",
           "FASHION16_DEFAULT_CATALOG": "fashion-mnist", "FASHION16_WORKERS": "2", "FASHION16_THREADS": "1",
           "FASHION16_RELOAD_SECONDS": "0.2", "FASHION16_RESULTS": "0", "FASHION16_STORE_DIR": str(reachable_folder("milvus-serving"))}
    body = multipart([("k", "10")], [("image", "q.png", "image/png", query_png)])
    with running(GUNICORN, env, tmp_path / "gunicorn.log") as server:
        first = get_json(server.url + "/api/search", *body)
        top = first["results"][0]["id"]
        writer = open_store(migrated, "fashion-mnist").writer()
        writer.remove([top])
        assert writer.commit() == 2
        deadline, answers = time.monotonic() + 30, []
        while time.monotonic() < deadline and [a["catalog_version"] for a in answers[-8:]] != [2] * 8:
            answers.append(get_json(server.url + "/api/search", *body))
    log = (tmp_path / "gunicorn.log").read_text()
    assert log.count(f"catalog fashion-mnist version 1, 2,000 items: {migrated}: Milvus server") == 2
    assert first["catalog_version"] == 1 and [a["catalog_version"] for a in answers[-8:]] == [2] * 8
    assert all(top not in [r["id"] for r in a["results"]] for a in answers[-8:])
    assert [r["id"] for r in answers[-1]["results"]][:9] == [r["id"] for r in first["results"]][1:]


@pytest.mark.skipif(not HAS_LITE, reason="Milvus Lite is not installed")
def test_a_shop_is_built_added_to_and_removed_from_in_a_lite_file(capsys, monkeypatch, tmp_path, test_photos):
    """The indexer's own paths on Milvus: unchanged photos keep their ids, new ones are added, paths removed."""
    from test_cli import make_shop

    shop, uri = tmp_path / "shop", f"milvus-lite:{tmp_path / 'shop.db'}"
    make_shop(shop, test_photos, {"Shoes": 6, "Dress": 0})
    monkeypatch.setenv("FASHION16_STORE_DIR", str(tmp_path / "stores"))
    store = ["--catalog", "shop", "--store", uri]
    assert cli(capsys, "index", "build", *store, "--gallery", shop)[0] == 0
    make_shop(shop, test_photos, {"Hat": 1}, per=2)
    code, out, err = cli(capsys, "index", "add", *store, shop)
    assert code == 0 and "version 2, 8 items: 2 added, 0 removed, 6 unchanged (ids kept)" in out, err
    hat = sorted((shop / "Hat").iterdir())[0]
    first = json.loads(cli(capsys, "search", hat, *store, "--json", "--k", 1)[1])["results"][0]
    assert first["path"] == f"Hat/{hat.name}" and first["similarity"] >= 0.99 and first["id"] in (6, 7)
    code, out, _ = cli(capsys, "index", "remove", *store, "1", shop / "Hat")
    assert code == 0 and "version 3, 5 items: 0 added, 3 removed" in out
    code, _, err = cli(capsys, "index", "compact", *store)
    assert code == 2 and err == f"error: {uri} compacts itself; nothing to do\n"
    code, out, _ = cli(capsys, "index", "verify", *store)
    assert code == 0 and "version 3, 5 items" in out


@pytest.mark.skipif(not HAS_LITE, reason="Milvus Lite is not installed")
def test_gunicorn_serves_a_lite_file_with_one_worker_and_says_so(store_dir, tmp_path, query_png):
    folder = reachable_folder("milvus-lite")
    uri = f"milvus-lite:{folder / 'stores.db'}"
    # a process of its own, as a user runs it: a Lite file is held by the process that opened it until it exits
    subprocess.run([sys.executable, "-m", "app", "index", "migrate", "--from", str(store_dir / "fashion-mnist"),
                    "--to", uri], cwd=ROOT, check=True, capture_output=True, timeout=300)
    env = {"FASHION16_STORES": f"fashion-mnist={uri}", "FASHION16_CATALOGS": "fashion-mnist",
           "FASHION16_DEFAULT_CATALOG": "fashion-mnist", "FASHION16_RESULTS": "0", "FASHION16_STORE_DIR": str(folder)}
    from bench.load import multipart

    with running(GUNICORN, env, tmp_path / "gunicorn.log") as server:  # FASHION16_WORKERS unset: one, for Lite
        answer = get_json(server.url + "/api/search", *multipart([("k", "5")], [("image", "q.png", "image/png",
                                                                                 query_png)]))
    log = (tmp_path / "gunicorn.log").read_text()
    assert log.count("Booting worker") == 1 and len(answer["results"]) == 5
    assert f"catalog fashion-mnist version 1, 2,000 items: {uri}: Milvus Lite file, held by this one process" in log
