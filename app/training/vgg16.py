"""The paper's VGG-16 option for a shop's own labelled photos: fit a softmax head on frozen features.

The ImageNet backbone stays frozen, so a few hundred labelled photos per category suffice.
Categories are the sub-folders of the photo folder (``Dress/``, ``Shoes/``, ...).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from ..imaging.decode import ImageRejected, decode
from ..imaging.photo import photo_input
from ..nets.layers import keras
from ..photo_dataset import image_files
from .cards import environment, save_model


def load_labelled_folder(root: Path, input_size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Model-ready photos, labels and class names (the sub-folder names) of a folder sorted by category."""
    folders = sorted(d for d in Path(root).iterdir() if d.is_dir())
    images, labels, names = [], [], []
    for folder in folders:
        files = image_files(folder)
        readable = []
        for path in files:
            try:
                readable.append(photo_input(decode(path.read_bytes()), input_size))
            except (ImageRejected, OSError):
                continue
        if readable:
            images += readable
            labels += [len(names)] * len(readable)
            names.append(folder.name)
    if len(names) < 2:
        raise ValueError(f"{root} needs at least two sub-folders of photos, one per category")
    return np.stack(images), np.array(labels, np.int64), names


def train_vgg16(out: Path, data_dir: Path, weights: str | None = "imagenet", input_size: int = 224,
                epochs: int = 5, batch_size: int = 32, seed: int = 16) -> dict:
    from ..nets.vgg16 import build_vgg16

    keras.utils.set_random_seed(seed)
    x, y, class_names = load_labelled_folder(Path(data_dir), input_size)
    net = build_vgg16((input_size, input_size, 3), num_classes=len(class_names), weights=weights)
    classifier = keras.Model(net.input, net.outputs[0])
    classifier.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                       metrics=["accuracy"], jit_compile=False)
    print(f"Training the VGG-16 head on {len(x)} labelled photos from {data_dir}, {epochs} epochs", flush=True)
    start = time.time()
    history = classifier.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True,
                             verbose=1 if sys.stdout.isatty() else 2).history
    card = {"name": out.stem, "file": out.name, "architecture": "VGG-16 (frozen, global average pool) + softmax; "
            "embedding = unit-normalised 512-d pooled features", "parameters": int(net.count_params()),
            "inputs": f"{input_size}x{input_size}x3 RGB, 0-255", "class_names": class_names,
            "training": {"images": len(x), "data": str(data_dir), "epochs": epochs, "batch_size": batch_size,
                         "seed": seed, "weights": weights or "none (random)",
                         "train_seconds": round(time.time() - start, 1)},
            "train_accuracy": float(history["accuracy"][-1]), "environment": environment()}
    save_model(net, out, card)
    print(f"Saved {out}; index a catalog with it: `python -m app index build --catalog NAME "
          f"--model {out.stem} --gallery {data_dir}`")
    return card
