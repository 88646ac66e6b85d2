"""Training the default Fashion-16 model and writing its model card and curves."""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from .data import CLASS_NAMES, load_fashion_mnist
from .model import Embedder, build_fashion16, keras, layers, mirror_averaged


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, shuffle: bool):
    """An endless tf.data stream (``repeat`` + ``steps_per_epoch`` avoids fit()'s idle epoch starts)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x[..., None].astype("float32"), y.astype("int32")))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).repeat().prefetch(tf.data.AUTOTUNE)


def with_augmentation(classifier: keras.Model, seed: int) -> keras.Model:
    """Training-only wrapper: mirror and shift each image by up to ~2 px.

    Garments are left-right symmetric products and real photos are never centred exactly;
    the wrapper is not saved, so the served model carries no augmentation layers.
    """
    augment = keras.Sequential([layers.RandomFlip("horizontal", seed=seed),
                                layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=seed)],
                               name="augment")
    inputs = keras.Input(classifier.input_shape[1:])
    return keras.Model(inputs, classifier(augment(inputs)), name="train_wrapper")


def plot_history(history: dict[str, list[float]], path: Path) -> None:
    """Loss and accuracy curves, like the paper's Figure 4."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        ax1.plot(epochs, history[key], marker="o", label=label)
    for key, label in (("accuracy", "train"), ("val_accuracy", "validation")):
        ax2.plot(epochs, history[key], marker="o", label=label)
    ax1.set(title="Loss", xlabel="epoch")
    ax2.set(title="Accuracy", xlabel="epoch")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int = 10) -> np.ndarray:
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def train(out: Path, epochs: int = 16, batch_size: int = 128, seed: int = 16, val_size: int = 5000,
          peak_lr: float = 3e-3) -> dict:
    """Train on 55k images (5k held out for the curves), test once on the 10k test set, save all."""
    keras.utils.set_random_seed(seed)
    data = load_fashion_mnist()
    order = np.random.default_rng(seed).permutation(len(data.x_train))
    val_idx, train_idx = order[:val_size], order[val_size:]
    x_tr, y_tr = data.x_train[train_idx], data.y_train[train_idx]
    x_val, y_val = data.x_train[val_idx], data.y_train[val_idx]

    net = build_fashion16()
    classifier = keras.Model(net.input, net.outputs[0])
    steps = int(np.ceil(len(x_tr) / batch_size))
    # One-cycle: half an epoch of warm-up, then cosine decay to zero.
    schedule = keras.optimizers.schedules.CosineDecay(
        peak_lr / 100, decay_steps=steps * epochs - steps // 2, alpha=0.0,
        warmup_target=peak_lr, warmup_steps=steps // 2)
    trainer = with_augmentation(classifier, seed)
    trainer.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=5e-5),
                    loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=False)
    print(f"Training Fashion-16 on {len(x_tr)} images ({data.source}), {epochs} epochs, seed {seed}", flush=True)
    start = time.time()
    history = trainer.fit(
        make_dataset(x_tr, y_tr, batch_size, seed, shuffle=True), steps_per_epoch=steps, epochs=epochs,
        validation_data=make_dataset(x_val, y_val, 1000, seed, shuffle=False),
        validation_steps=int(np.ceil(val_size / 1000)), verbose=1 if sys.stdout.isatty() else 2,
    ).history
    train_seconds = time.time() - start

    model = mirror_averaged(net)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    y_pred = Embedder(out)(data.x_test)[0].argmax(1)
    single = classifier.predict(data.x_test[..., None].astype("float32"), batch_size=1000, verbose=0).argmax(1)
    matrix = confusion(data.y_test, y_pred)
    card = {
        "name": "fashion16",
        "file": out.name,
        "architecture": "conv16-conv32-pool-conv64-conv128-pool-dropout0.25-flatten-dense256-dropout0.5-softmax10, "
                        "batch norm after each conv; embedding = unit-normalised dense256; served on the image "
                        "and its mirror image with both outputs averaged",
        "parameters": int(model.count_params()),
        "inputs": "28x28x1 greyscale, 0-255, garment light on dark background",
        "outputs": {"probs": 10, "embedding": int(model.output_shape[1][-1])},
        "class_names": list(CLASS_NAMES),
        "training": {"images": len(x_tr), "validation_images": val_size, "epochs": epochs,
                     "batch_size": batch_size, "seed": seed,
                     "optimizer": f"AdamW (weight decay 5e-5), one-cycle: warm-up to {peak_lr:g}, cosine to 0",
                     "augmentation": "random horizontal flip, random shift up to 8% (about 2 px)",
                     "train_seconds": round(train_seconds, 1), "data_source": data.source},
        "test_accuracy": float((y_pred == data.y_test).mean()),
        "test_accuracy_without_mirror_average": float((single == data.y_test).mean()),
        "per_class_accuracy": {CLASS_NAMES[c]: float(matrix[c, c] / matrix[c].sum()) for c in range(10)},
        "confusion_matrix": matrix.tolist(),
        "history": {k: [round(float(v), 5) for v in vals] for k, vals in history.items()},
        "environment": {"python": platform.python_version(), "keras": keras.__version__,
                        "machine": platform.machine(), "cpu_count": os.cpu_count(),
                        "trained_at": time.strftime("%Y-%m-%d %H:%M:%S")},
    }
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    plot_history(history, out.with_name(out.stem + "_history.png"))
    print(f"Done in {train_seconds / 60:.1f} min: test accuracy {card['test_accuracy']:.4f} "
          f"({card['test_accuracy_without_mirror_average']:.4f} without mirror averaging); "
          f"saved {out}, {out.with_suffix('.json')}", flush=True)
    return card
