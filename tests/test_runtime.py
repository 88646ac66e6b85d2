"""The serving runtime (LiteRT, no TensorFlow) agrees with the Keras model it was converted from.

Both committed models, real inputs (catalog photos and Fashion-MNIST test images). A float32
conversion gives the same probabilities and embeddings within 1e-4 and the same top-20 lists
when the catalog is searched with either runtime's outputs. The photo model is served in
full-integer int8 (its card says so): its outputs are held to the tolerances measured for it
(same class, embeddings within a small angle, nearly the same top-20 lists), and its float32
conversion to the strict ones.
"""
from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from app.files import file_sha256
from app.runtime import KerasModel, LiteRTModel, open_model
from app.settings import ROOT

pytestmark = pytest.mark.tensorflow

MODELS = ROOT / "models"


@pytest.fixture(scope="module", params=["fashion16", "photos"])
def pair(request):
    """(LiteRT model, Keras model) of one committed model."""
    name = request.param
    return LiteRTModel(MODELS / f"{name}.tflite"), KerasModel(MODELS / f"{name}.keras")


@pytest.fixture(scope="module")
def inputs(pair, fmnist, test_photos):
    """Real prepared inputs for the pair's model: 64 test images or test photos."""
    lite, _ = pair
    if lite.input_shape[-1] == 1:
        return np.stack([lite.prepare(x) for x in fmnist.x_test[:64]])
    rows = np.linspace(0, len(test_photos) - 1, 48).astype(int)
    return np.stack([lite.prepare(lite.decode(test_photos.read(i), 40_000_000)) for i in rows])


def quantized(model) -> bool:
    return "quantization" in model.card["files"]["serving"]


def check_agreement(lite, keras_model, inputs, int8: bool) -> None:
    assert lite.input_shape == keras_model.input_shape and lite.class_names == keras_model.class_names
    p_lite, e_lite = lite(inputs)
    p_keras, e_keras = keras_model(inputs)
    np.testing.assert_allclose(np.linalg.norm(e_lite, axis=1), 1.0, atol=1e-5)  # int8 too: the runtime renormalises
    if int8:
        np.testing.assert_allclose(p_lite, p_keras, atol=INT8_PROBS)
        assert np.mean(p_lite.argmax(1) == p_keras.argmax(1)) >= INT8_SAME_CLASS
        assert np.sum(e_lite * e_keras, axis=1).min() >= INT8_COSINE
    else:
        np.testing.assert_allclose(p_lite, p_keras, atol=1e-4)
        np.testing.assert_allclose(e_lite, e_keras, atol=1e-4)
        assert np.array_equal(p_lite.argmax(1), p_keras.argmax(1))
    _one_p, one_e = lite.forward_one(inputs[3])  # batch of one, as a query runs
    np.testing.assert_allclose(one_e, e_lite[3], atol=1e-5)


# int8 tolerances around what the committed photo model measured on these 48 test photos (largest probability
# difference 0.104, the same class for 45 of 48, cosines from 0.970); its card's int8 choice says why int8 is served.
INT8_PROBS, INT8_SAME_CLASS, INT8_COSINE, INT8_SAME_TOP20 = 0.15, 0.9, 0.95, 0.8


def test_converted_model_gives_the_keras_outputs(pair, inputs):
    lite, keras_model = pair
    check_agreement(lite, keras_model, inputs, quantized(lite))


@pytest.mark.slow
def test_a_float32_conversion_of_the_photo_model_gives_the_keras_outputs(test_photos):
    """The conversion itself is exact; only int8 rounding separates the served photo model from Keras. (The
    conversion is the one the bench times too, cached by the .keras file's SHA-256.)"""
    from app.training.convert import float32_conversion

    keras_model = KerasModel(MODELS / "photos.keras")
    lite = LiteRTModel(float32_conversion(MODELS / "photos.keras"))
    assert lite.path.stat().st_size > 2 * (MODELS / "photos.tflite").stat().st_size  # float32 weights, not int8
    rows = np.linspace(0, len(test_photos) - 1, 16).astype(int)
    inputs = np.stack([lite.prepare(lite.decode(test_photos.read(i), 40_000_000)) for i in rows])
    check_agreement(lite, keras_model, inputs, int8=False)


def test_search_lists_are_the_same_with_either_runtime(pair, inputs, catalogs):
    lite, keras_model = pair
    catalog = next(c for c in catalogs.values() if c.model.path == lite.path)
    p_lite, e_lite = lite(inputs)
    p_keras, e_keras = keras_model(inputs)
    shared = []
    for i in range(0, len(inputs), 4):
        for mode in ("routed", "soft"):
            a = catalog.engine.search(catalog.snapshot, p_lite[i], e_lite[i], 20, mode)
            b = catalog.engine.search(catalog.snapshot, p_keras[i], e_keras[i], 20, mode)
            shared.append(len(np.intersect1d(a.ids, b.ids)) / 20)
            if not quantized(lite):
                assert a.ids.tolist() == b.ids.tolist()
    assert np.mean(shared) >= (INT8_SAME_TOP20 if quantized(lite) else 1.0)


def test_the_card_names_the_files_it_describes(pair):
    lite, keras_model = pair
    files = lite.card["files"]
    serving = {k: v for k, v in files["serving"].items() if k != "quantization"}
    assert serving == {"file": lite.path.name, "sha256": file_sha256(lite.path), "runtime": "LiteRT"}
    assert files["keras"] == {"file": keras_model.path.name, "sha256": file_sha256(keras_model.path)}
    assert lite.sha256 == files["serving"]["sha256"]


def test_one_interpreter_serves_threads_one_call_at_a_time(pair, inputs):
    lite, _ = pair
    expected = lite(inputs[:8])[1]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: lite.forward_one(inputs[i % 8])[1], range(32)))
    for i, emb in enumerate(got):
        np.testing.assert_allclose(emb, expected[i % 8], atol=1e-5)


def test_serving_never_imports_tensorflow():
    """A serving process (app, both catalogs' models) runs without TensorFlow: ~500 MB less per worker."""
    code = ("import sys; from app.runtime import open_model; "
            "[open_model(f'models/{n}.tflite').forward_one(__import__('numpy').zeros(open_model("
            "f'models/{n}.tflite').input_shape)) for n in ('photos', 'fashion16')]; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_bad_model_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        open_model(tmp_path / "none.tflite")
    (tmp_path / "m.tflite").write_bytes((MODELS / "fashion16.tflite").read_bytes())
    with pytest.raises(FileNotFoundError, match="model card not found.*m.json"):
        open_model(tmp_path / "m.tflite")
    card = json.loads((MODELS / "fashion16.json").read_text())
    (tmp_path / "m.json").write_text(json.dumps({**card, "class_names": card["class_names"][:9]}))
    with pytest.raises(ValueError, match="gives 10 classes, its card names 9"):
        open_model(tmp_path / "m.tflite")
    (tmp_path / "junk.tflite").write_bytes(b"not a model")
    (tmp_path / "junk.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="not a usable LiteRT model"):
        open_model(tmp_path / "junk.tflite")
    with pytest.raises(ValueError, match="a model is a .tflite"):
        open_model(tmp_path / "junk.json")
