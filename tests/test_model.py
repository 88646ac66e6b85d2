"""The networks: both outputs in one pass, saving, the VGG-16 option and its weights."""
from __future__ import annotations

import time
import urllib.request

import numpy as np
import pytest

from app.model import (
    VGG16_NOTOP, Embedder, FusedBatchNorm, VGGPreprocess, WeightsUnavailableError, build_fashion16, build_vgg16, keras,
    resolve_vgg16_weights,
)


to_numpy = keras.ops.convert_to_numpy


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Random garments-to-be."""
    return np.random.default_rng(3).uniform(0, 255, (4, 28, 28, 1)).astype(np.float32)


@pytest.fixture(scope="module")
def net():
    keras.utils.set_random_seed(5)
    return build_fashion16()


def check_outputs(probs: np.ndarray, embedding: np.ndarray, n: int, classes: int, dim: int) -> None:
    assert probs.shape == (n, classes) and embedding.shape == (n, dim)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(probs >= 0)
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, atol=1e-5)


def test_fashion16_gives_probabilities_and_unit_embedding_in_one_call(images):
    net = build_fashion16()
    outputs = net(images, training=False)
    assert len(outputs) == 2
    check_outputs(to_numpy(outputs[0]), to_numpy(outputs[1]), len(images), 10, 256)


def test_keras_file_round_trip_gives_the_same_outputs(net, images, tmp_path):
    path = tmp_path / "net.keras"
    net.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    for before, after in zip(net(images, training=False), loaded(images, training=False)):
        np.testing.assert_allclose(to_numpy(before), to_numpy(after), atol=1e-6)
    embedder = Embedder(path)
    probs, emb = embedder(images)
    one_probs, one_emb = embedder.forward_one(images[0])
    np.testing.assert_allclose(emb[0], one_emb, atol=1e-5)
    np.testing.assert_allclose(probs[0], one_probs, atol=1e-6)
    assert embedder.input_shape == (28, 28, 1) and embedder.embedding_dim == 256 and embedder.num_classes == 10


def test_fused_batch_norm_trains_like_keras_batch_norm():
    """Same outputs, gradients and moving statistics as Keras' layer, through TensorFlow's fused kernel."""
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(8).normal(2.0, 3.0, (6, 5, 5, 4)), tf.float32)
    fused, plain = FusedBatchNorm(momentum=0.5), keras.layers.BatchNormalization(momentum=0.5)
    results = []
    for layer in (fused, plain):
        layer.build(x.shape)
        layer.gamma.assign([0.5, 1.0, 1.5, 2.0])
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True) * tf.range(4, dtype=tf.float32))
        results.append([*tape.gradient(loss, [x, layer.gamma, layer.beta]), layer.moving_mean, layer.moving_variance])
    for got, want in zip(*results):
        np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=1e-4, atol=1e-3)
    graph = tf.function(lambda t: fused(t, training=True)).get_concrete_function(x).graph
    assert any(op.type.startswith("FusedBatchNorm") for op in graph.get_operations())
    np.testing.assert_allclose(to_numpy(fused(x, training=False)), to_numpy(plain(x, training=False)), atol=1e-5)


def test_embedder_refuses_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m app train"):
        Embedder(tmp_path / "none.keras")


def test_vgg16_without_weights_builds_and_gives_both_outputs():
    net = build_vgg16((32, 32, 3), weights=None)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    probs, emb = net(x, training=False)
    check_outputs(to_numpy(probs), to_numpy(emb), 2, 10, 512)


def test_vgg_preprocess_layer_is_caffe_style_and_survives_saving(tmp_path):
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, VGGPreprocess()(inputs))
    model.save(tmp_path / "pre.keras")
    loaded = keras.saving.load_model(tmp_path / "pre.keras", compile=False)
    x = np.random.default_rng(1).uniform(0, 255, (1, 4, 4, 3)).astype(np.float32)
    expected = x[..., ::-1] - np.array([103.939, 116.779, 123.68], np.float32)  # RGB -> BGR, minus the mean
    np.testing.assert_allclose(to_numpy(loaded(x)), expected, atol=1e-4)


def test_weights_none_and_an_existing_file_resolve(tmp_path):
    weights = tmp_path / "w.h5"
    weights.write_bytes(b"\0")
    assert resolve_vgg16_weights(None) is None
    assert resolve_vgg16_weights(str(weights)) == str(weights)


def test_missing_weights_file_is_weights_unavailable(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="not found"):
        resolve_vgg16_weights(str(tmp_path / "missing.h5"))


def test_cached_imagenet_weights_are_used_without_network(monkeypatch, tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / VGG16_NOTOP).write_bytes(b"\0")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert resolve_vgg16_weights("imagenet") == str(tmp_path / "models" / VGG16_NOTOP)


def test_imagenet_without_cache_or_network_says_how_to_fetch(monkeypatch, tmp_path):
    """No cache and no network: fails fast with the curl line and the --vgg-weights way out.

    The proxy points at a closed local port, so this fails the same, and at once, on a
    machine with internet; urllib builds its opener once per process, so it is reset.
    """
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(urllib.request, "_opener", None)
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as err:
        resolve_vgg16_weights("imagenet")
    assert time.monotonic() - start < 30
    message = str(err.value)
    assert "curl -L -o" in message and "--vgg-weights" in message and str(tmp_path / "models") in message
    assert not (tmp_path / "models" / VGG16_NOTOP).exists()
