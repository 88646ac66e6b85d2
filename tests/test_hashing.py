"""SimHash properties, the Hamming popcount against a per-bit reference, and the two scan engines."""
from __future__ import annotations

import numpy as np
import pytest

from app.hamming_index import FaissHammingIndex, NumpyHammingIndex, make_hamming_index
from app.hashing import Hasher, check_bits, cosine_similarity, hamming

BIT_LENGTHS = (32, 64, 96, 256, 1024)  # 32 and 96 take the byte path, the rest the 64-bit word path


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def naive_hamming(a: np.ndarray, b: np.ndarray) -> int:
    """Bit by bit, in plain Python: the reference popcount is checked against."""
    return sum(((int(x) >> i) & 1) != ((int(y) >> i) & 1) for x, y in zip(a, b) for i in range(8))


def random_codes(n: int, bits: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, bits // 8), dtype=np.uint8)


@pytest.mark.parametrize("bits", BIT_LENGTHS)
def test_identical_vectors_hash_to_distance_zero(bits):
    hasher = Hasher.create(dim=64, bits=bits, seed=1)
    x = unit(np.random.default_rng(2).standard_normal((50, 64)))
    codes = hasher.hash(x)
    assert codes.shape == (50, bits // 8) and codes.dtype == np.uint8
    assert np.array_equal(hasher.hash(x.copy()), codes)
    for i in range(len(x)):
        assert hamming(codes[i], codes)[i] == 0


@pytest.mark.parametrize("bits", BIT_LENGTHS)
def test_hamming_matches_the_per_bit_reference(bits):
    codes = random_codes(40, bits, seed=bits)
    for q in codes[:3]:
        expected = [naive_hamming(q, c) for c in codes]
        assert hamming(q, codes).tolist() == expected


def test_distance_tracks_angle_as_bits_times_angle_over_pi():
    """Over many random pairs at known angles, distance is monotonic in angle and unbiased.

    Per pair the distance is binomial(bits, angle/pi): its standard deviation is at most
    sqrt(1024/4) = 16 bits, mean absolute error at most ~13; the bounds leave 1.5x room.
    """
    bits, dim, n = 1024, 256, 500
    rng = np.random.default_rng(7)
    u = unit(rng.standard_normal((n, dim)))
    w = rng.standard_normal((n, dim))
    w = unit(w - np.sum(w * u, axis=1, keepdims=True) * u)
    angle = rng.uniform(0, np.pi, n)
    v = np.cos(angle)[:, None] * u + np.sin(angle)[:, None] * w
    hasher = Hasher.create(dim, bits, seed=11)
    cu, cv = hasher.hash(u), hasher.hash(v)
    dist = np.array([hamming(cu[i], cv[i : i + 1])[0] for i in range(n)])
    expected = bits * angle / np.pi
    ranks = lambda a: np.argsort(np.argsort(a))  # noqa: E731
    spearman = np.corrcoef(ranks(dist), ranks(angle))[0, 1]
    assert spearman > 0.98
    assert np.mean(np.abs(dist - expected)) < 20
    assert abs(np.mean(dist - expected)) < 4  # unbiased: about 0.7 bits standard error


def test_centring_makes_bits_informative():
    """ReLU-like embeddings share an orthant; without the centre most bits are the same for all."""
    rng = np.random.default_rng(3)
    x = unit(np.abs(rng.standard_normal((400, 128))) + 0.5)
    plain = np.unpackbits(Hasher.create(128, 256, seed=0).hash(x), axis=1).mean(0)
    centred = np.unpackbits(Hasher.create(128, 256, seed=0, center=x.mean(0)).hash(x), axis=1).mean(0)
    balance = lambda p: np.mean(np.minimum(p, 1 - p))  # noqa: E731  0 = constant bits, 0.5 = fair coins
    assert balance(centred) > 0.35 > 0.2 > balance(plain)


def test_seed_fixes_the_hyperplanes():
    a, b, c = (Hasher.create(32, 64, seed=s) for s in (4, 4, 5))
    assert np.array_equal(a.hyperplanes, b.hyperplanes) and not np.array_equal(a.hyperplanes, c.hyperplanes)
    assert a.bits == 64 and a.code_bytes == 8


@pytest.mark.parametrize("bits", [0, -32, 16, 31, 33, 48, 1000, 1056, 2048])
def test_check_bits_rejects_bad_lengths(bits):
    with pytest.raises(ValueError, match="multiple of 32"):
        check_bits(bits)
    with pytest.raises(ValueError):
        Hasher.create(16, bits)


@pytest.mark.parametrize("bits", [32, 64, 512, 1024])
def test_check_bits_accepts_good_lengths(bits):
    assert check_bits(bits) == bits


def test_cosine_similarity_is_in_zero_one():
    q = unit(np.ones(8))
    sims = cosine_similarity(q, np.stack([q, -q, unit(np.arange(8.0))]).astype(np.float16))
    assert sims[0] == pytest.approx(1.0, abs=1e-3) and sims[1] == 0.0 and 0 < sims[2] < 1
    assert np.all((sims >= 0) & (sims <= 1))


def assert_same_top_n(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], codes, query) -> None:
    """Same distances; same rows except among those tied at the cut-off distance."""
    (da, ra), (db, rb) = a, b
    assert np.array_equal(da, db)
    assert np.array_equal(da, np.sort(da))
    truth = hamming(query, codes)
    assert np.array_equal(truth[ra], da) and np.array_equal(truth[rb], db)
    if len(da):
        cut = da[-1]
        assert set(ra[da < cut]) == set(rb[db < cut]) == set(np.flatnonzero(truth < cut))


@pytest.mark.parametrize("bits", [32, 64, 256, 1024])
@pytest.mark.parametrize("n", [1, 10, 200])
def test_numpy_and_faiss_engines_agree(bits, n):
    codes = random_codes(3000, bits, seed=n + bits)
    queries = random_codes(5, bits, seed=99)
    queries[0] = codes[123]  # an exact hit must come first at distance 0
    numpy_engine, faiss_engine = NumpyHammingIndex(codes), FaissHammingIndex(codes)
    for q in queries:
        assert_same_top_n(numpy_engine.search(q, n), faiss_engine.search(q, n), codes, q)
    for engine in (numpy_engine, faiss_engine):
        dist, rows = engine.search(queries[0], n)
        assert dist[0] == 0 and rows[0] == 123
    batch_dist, batch_rows = faiss_engine.search_batch(queries, n)
    for q, d in zip(queries, batch_dist):
        assert np.array_equal(d, numpy_engine.search(q, n)[0])
    assert batch_rows.shape == (len(queries), n)


@pytest.mark.parametrize("engine", ["numpy", "faiss"])
def test_engines_handle_n_beyond_size_and_empty_libraries(engine):
    codes = random_codes(7, 256)
    index = make_hamming_index(codes, engine)
    assert index.engine == engine and len(index) == 7
    dist, rows = index.search(codes[0], 50)
    assert sorted(rows.tolist()) == list(range(7)) and dist[0] == 0
    assert len(index.search(codes[0], 0)[0]) == 0
    empty = make_hamming_index(codes[:0], engine)
    assert len(empty) == 0 and len(empty.search(codes[0], 5)[1]) == 0


def test_auto_engine_is_faiss_when_installed():
    assert make_hamming_index(random_codes(3, 64)).engine == "faiss"
