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
from ..photo_dataset import CLASS_NAMES, PhotoSet, load_photos


@dataclass(frozen=True)
class PhotoRecipe:
    input_size: int = 224     # serving size: the saved model's input
    train_size: int = 160     # random crops are resized to this while training
    epochs: int = 15
    batch_size: int = 32
    peak_lr: float = 1e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    frozen_blocks: int = 4    # torchvision features.0 .. features.{n-1} keep their ImageNet weights
    train_bn: bool = True     # batch norm of the trained blocks updates its statistics
    min_crop: float = 0.3     # smallest crop, as a share of the photo's area
    dropout: float = 0.2
    seed: int = 16


def decode_and_augment(data, label, size: int, min_crop: float, seed: int):
    """JPEG bytes to one augmented training image (RGB 0-255 float) in the TensorFlow graph."""
    import tensorflow as tf

    image = tf.io.decode_jpeg(data, channels=3)
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


def build_photo_model(recipe: PhotoRecipe, weights: dict[str, np.ndarray] | None, input_size: int | None,
                      num_classes: int = len(CLASS_NAMES)) -> keras.Model:
    """MobileNetV2 features -> softmax head; embedding = the unit-normalised 1280-d pooled features."""
    from ..nets.mobilenet_v2 import load_torchvision_weights, mobilenet_v2_features

    backbone = mobilenet_v2_features(input_size)
    if weights is not None:
        load_torchvision_weights(backbone, weights)
    for layer in backbone.layers:
        parts = layer.name.split(".")
        if parts[0] == "features" and int(parts[1]) < recipe.frozen_blocks:
            layer.trainable = False
        if isinstance(layer, layers.BatchNormalization) and not recipe.train_bn:
            layer.trainable = False
    features = backbone.output
    dropped = layers.Dropout(recipe.dropout, name="head_dropout")(features)
    probs = layers.Dense(num_classes, activation="softmax", name="probs")(dropped)
    embedding = layers.UnitNormalization(name="embedding")(features)
    return keras.Model(backbone.input, [probs, embedding], name="photos_mobilenet_v2")


def train_photos(out: Path, recipe: PhotoRecipe = PhotoRecipe(), weights_file: str | None = None,
                 limit: int | None = None) -> dict:
    """Fine-tune on the train split, watch validation, save the model at the serving size with its card."""
    from ..nets.torch_weights import MOBILENET_V2_SHA256, mobilenet_v2_weights, read_state_dict
    from .cards import confusion, environment, save_model

    keras.utils.set_random_seed(recipe.seed)
    weights_path = mobilenet_v2_weights(weights_file)
    train, validation = load_photos("train"), load_photos("validation")
    if limit:
        train = PhotoSet(train.root, train.paths[::max(1, len(train) // limit)][:limit],
                         train.labels[::max(1, len(train) // limit)][:limit])
    net = build_photo_model(recipe, read_state_dict(weights_path), input_size=None)
    classifier = keras.Model(net.input, net.outputs[0])
    steps = int(np.ceil(len(train) / recipe.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(
        recipe.peak_lr / 20, decay_steps=max(1, steps * recipe.epochs - steps), alpha=0.0,
        warmup_target=recipe.peak_lr, warmup_steps=steps)
    classifier.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=recipe.weight_decay),
                       loss=smoothed_loss(recipe.label_smoothing, len(CLASS_NAMES)),
                       metrics=["sparse_categorical_accuracy"], jit_compile=False)
    x_val = model_inputs(validation, recipe.input_size)
    print(f"Fine-tuning MobileNetV2 on {len(train)} photos ({recipe.epochs} epochs, {recipe.train_size}-px crops), "
          f"validating on {len(validation)} at {recipe.input_size} px", flush=True)
    start = time.time()
    history = classifier.fit(
        training_stream(train, recipe), steps_per_epoch=steps, epochs=recipe.epochs,
        validation_data=finite(x_val, validation.labels), verbose=1 if sys.stdout.isatty() else 2).history
    train_seconds = time.time() - start

    serving = build_photo_model(recipe, None, input_size=recipe.input_size)
    serving.set_weights(net.get_weights())
    test = load_photos("test")
    y_val = predict(serving, x_val)
    y_test = predict(serving, model_inputs(test, recipe.input_size))
    card = {
        "name": out.stem, "file": out.name,
        "architecture": "MobileNetV2 (torchvision layout, ImageNet weights) + dropout + softmax 10; "
                        "embedding = unit-normalised 1280-d global-average-pooled features",
        "parameters": int(serving.count_params()),
        "inputs": f"{recipe.input_size}x{recipe.input_size}x3 RGB, 0-255 (ImageNet scaling is inside the model); "
                  "photos are resized to the square whole (app/imaging/photo.py)",
        "outputs": {"probs": len(CLASS_NAMES), "embedding": int(serving.output_shape[1][-1])},
        "class_names": list(CLASS_NAMES),
        "weights": {"source": "torchvision ImageNet MobileNetV2 (BSD-3-Clause)", "file": weights_path.name,
                    "sha256": MOBILENET_V2_SHA256},
        "training": {"images": len(train), "split": "train", **asdict(recipe),
                     "optimizer": f"AdamW (weight decay {recipe.weight_decay:g}), 1 epoch warm-up to "
                                  f"{recipe.peak_lr:g}, cosine to 0",
                     "augmentation": f"random resized crop (area {recipe.min_crop:g}-1, aspect 3/4-4/3), "
                                     "horizontal flip, brightness/contrast/saturation jitter",
                     "train_seconds": round(train_seconds, 1)},
        "validation_accuracy": float(np.mean(y_val == validation.labels)),
        "test_accuracy": float(np.mean(y_test == test.labels)),
        "confusion_matrix_test": confusion(test.labels, y_test, len(CLASS_NAMES)).tolist(),
        "history": {k: [round(float(v), 5) for v in vals] for k, vals in history.items()},
        "environment": environment(),
    }
    save_model(serving, out, card, history, validation_label="validation")
    print(f"Done in {train_seconds / 60:.1f} min: validation accuracy {card['validation_accuracy']:.4f}, "
          f"test accuracy {card['test_accuracy']:.4f}; saved {out}", flush=True)
    return card


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


def predict(net: keras.Model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    return np.concatenate([keras.ops.convert_to_numpy(net(x[i:i + batch_size], training=False)[0]).argmax(1)
                           for i in range(0, len(x), batch_size)])


if __name__ == "__main__":  # probes: python -m app.training.photos OUT key=value ...
    defaults = asdict(PhotoRecipe())
    overrides = dict(arg.split("=", 1) for arg in sys.argv[2:])
    recipe = PhotoRecipe(**{k: (v == "True") if isinstance(defaults[k], bool) else type(defaults[k])(v)
                            for k, v in overrides.items()})
    print(json.dumps(asdict(recipe)))
    train_photos(Path(sys.argv[1]), recipe)
