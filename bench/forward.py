"""Forward pass per model and runtime: Keras (TensorFlow) beside LiteRT with 1 and 2 threads.

Serving runs LiteRT with one thread per worker (``FASHION16_INFERENCE_THREADS``); Keras
is the training runtime the serving one replaced. A model served in full-integer int8 (its
card says so) is also timed as its float32 conversion (``litert_fp32_1_thread``, converted
from the ``.keras`` file once and cached: app/training/convert.py ``float32_conversion``), so
int8 and fp32 stand side by side. Batch-1 passes
on one real prepared input are taken in turns across the runtimes (``timing.interleaved``),
so the ratios share the machine's noise even where the absolute times wander.
"""
from __future__ import annotations

import numpy as np

from app.catalog import model_path
from app.evaluation.metrics import summarise_ms
from app.fashion_mnist import load_fashion_mnist
from app.imaging.decode import MAX_PIXELS
from app.photo_dataset import load_photos
from app.runtime import TRAINING_SUFFIX, InferenceModel, KerasModel, LiteRTModel
from app.settings import Settings

from .timing import interleaved

MODELS = ("photos", "fashion16")
RUNTIMES = ("keras", "litert_1_thread", "litert_2_threads")
FP32 = "litert_fp32_1_thread"  # the float32 conversion of a model served in int8
MAX_SECONDS = 60.0  # per model, whatever the sample count


def sample_input(name: str, model: InferenceModel) -> np.ndarray:
    """One real query, prepared as serving prepares it: a test photo, or a Fashion-MNIST test image."""
    if name == "fashion16":
        return model.prepare(load_fashion_mnist(download=False).x_test[0])
    return model.prepare(model.decode(load_photos("test").read(0), MAX_PIXELS))


def quantized(model: InferenceModel) -> bool:
    return "quantization" in model.card.get("files", {}).get("serving", {})


def load_runtimes(settings: Settings, name: str) -> dict[str, InferenceModel]:
    tflite = model_path(settings, name)
    runtimes = {"keras": KerasModel(tflite.with_suffix(TRAINING_SUFFIX)), "litert_1_thread": LiteRTModel(tflite, 1),
                "litert_2_threads": LiteRTModel(tflite, 2)}
    if quantized(runtimes["litert_1_thread"]):
        from app.training.convert import float32_conversion

        runtimes[FP32] = LiteRTModel(float32_conversion(tflite.with_suffix(TRAINING_SUFFIX)), 1)
    return runtimes


def measure_model(settings: Settings, name: str, samples: int) -> tuple[dict, dict]:
    """(p50s and ratios, full summaries) for one model."""
    runtimes = load_runtimes(settings, name)
    x = sample_input(name, runtimes["litert_1_thread"])
    outputs = {rt: m.forward_one(x) for rt, m in runtimes.items()}
    times = interleaved({rt: (lambda m=m: m.forward_one(x)) for rt, m in runtimes.items()}, samples, MAX_SECONDS)
    summaries = {rt: summarise_ms(t) for rt, t in times.items()}
    p50 = {rt: s["p50_ms"] for rt, s in summaries.items()}
    figures = {**p50, "keras_over_litert": round(p50["keras"] / p50["litert_1_thread"], 2),
               "keras_over_litert_2_threads": round(p50["keras"] / p50["litert_2_threads"], 2),
               "litert_1_over_2_threads": round(p50["litert_1_thread"] / p50["litert_2_threads"], 2),
               "samples": summaries["keras"]["samples"]}
    if FP32 in p50:  # int8 as served beside its float32 conversion, one thread each
        figures["int8_over_fp32"] = round(p50["litert_1_thread"] / p50[FP32], 2)
    reference = outputs["keras"]
    # the same network: Keras and every float32 LiteRT file; int8 rounds, so it is reported apart
    same = [out for rt, out in outputs.items() if FP32 not in runtimes or rt in ("keras", FP32)]
    detail = {"input": list(runtimes["keras"].input_shape), "runtimes": summaries,
              "served": "int8" if FP32 in runtimes else "fp32",
              "same_top_class": all(int(p.argmax()) == int(reference[0].argmax()) for p, _ in same),
              "max_embedding_diff": float(max(np.abs(e - reference[1]).max() for _, e in same))}
    if FP32 in runtimes:
        detail["int8_same_top_class"] = int(outputs["litert_1_thread"][0].argmax()) == int(reference[0].argmax())
        detail["int8_embedding_cosine"] = round(float(outputs["litert_1_thread"][1] @ reference[1]), 4)
    return figures, detail


def run_forward(settings: Settings, samples: int) -> dict:
    forward_ms, detail = {}, {}
    for name in MODELS:
        forward_ms[name], detail[name] = measure_model(settings, name, samples)
    return {"forward_ms": forward_ms, "forward": detail}
