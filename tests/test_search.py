"""Routed, direct and soft search on small real catalogs whose right answers are known.

The catalog is 30 real training images per class embedded by the real model; planted
near-duplicates of a query (its own embedding plus known noise) give answers whose order
is fixed by construction. Every engine here scans at least as many Hamming candidates
as a library holds, so its ranking must equal exact cosine over the scanned libraries.
"""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from app.catalog import Catalog, check_model
from app.schema import result_json
from app.search import MAX_K, SearchEngine, SoftRouting
from app.stores import Manifest, NewItems, StoreError
from store_helpers import BACKENDS, catalog_of, item_hashes, new_store, use_backend

PER_CLASS = 30
NOISE = (0.05, 0.1, 0.2, 0.3)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, "PNG")
    return out.getvalue()


def outputs(model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, embeddings) of catalog-style images through the real model."""
    return model(np.stack([model.prepare(x) for x in images]))


@pytest.fixture(scope="module")
def gallery(fashion_model, fmnist):
    """(images, labels, embeddings) of the first PER_CLASS training images of each class."""
    ids = np.concatenate([np.flatnonzero(fmnist.y_train == c)[:PER_CLASS] for c in range(10)])
    images, labels = fmnist.x_train[ids], fmnist.y_train[ids].astype(np.int16)
    return images, labels, outputs(fashion_model, images)[1]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request) -> str:
    """Every search test runs on every store backend: the engine must not care which."""
    return use_backend(request, request.param)


def open_catalog(model, tmp_path_factory, emb, labels, category, images=None, engine: str = "auto",
                 candidates: int = 512, soft: SoftRouting = SoftRouting(), backend: str = "hdf5") -> Catalog:
    """Through a real store (an HDF5 folder by default), as the app does."""
    store = new_store(backend, "test", tmp_path_factory.mktemp("store"), engine=engine)
    return catalog_of(model, store, emb, labels, category, images, candidates, soft)


@pytest.fixture(scope="module")
def small(fashion_model, gallery, tmp_path_factory, backend) -> Catalog:
    images, labels, emb = gallery
    return open_catalog(fashion_model, tmp_path_factory, emb, labels, labels, images, backend=backend)


def exact_ranking(catalog: Catalog, emb: np.ndarray, categories: list[int], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, similarities) of the exact-cosine top k over the given libraries, from the stored float16."""
    snap = catalog.snapshot
    ids = np.concatenate([snap.ids(c) for c in categories])
    sims = np.clip(snap.items(ids).embeddings @ emb, 0, 1)
    top = np.argsort(-sims, kind="stable")[:k]
    return ids[top], sims[top]


def check_ranked(result, k: int) -> None:
    sims = np.array([h.similarity for h in result.hits])
    assert len(sims) <= k
    assert np.all((sims >= 0) & (sims <= 1))
    assert np.all(np.diff(sims) <= 0), "hits must be sorted by similarity, best first"


@pytest.mark.parametrize("mode", ["routed", "direct", "soft"])
def test_gallery_image_finds_itself_first(small, gallery, mode):
    images, labels, _ = gallery
    probs, _ = outputs(small.model, images)
    routable = np.flatnonzero(probs.argmax(1) == labels)  # routed search must reach their library
    for i in routable[:: len(routable) // 8][:8]:
        result = small.search(images[i], k=5, mode=mode)
        top = result.hits[0]
        assert (top.id, top.hamming, top.category, top.label) == (i, 0, labels[i], labels[i])
        assert top.similarity > 0.999
        check_ranked(result, 5)


def test_png_upload_of_a_catalog_item_finds_it_in_the_small_catalog(catalogs, fmnist):
    catalog = catalogs["fashion-mnist"]
    probs, _ = outputs(catalog.model, fmnist.x_train[:50])
    i = int(np.flatnonzero(probs.argmax(1) == fmnist.y_train[:50])[0])
    from_bytes = catalog.search(png(fmnist.x_train[i]), k=10)
    from_array = catalog.search(fmnist.x_train[i], k=10)
    assert from_bytes.hits[0].id == i and from_bytes.hits[0].similarity > 0.999
    assert [h.id for h in from_bytes.hits] == [h.id for h in from_array.hits]


def test_routed_scans_only_the_predicted_library_and_direct_scans_all(small, fmnist):
    query = fmnist.x_test[0]
    routed = small.search(query, k=MAX_K, mode="routed")
    assert routed.searched == [routed.category]
    assert len(routed.hits) == PER_CLASS and {h.category for h in routed.hits} == {routed.category}
    direct = small.search(query, k=MAX_K, mode="direct")
    assert direct.searched == list(range(10)) and len(direct.hits) == MAX_K
    assert len({h.category for h in direct.hits}) >= MAX_K // PER_CLASS + 1  # 100 hits cannot fit in 3 libraries
    for result in (routed, direct):
        check_ranked(result, MAX_K)


@pytest.mark.parametrize("mode", ["routed", "direct", "soft"])
def test_ranking_equals_exact_cosine_over_the_scanned_libraries(small, fmnist, mode):
    for query in fmnist.x_test[:6]:
        result = small.search(query, k=20, mode=mode)
        emb = small.model.forward_one(query.astype(np.float32)[..., None])[1]
        # soft answers from the one scanned library its evidence picks; the others rank everything scanned
        answered = [result.hits[0].category] if mode == "soft" else result.searched
        assert set(answered) <= set(result.searched)
        ids, sims = exact_ranking(small, emb, answered, 20)
        np.testing.assert_allclose([h.similarity for h in result.hits], sims, atol=1e-6)
        assert set(h.id for h in result.hits) == set(ids)


@pytest.fixture(scope="module")
def planted(fashion_model, gallery, fmnist, tmp_path_factory, backend):
    """A test image, its predicted class c, and a gallery with its near-duplicates filed under c
    (noise levels NOISE) plus a closer decoy filed under another class."""
    _images, labels, emb = gallery
    probs, q_emb = outputs(fashion_model, fmnist.x_test[:200])
    far = np.max(q_emb @ emb.T, axis=1) < 0.95  # no real gallery item competes with the planted ones
    q = int(np.flatnonzero(far)[0])
    c = int(probs[q].argmax())
    rng = np.random.default_rng(0)
    noise = unit(rng.standard_normal((len(NOISE) + 1, emb.shape[1])))
    copies = unit(q_emb[q] + np.array([*NOISE, 0.02])[:, None] * noise)
    decoy_class = (c + 1) % 10
    all_labels = np.concatenate([labels, [c] * len(NOISE) + [decoy_class]]).astype(np.int16)
    catalog = open_catalog(fashion_model, tmp_path_factory, np.concatenate([emb, copies]).astype(np.float32),
                           all_labels, all_labels, backend=backend)
    planted_ids = list(range(len(labels), len(labels) + len(NOISE)))
    return catalog, fmnist.x_test[q], c, planted_ids, len(labels) + len(NOISE)


def test_planted_near_duplicates_come_first_in_noise_order(planted):
    searcher, query, c, planted_ids, decoy = planted
    routed = searcher.search(query, k=10, mode="routed")
    assert routed.category == c
    assert [h.id for h in routed.hits[: len(NOISE)]] == planted_ids
    assert decoy not in [h.id for h in routed.hits], "routed search must not leave the predicted library"
    direct = searcher.search(query, k=10, mode="direct")
    assert [h.id for h in direct.hits[: len(NOISE) + 1]] == [decoy, *planted_ids]
    expected = [1 / np.sqrt(1 + 0.02 ** 2)] + [1 / np.sqrt(1 + s * s) for s in NOISE]
    np.testing.assert_allclose([h.similarity for h in direct.hits[:5]], expected, atol=0.01)


def expected_soft(probs: np.ndarray, soft: SoftRouting) -> list[int]:
    order = [int(c) for c in np.argsort(-probs, kind="stable")]
    if probs[order[0]] >= soft.threshold:
        return order[:1]
    return [c for c in order[:soft.max_categories] if probs[c] >= soft.min_probability]


def test_soft_scans_more_libraries_only_when_unsure(small, fmnist):
    probs, _ = outputs(small.model, fmnist.x_test[:300])
    # a threshold between this model's sure and unsure answers, whatever its calibration
    soft = SoftRouting(threshold=float(np.median(probs.max(1))))
    small.engine = SearchEngine(candidates=512, soft=soft)
    sure = int(np.flatnonzero(probs.max(1) >= soft.threshold)[0])
    unsure = int(np.flatnonzero(probs.max(1) < 0.6)[0])
    result = small.search(fmnist.x_test[sure], k=20, mode="soft")
    assert result.searched == [int(probs[sure].argmax())]
    result = small.search(fmnist.x_test[unsure], k=20, mode="soft")
    assert 1 < len(result.searched) <= soft.max_categories
    assert result.searched == expected_soft(result.probabilities, soft)
    assert len({h.category for h in result.hits}) == 1 and result.hits[0].category in result.searched
    check_ranked(result, 20)
    small.engine = SearchEngine(candidates=512)


def test_soft_follows_a_near_identical_item_into_the_runner_up_library(fashion_model, gallery, fmnist,
                                                                       tmp_path_factory, backend):
    """An unsure query whose exact twin is filed under its second-likeliest category: routed
    search stays in the top category, soft search weighs the twin's evidence and answers from
    the runner-up's library, with the twin first."""
    _images, labels, emb = gallery
    probs, q_emb = outputs(fashion_model, fmnist.x_test[:500])
    top2 = np.sort(probs, axis=1)[:, -2:]
    best_in_top = np.array([(emb[labels == c] @ e).max() for c, e in zip(probs.argmax(1), q_emb)])
    # unsure, and no item of the top category so close that a twin could not outweigh it
    q = int(np.flatnonzero((top2[:, 1] < 0.9) & (top2[:, 0] > 0.1) & (best_in_top < 0.95))[0])
    runner_up = int(np.argsort(-probs[q])[1])
    all_emb = np.concatenate([emb, q_emb[q:q + 1]]).astype(np.float32)
    all_labels = np.concatenate([labels, [runner_up]]).astype(np.int16)
    catalog = open_catalog(fashion_model, tmp_path_factory, all_emb, all_labels, all_labels, backend=backend)
    twin = len(labels)
    routed = catalog.search(fmnist.x_test[q], k=5, mode="routed")
    assert twin not in [h.id for h in routed.hits] and routed.hits[0].category == int(probs[q].argmax())
    soft = catalog.search(fmnist.x_test[q], k=5, mode="soft")
    assert runner_up in soft.searched
    assert soft.hits[0].id == twin and {h.category for h in soft.hits} == {runner_up}


@pytest.mark.parametrize("k", [1, 7, 20, MAX_K])
def test_k_is_respected(small, fmnist, k):
    result = small.search(fmnist.x_test[1], k=k, mode="direct")
    assert len(result.hits) == k
    check_ranked(result, k)


@pytest.mark.parametrize("k, mode", [(0, "routed"), (-3, "direct"), (MAX_K + 1, "soft"), (10, "fast"), (10, "")])
def test_bad_k_or_mode_is_a_value_error(small, fmnist, k, mode):
    with pytest.raises(ValueError, match="k must be|mode must be"):
        small.search(fmnist.x_test[0], k=k, mode=mode)


def test_few_hamming_candidates_still_give_k_reranked_hits(fashion_model, gallery, tmp_path_factory, backend):
    images, labels, emb = gallery
    tight = open_catalog(fashion_model, tmp_path_factory, emb, labels, labels, images, candidates=5, backend=backend)
    result = tight.search(images[0], k=3, mode="direct")
    assert len(result.hits) == 3 and result.hits[0].id == 0
    check_ranked(result, 3)


def test_numpy_and_faiss_scanners_give_the_same_hits(fashion_model, gallery, tmp_path_factory, fmnist):
    images, labels, emb = gallery
    engines = [open_catalog(fashion_model, tmp_path_factory, emb, labels, labels, images, engine=e, candidates=40)
               for e in ("numpy", "faiss")]
    assert [s.snapshot.scan_engine for s in engines] == ["numpy", "faiss"]
    for query in fmnist.x_test[:5]:
        a, b = (s.search(query, k=20, mode="direct") for s in engines)
        assert [(h.similarity, h.hamming) for h in a.hits] == [(h.similarity, h.hamming) for h in b.hits]


def test_result_json_has_names_and_urls(small, fmnist):
    result = small.search(fmnist.x_test[2], k=4, mode="soft")
    payload = json.loads(json.dumps(result_json(small, result, image_url=lambda hit: f"/img/{hit.id}")))
    assert payload["catalog"] == "test" and payload["catalog_version"] == small.version == 1
    assert payload["mode"] == "soft" and len(payload["results"]) == 4
    assert payload["category"]["name"] == small.class_names[result.category]
    assert [r["id"] for r in payload["results"]] == [h.id for h in result.hits]
    assert payload["results"][0]["image_url"] == f"/img/{result.hits[0].id}"
    assert payload["searched_categories"] == [small.class_names[c] for c in result.searched]
    assert set(payload["timings_ms"]) >= {"decode", "preprocess", "forward", "scan", "rerank", "total"}


def test_store_of_another_model_is_refused(fashion_model, gallery, tmp_path, backend):
    images, labels, emb = gallery
    store = new_store(backend, "x", tmp_path)
    manifest = Manifest(catalog="x", model_file=fashion_model.path.name, model_sha256="0" * 64,
                        class_names=fashion_model.class_names, source="fashion-mnist")
    writer = store.rebuild(manifest)
    writer.add(NewItems(emb, labels, labels, item_hashes(len(emb)), [f"train/{i}" for i in range(len(emb))], images))
    writer.commit()
    with pytest.raises(StoreError, match="built with model 000000000000, but fashion16.tflite is .*rebuild it"):
        check_model(store.snapshot(), fashion_model, store)


def test_a_catalog_without_the_predicted_category_answers_from_its_likeliest_stocked_one(
        fashion_model, gallery, fmnist, tmp_path_factory, backend):
    """A shop that does not stock a category: routing never lands on an empty library, and says so."""
    images, labels, emb = gallery
    probs, _ = outputs(fashion_model, fmnist.x_test[:100])
    q = int(np.flatnonzero(probs.max(1) > 0.9)[0])
    missing = int(probs[q].argmax())
    keep = labels != missing
    shop = open_catalog(fashion_model, tmp_path_factory, emb[keep], labels[keep], labels[keep], images[keep],
                        backend=backend)
    assert shop.counts()[missing] == 0
    expected = int(np.argsort(-np.where(np.arange(10) == missing, -1, probs[q]))[0])
    for mode in ("routed", "soft", "direct"):
        result = shop.search(fmnist.x_test[q], k=20, mode=mode)
        assert len(result.hits) == 20 and missing not in result.searched
        assert result.category == missing  # the model's guess is still reported as it is
        payload = result_json(shop, result)
        assert f"no {shop.class_names[missing]} items" in payload["note"]
        if mode == "routed":
            assert result.searched == [expected] and {h.category for h in result.hits} == {expected}
            np.testing.assert_allclose(result.routing.sum(), 1.0, atol=1e-5)
            assert result.routing[missing] == 0


def test_more_like_leaves_the_item_out_and_finds_its_neighbours(small, gallery):
    images, labels, _ = gallery
    for item in (0, 45, 200):
        result = small.more_like(item, k=10, mode="routed")
        assert item not in result.ids and len(result.hits) == 10
        assert {h.category for h in result.hits} == {int(labels[item])}
        own = small.search(images[item], k=11, mode="direct")
        direct = small.more_like(item, k=10, mode="direct")
        assert list(direct.ids) == [h.id for h in own.hits if h.id != item][:10]


# --- searching named categories, searching again from kept outputs, the default mode ------------------

@pytest.mark.parametrize("mode", ["routed", "direct", "soft"])
def test_named_categories_replace_the_routing_in_every_mode(small, fmnist, mode):
    query = fmnist.x_test[0]
    routed = small.search(query, k=5, mode="routed")
    other = (routed.category + 3) % 10
    names = [small.class_names[other], small.class_names[routed.category]]
    result = small.search(query, k=MAX_K, mode=mode, categories=names)
    assert result.chosen and result.searched == sorted([other, routed.category]) and result.mode == mode
    assert {h.category for h in result.hits} == {other, routed.category} and len(result.hits) == 2 * PER_CLASS
    emb = small.model.forward_one(small.model.prepare(query))[1]
    ids, sims = exact_ranking(small, emb, result.searched, MAX_K)  # both libraries ranked together by cosine
    np.testing.assert_allclose([h.similarity for h in result.hits], sims, atol=1e-6)
    assert result_json(small, result)["category_filter"] is None  # two categories: no single filter to name
    one = small.search(query, k=7, mode=mode, categories=[small.class_names[other]])
    assert {h.category for h in one.hits} == {other} and result_json(small, one)["category_filter"] == names[0]


def test_only_stocked_categories_can_be_named(fashion_model, gallery, tmp_path_factory, fmnist, backend):
    images, labels, emb = gallery
    keep = labels != 3
    shop = open_catalog(fashion_model, tmp_path_factory, emb[keep], labels[keep], labels[keep], images[keep],
                        backend=backend)
    with pytest.raises(ValueError, match=f"this catalog has no {shop.class_names[3]} items; it has T-shirt/top"):
        shop.search(fmnist.x_test[0], categories=[shop.class_names[3]])
    with pytest.raises(ValueError, match="there is no category 'Socks' in the test catalog"):
        shop.search(fmnist.x_test[0], categories=["Socks"])
    with pytest.raises(ValueError, match="name at least one category"):
        shop.search(fmnist.x_test[0], categories=[])


def test_rank_with_kept_outputs_equals_the_original_search(small, fmnist):
    """A saved search keeps only the probabilities and the embedding: enough to give the very same results."""
    for mode in ("routed", "soft", "direct"):
        first = small.search(fmnist.x_test[3], k=20, mode=mode)
        again = small.rank(first.probabilities, first.embedding, k=20, mode=mode)
        assert list(again.ids) == list(first.ids) and again.searched == first.searched
        assert set(again.timings_ms) == {"hash", "scan", "rerank", "total"}  # no decode, no model pass
    chosen = small.rank(first.probabilities, first.embedding, k=5, categories=[small.class_names[2]])
    assert {h.category for h in chosen.hits} == {2}


def test_more_like_in_a_named_category(small, gallery):
    images, labels, _ = gallery
    other = (int(labels[45]) + 1) % 10
    result = small.more_like(45, k=10, categories=[small.class_names[other]])
    assert {h.category for h in result.hits} == {other} and 45 not in result.ids


@pytest.mark.parametrize("card, mode", [
    ({}, "routed"),
    ({"soft_routing_tuning": {"precision_routed": 0.9208, "precision_soft": 0.9267}}, "soft"),
    ({"soft_routing_tuning": {"precision_routed": 0.93, "precision_soft": 0.93}}, "routed"),
    ({"soft_routing_tuning": {"precision_routed": 0.95, "precision_soft": 0.93}}, "routed"),
    ({"default_mode": "direct", "soft_routing_tuning": {"precision_routed": 0.9, "precision_soft": 0.95}}, "direct"),
    ({"default_mode": "fastest", "soft_routing_tuning": {"precision_routed": 0.9, "precision_soft": 0.95}}, "soft"),
])
def test_the_default_mode_comes_from_the_model_card(card, mode):
    from app.catalog import default_mode

    assert default_mode(card) == mode


def test_the_committed_cards_choose_soft_for_photos_and_routed_for_fashion_mnist(photo_model, fashion_model):
    """The photo card records soft beating routed on validation photos (0.9267 vs 0.9208); Fashion-MNIST's records
    no validation comparison, so it keeps the paper's routed (its test figures never decide)."""
    from app.catalog import default_mode

    assert default_mode(photo_model.card) == "soft" and default_mode(fashion_model.card) == "routed"
