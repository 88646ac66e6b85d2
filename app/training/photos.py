"""Fine-tuning ImageNet MobileNetV2 on the clothing photos: the photo catalog's model.

Recipe (every choice made on the validation split; the test split is measured once, at
the end): torchvision's ImageNet weights, the first blocks frozen (they see generic edges
and their backward pass would cost half of each step on 2 CPU cores), AdamW with a
warm-up and cosine decay, label smoothing, random resized crops, flips and light colour
jitter at a training size below the serving size (the "train small, test large" effect of
random crops).
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..nets.layers import keras, layers
from ..photo_dataset import CLASS_NAMES, PhotoSet, folder_splits, load_photos


@dataclass(frozen=True)
class PhotoRecipe:
    input_size: int = 192     # serving size: the saved model's input (chosen on validation, see the card)
    train_size: int = 160     # random crops are resized to this while training
    epochs: int = 15
    batch_size: int = 32
    peak_lr: float = 5e-4
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    frozen_blocks: int = 4    # torchvision features.0 .. features.{n-1} keep their ImageNet weights
    train_bn: bool = True     # batch norm of the trained blocks updates its statistics
    min_crop: float = 0.3     # smallest crop, as a share of the photo's area
    dropout: float = 0.2
    embedding: str = "both"   # what gets hashed: "finetuned", "imagenet" or "both" (chosen on held-out photos)
    imagenet_size: int = 128  # the ImageNet features' input size (chosen on held-out photos)
    seed: int = 16


def decode_and_augment(data, label, size: int, min_crop: float, seed: int):
    """JPEG bytes to one augmented training image (RGB 0-255 float) in the TensorFlow graph."""
    import tensorflow as tf

    image = tf.io.decode_image(data, channels=3, expand_animations=False)  # JPEG, PNG, GIF, BMP
    begin, extent, _ = tf.image.sample_distorted_bounding_box(
        tf.shape(image), tf.zeros((1, 0, 4)), min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(min_crop, 1.0), max_attempts=20, use_image_if_no_bounding_boxes=True)
    image = tf.slice(image, begin, extent)
    image = tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=True)
    image = tf.image.random_flip_left_right(image)
    image = tf.image.random_brightness(image, 0.15 * 255)
    image = tf.image.random_contrast(image, 0.8, 1.2)
    image = tf.image.random_saturation(image, 0.8, 1.2)
    return tf.clip_by_value(image, 0.0, 255.0), label


def training_stream(photos: PhotoSet, recipe: PhotoRecipe):
    """Endless shuffled batches of augmented crops; the JPEG bytes are read once into memory."""
    import tensorflow as tf

    files = [photos.read(i) for i in range(len(photos))]
    ds = tf.data.Dataset.from_tensor_slices((files, photos.labels.astype("int32")))
    ds = ds.shuffle(len(files), seed=recipe.seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda d, y: decode_and_augment(d, y, recipe.train_size, recipe.min_crop, recipe.seed),
                num_parallel_calls=2)
    return ds.batch(recipe.batch_size).repeat().prefetch(2)


def model_inputs(photos: PhotoSet, size: int) -> np.ndarray:
    """Photos as serving prepares them (the same function), so validation measures what users get."""
    from ..imaging.decode import decode
    from ..imaging.photo import photo_input

    return np.stack([photo_input(decode(photos.read(i)), size) for i in range(len(photos))])


IMAGENET_PREFIX = "imagenet."


def build_photo_model(recipe: PhotoRecipe, weights: dict[str, np.ndarray] | None, input_size: int | None,
                      num_classes: int = len(CLASS_NAMES), serving: bool = True) -> keras.Model:
    """MobileNetV2 classifier (fine-tuned) and, when serving, the embedding ``recipe.embedding`` asks for.

    The paper pairs a classifier with generic ImageNet features for hashing; here both come
    from one MobileNetV2 stem: the blocks below ``frozen_blocks`` keep their ImageNet weights
    (computed once), then one copy of the remaining blocks is fine-tuned for the categories
    and, for an ``imagenet`` or ``both`` embedding, a frozen copy keeps ImageNet's features,
    which tell one garment from another far better than features trained to tell categories
    apart (see the card's embedding choice). Training builds the classifier alone.
    """
    from ..nets.mobilenet_v2 import LAST_BLOCK, load_torchvision_weights, mobilenet_v2_blocks, torchvision_scaling

    inputs = keras.Input((input_size, input_size, 3), name="image")
    stem = mobilenet_v2_blocks(torchvision_scaling()(inputs), 0, recipe.frozen_blocks - 1)
    tuned = layers.GlobalAveragePooling2D(name="pool")(
        mobilenet_v2_blocks(stem, recipe.frozen_blocks, LAST_BLOCK))
    probs = layers.Dense(num_classes, activation="softmax", name="probs")(
        layers.Dropout(recipe.dropout, name="head_dropout")(tuned))
    features = [tuned] if recipe.embedding in ("finetuned", "both") or not serving else []
    if serving and recipe.embedding in ("imagenet", "both"):
        features.append(imagenet_branch(inputs, stem, recipe))
    if len(features) > 1:  # each part unit-length first, so both weigh the same in the cosine
        features = [layers.Concatenate(name="joined")(
            [layers.UnitNormalization(name=f"part{i}")(f) for i, f in enumerate(features)])]
    embedding = layers.UnitNormalization(name="embedding")(features[0])
    model = keras.Model(inputs, [probs, embedding], name="photos_mobilenet_v2")
    if weights is not None:
        load_torchvision_weights(model, weights, require_all=False)
        if IMAGENET_PREFIX + "pool" in {layer.name for layer in model.layers}:
            load_torchvision_weights(model, weights, prefix=IMAGENET_PREFIX, require_all=False)
    for layer in model.layers:
        parts = layer.name.removeprefix(IMAGENET_PREFIX).split(".")
        if layer.name.startswith(IMAGENET_PREFIX) or (parts[0] == "features" and int(parts[1]) < recipe.frozen_blocks):
            layer.trainable = False
        if isinstance(layer, layers.BatchNormalization) and not recipe.train_bn:
            layer.trainable = False
    return model


def imagenet_branch(inputs, stem, recipe: PhotoRecipe):
    """Frozen ImageNet MobileNetV2 features of the photo, at ``recipe.imagenet_size`` pixels.

    At the serving size it shares the frozen stem; smaller, it sees its own resized copy of the
    photo (bilinear), which costs far less (the embedding choice in the card measured it).
    """
    from ..nets.mobilenet_v2 import LAST_BLOCK, mobilenet_v2_blocks, torchvision_scaling

    if recipe.imagenet_size == recipe.input_size:
        x = mobilenet_v2_blocks(stem, recipe.frozen_blocks, LAST_BLOCK, prefix=IMAGENET_PREFIX)
    else:
        size = recipe.imagenet_size
        small = layers.Resizing(size, size, interpolation="bilinear", name=IMAGENET_PREFIX + "resize")(inputs)
        x = mobilenet_v2_blocks(torchvision_scaling(IMAGENET_PREFIX + "scaling")(small), 0, LAST_BLOCK,
                                prefix=IMAGENET_PREFIX)
    return layers.GlobalAveragePooling2D(name=IMAGENET_PREFIX + "pool")(x)


def train_photos(out: Path, recipe: PhotoRecipe = PhotoRecipe(), weights_file: str | None = None,
                 limit: int | None = None, data: Path | None = None) -> dict:
    """Fine-tune on the train split, watch validation, then publish the model at the serving size.

    ``data``: a shop's own folder of category sub-folders (app/photo_dataset.py: folder_splits)
    instead of the committed clothing photos; its sub-folders name the model's categories.
    """
    from ..nets.torch_weights import mobilenet_v2_weights, read_state_dict

    keras.utils.set_random_seed(recipe.seed)
    if data is not None:
        class_names, splits = folder_splits(data)
    else:
        class_names, splits = CLASS_NAMES, {name: load_photos(name) for name in ("train", "validation", "test")}
    weights_path = mobilenet_v2_weights(weights_file)
    if limit:  # a quick check of the whole run: a spread of every split
        splits = {name: spread(photos, limit) for name, photos in splits.items()}
    train, validation = splits["train"], splits["validation"]
    state = read_state_dict(weights_path)
    net = build_photo_model(recipe, state, input_size=None, num_classes=len(class_names), serving=False)
    classifier = keras.Model(net.input, net.outputs[0])
    steps = int(np.ceil(len(train) / recipe.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(
        recipe.peak_lr / 20, decay_steps=max(1, steps * recipe.epochs - steps), alpha=0.0,
        warmup_target=recipe.peak_lr, warmup_steps=steps)
    classifier.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=recipe.weight_decay),
                       loss=smoothed_loss(recipe.label_smoothing, len(class_names)),
                       metrics=["sparse_categorical_accuracy"], jit_compile=False)
    x_val = model_inputs(validation, recipe.input_size)
    print(f"Fine-tuning MobileNetV2 on {len(train)} photos of {len(class_names)} categories ({recipe.epochs} epochs, "
          f"{recipe.train_size}-px crops), validating on {len(validation)} at {recipe.input_size} px", flush=True)
    start = time.time()
    history = classifier.fit(
        training_stream(train, recipe), steps_per_epoch=steps, epochs=recipe.epochs,
        validation_data=finite(x_val, validation.labels), verbose=1 if sys.stdout.isatty() else 2).history
    notes = {"data": {"folder": str(data), "split": "per category: 10% validation, 10% test (at least one each), "
                                                      "chosen by the SHA-256 of each photo's path"}} if data else None
    return publish(net, state, recipe, out, history, time.time() - start, splits, notes, class_names)


def serving_model(trained: keras.Model, imagenet: dict[str, np.ndarray], recipe: PhotoRecipe,
                  num_classes: int = len(CLASS_NAMES)) -> keras.Model:
    """The trained classifier's weights, plus the frozen ImageNet branch, at the serving size."""
    serving = build_photo_model(recipe, imagenet, input_size=recipe.input_size, num_classes=num_classes)
    trained_layers = {layer.name: layer for layer in trained.layers}
    for layer in serving.layers:
        if layer.name in trained_layers and layer.weights:
            layer.set_weights(trained_layers[layer.name].get_weights())
    return serving


def publish(trained: keras.Model, imagenet: dict[str, np.ndarray], recipe: PhotoRecipe, out: Path, history: dict,
            train_seconds: float, splits: dict[str, PhotoSet], notes: dict | None = None,
            class_names: tuple[str, ...] = CLASS_NAMES) -> dict:
    """The trained weights at the serving size: saved, converted, measured on validation and (once) on test,
    soft mode tuned on validation, and the card that says all of it."""
    from ..nets.torch_weights import MOBILENET_V2_FILE, MOBILENET_V2_SHA256
    from .cards import confusion, environment, save_card, save_model

    serving = serving_model(trained, imagenet, recipe, len(class_names))
    train, validation, test = splits["train"], splits["validation"], splits["test"]
    y_val = predict(serving, model_inputs(validation, recipe.input_size))
    y_test = predict(serving, model_inputs(test, recipe.input_size))
    card = {
        "name": out.stem, "file": out.name,
        "architecture": "MobileNetV2 (torchvision layout, ImageNet weights): blocks 0-"
                        f"{recipe.frozen_blocks - 1} shared and frozen, then a fine-tuned copy of the rest + "
                        f"dropout + softmax {len(class_names)} (the classifier)"
                        + {"finetuned": "; embedding = its unit-normalised 1280-d pooled features",
                           "imagenet": ", and a frozen ImageNet copy whose unit-normalised 1280-d pooled "
                                       "features are the embedding",
                           "both": ", and a frozen ImageNet copy; embedding = the unit-normalised pooled features "
                                   "of both copies, each unit-length, side by side (2,560-d)"}[recipe.embedding],
        "parameters": int(serving.count_params()),
        "inputs": f"{recipe.input_size}x{recipe.input_size}x3 RGB, 0-255 (ImageNet scaling is inside the model); "
                  "photos are scaled so the shorter side fits and centre-cropped square (app/imaging/photo.py)",
        "outputs": {"probs": len(class_names), "embedding": int(serving.output_shape[1][-1])},
        "class_names": list(class_names),
        "weights": {"source": "torchvision ImageNet MobileNetV2 (BSD-3-Clause)", "file": MOBILENET_V2_FILE,
                    "sha256": MOBILENET_V2_SHA256},
        "training": {"images": len(train), "split": "train", **asdict(recipe),
                     "optimizer": f"AdamW (weight decay {recipe.weight_decay:g}), 1 epoch warm-up to "
                                  f"{recipe.peak_lr:g}, cosine to 0",
                     "augmentation": f"random resized crop (area {recipe.min_crop:g}-1, aspect 3/4-4/3), "
                                     "horizontal flip, brightness/contrast/saturation jitter",
                     "train_seconds": round(train_seconds, 1)},
        "validation_accuracy": float(np.mean(y_val == validation.labels)),
        "test_accuracy": float(np.mean(y_test == test.labels)),
        "confusion_matrix_test": confusion(test.labels, y_test, len(class_names)).tolist(),
        "history": {k: [round(float(v), 5) for v in vals] for k, vals in history.items()},
        **(notes or {}),
        "environment": environment(),
    }
    save_model(serving, out, card, history, validation_label="validation")
    card.update(tune_soft_routing_for(out.with_suffix(".tflite"), train, validation, class_names))
    save_card(card, out)
    print(f"Done in {train_seconds / 60:.1f} min: validation accuracy {card['validation_accuracy']:.4f}, "
          f"test accuracy {card['test_accuracy']:.4f}; saved {out}", flush=True)
    return card


def served_outputs(model_path: Path, photos: PhotoSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probabilities, embeddings, labels) of photos through the serving model, as uploads go."""
    from ..runtime import open_model

    model = open_model(model_path, threads=2)
    inputs = np.stack([model.prepare(model.decode(photos.read(i), 40_000_000)) for i in range(len(photos))])
    probs, embeddings = model(inputs)
    return probs, embeddings, photos.labels


def tune_soft_routing_for(model_path: Path, train: PhotoSet, validation: PhotoSet,
                          class_names: tuple[str, ...] = CLASS_NAMES) -> dict:
    """Soft mode's settings for this model, and the mode catalogs search by default: whichever of soft and
    routed did better on validation queries against a catalog of the training photos."""
    from ..catalog import default_mode
    from .soft_routing import tune_soft_routing

    tuned = tune_soft_routing(class_names, served_outputs(model_path, train), served_outputs(model_path, validation))
    t = tuned["tuning"]
    print(f"soft mode tuned on validation: threshold {tuned['soft_routing']['threshold']}, evidence weight "
          f"{tuned['soft_routing']['evidence_weight']} (precision@20 {t['precision_soft']:.4f}, routed "
          f"{t['precision_routed']:.4f})", flush=True)
    return {"soft_routing": tuned["soft_routing"], "soft_routing_tuning": t,
            "default_mode": default_mode({"soft_routing_tuning": t})}


def spread(photos: PhotoSet, n: int) -> PhotoSet:
    """``n`` photos taken evenly through the set (so every category is in a quick run)."""
    rows = np.linspace(0, len(photos) - 1, min(n, len(photos))).astype(int)
    return PhotoSet(photos.root, tuple(photos.paths[i] for i in rows), photos.labels[rows])


def smoothed_loss(smoothing: float, num_classes: int):
    """Sparse cross-entropy with label smoothing (Keras' sparse loss has no smoothing option)."""
    base = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)

    def loss(y_true, y_pred):
        return base(keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"), num_classes),
                    y_pred)

    return loss


def finite(x: np.ndarray, y: np.ndarray, batch_size: int = 64):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y.astype("int32"))).batch(batch_size)


def predict(net: keras.Model, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Predicted classes through a compiled function (eager calls of this network were 10x slower here)."""
    import tensorflow as tf

    forward = tf.function(lambda t: net(t, training=False)[0])
    return np.concatenate([forward(x[i:i + batch_size]).numpy().argmax(1) for i in range(0, len(x), batch_size)])


if __name__ == "__main__":  # probes: python -m app.training.photos OUT key=value ...
    defaults = asdict(PhotoRecipe())
    overrides = dict(arg.split("=", 1) for arg in sys.argv[2:])
    recipe = PhotoRecipe(**{k: (v == "True") if isinstance(defaults[k], bool) else type(defaults[k])(v)
                            for k, v in overrides.items()})
    print(json.dumps(asdict(recipe)))
    train_photos(Path(sys.argv[1]), recipe)
