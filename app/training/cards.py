"""What every trained model ships with: a model card (JSON) and its training curves (PNG)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int = 10) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return matrix


def save_card(card: dict, model_path: Path) -> Path:
    """The card sits beside the model: models/NAME.keras -> models/NAME.json."""
    path = model_path.with_suffix(".json")
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path


def plot_history(history: dict[str, list[float]], path: Path, validation_label: str = "test") -> None:
    """Loss and accuracy per epoch, training beside validation (the paper's Figure 4)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["loss"]) + 1)
    accuracy = next(k for k in history if k.endswith("accuracy") and not k.startswith("val_"))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("loss", "train"), ("val_loss", validation_label)):
        ax1.plot(epochs, history[key], marker="o", label=label)
    for key, label in ((accuracy, "train"), ("val_" + accuracy, validation_label)):
        ax2.plot(epochs, history[key], marker="o", label=label)
    ax1.set(title="Loss", xlabel="epoch")
    ax2.set(title="Accuracy", xlabel="epoch")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def environment() -> dict:
    import platform

    from ..nets.layers import keras

    return {"python": platform.python_version(), "keras": keras.__version__, "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "trained_at": time.strftime("%Y-%m-%d %H:%M:%S")}


def save_model(net, out: Path, card: dict, history: dict | None = None, validation_label: str = "validation",
               representative=None) -> None:
    """Everything a trained model ships as: NAME.keras, its LiteRT conversion NAME.tflite (what serving
    runs; full-integer int8 when ``representative`` inputs calibrate it), the card NAME.json naming both
    files' SHA-256, and the curves NAME_history.png."""
    from ..files import file_sha256
    from .convert import convert

    out.parent.mkdir(parents=True, exist_ok=True)
    net.save(out)
    serving = convert(out, representative=representative)
    card["files"] = {"keras": {"file": out.name, "sha256": file_sha256(out)},
                     "serving": {"file": serving.name, "sha256": file_sha256(serving), "runtime": "LiteRT",
                                 **({"quantization": "full-integer int8 (float32 input and outputs), calibrated "
                                                     f"on {len(representative)} training photos"}
                                    if representative is not None else {})}}
    save_card(card, out)
    if history:
        plot_history(history, out.with_name(out.stem + "_history.png"), validation_label=validation_label)
