"""The photo catalog's model: ImageNet MobileNetV2 fine-tuned to see the garment, not the room.

Recipe (every choice made on the validation split; the test split is measured once, at the
end; the card records each choice and its numbers):

- torchvision's ImageNet MobileNetV2, the first blocks frozen, AdamW with a warm-up and cosine
  decay, label smoothing, random resized crops at a training size below the serving size.
- **Backgrounds replaced**: with U-2-Net-p garment masks computed once (app/training/masks.py),
  most training photos show their garment composited on another background (a magnified patch
  of another photo: floors, beds, fabrics; a blurred room; a flat or graded wall), sometimes
  smaller in a wider frame, sometimes turned 90 degrees; brightness and contrast vary, hue
  never (colour is what a shopper looks for).
- **A mask head** (app/nets/garment.py), trained against those masks, weighs the pooled features:
  the classifier and the embedding see the garment's cells, at no query cost.
- **Garment features distilled**: a head learns to give, from any photo of a garment, the frozen
  ImageNet features of that garment alone on a plain background (computed once per training
  photo): the features that tell one garment from another, without the room.
- **The embedding** joins the parts the card's choice kept, each unit-length and weighted:
  the fine-tuned garment-pooled features, the distilled garment features, and a garment-weighted
  colour histogram; a fixed projection (PCA of the training photos' embeddings) makes it compact.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..nets.layers import keras, layers
from ..photo_dataset import CLASS_NAMES, PhotoSet, folder_splits, load_photos

GREY = (124.0, 116.0, 104.0)  # ImageNet's mean colour: the plain background of the teacher's garment views


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
    min_crop: float = 0.5     # smallest crop, as a share of the photo's area (0.5 over 0.3: see the card)
    dropout: float = 0.2
    # garment-first training (needs masks; without them the recipe trains the classifier alone)
    background_p: float = 0.6   # share of training photos whose background is replaced
    zoom_out: float = 1.6       # a replaced background may frame the garment up to this much wider
    rotate_p: float = 0.1       # share of training photos turned 90 degrees (phones)
    tilt_p: float = 0.3         # share tilted a little (a phone held askew), up to tilt_degrees either way
    tilt_degrees: float = 10.0
    soften_p: float = 0.4       # share made soft: shrunk to 30-80% and enlarged again (blur, a small photo)
    jpeg_p: float = 0.3         # share recompressed as JPEG, quality 50-90
    mask_weight: float = 0.5    # loss weight of the mask head (binary cross-entropy at stride 16)
    garment_dim: int = 512      # distilled garment features (PCA of the teacher's features)
    garment_weight: float = 1.0  # loss weight of the distillation (1 - cosine)
    # the served embedding (chosen after training, on validation: see the card's embedding_choice)
    parts: tuple[tuple[str, float], ...] = (("tuned", 1.0), ("imagenet", 1.0), ("colour", 0.7))
    colour_bins: int = 5
    colour_power: float = 2.0   # the mask is squared before it weighs the colour histogram
    cutout_edges: tuple[float, float] = (0.0, 1.0)  # mask values mapped to 0 and 1 before cutting the garment out
    embedding_dim: int = 512    # PCA inside the model; 0 keeps the joined parts as they are
    quantize: bool = True       # serve the full-integer int8 conversion
    seed: int = 16
    notes: dict = field(default_factory=dict, compare=False, repr=False)


# ---------------------------------------------------------------- data


def photo_and_mask(img, mask: np.ndarray | None, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The served input (app/imaging/photo.py) and the mask cropped the same way (0-1, size x size)."""
    from PIL import Image

    from ..imaging.modes import as_image, flatten
    from ..imaging.photo import photo_input

    x = photo_input(img, size)
    if mask is None:
        return x, None
    rgb = flatten(as_image(img), side=4 * size)
    scale = size / min(rgb.size)
    w, h = max(size, round(rgb.width * scale)), max(size, round(rgb.height * scale))
    m = Image.fromarray(mask).resize((w, h), Image.Resampling.BILINEAR)
    left, top = (w - size) // 2, (h - size) // 2
    return x, np.asarray(m.crop((left, top, left + size, top + size)), np.float32) / 255.0


def served_inputs(photos: PhotoSet, size: int, masks: np.ndarray | None = None):
    """Photos as serving prepares them (the same function), and their masks cropped alike."""
    from ..imaging.decode import decode

    pairs = [photo_and_mask(decode(photos.read(i)), None if masks is None else masks[i], size)
             for i in range(len(photos))]
    x = np.stack([p[0] for p in pairs])
    return x, (None if masks is None else np.stack([p[1] for p in pairs]))


def grid_masks(masks: np.ndarray, cells: int) -> np.ndarray:
    """(n, size, size) masks averaged onto the mask head's (n, cells, cells, 1) grid."""
    n, size, _ = masks.shape
    f = size // cells
    return masks[:, :cells * f, :cells * f].reshape(n, cells, f, cells, f).mean((2, 4))[..., None]


def decode_and_augment(data, label, mask, target, other, recipe: PhotoRecipe, cells: int):
    """One training example in the TensorFlow graph: JPEG bytes (and its mask) to an augmented crop
    (RGB 0-255 float), its label, its mask on the head's grid and its garment target.

    ``other`` is another photo's JPEG: the source of replaced backgrounds."""
    import tensorflow as tf

    image = tf.cast(tf.io.decode_image(data, channels=3, expand_animations=False), tf.float32)  # JPEG, PNG, GIF
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    m = tf.image.resize(tf.cast(mask, tf.float32)[..., None] / 255.0, (h, w), method="bilinear")
    if recipe.background_p > 0:
        image, m = tf.cond(tf.random.uniform(()) < recipe.background_p,
                           lambda: replace_background(image, m, other, recipe.zoom_out),
                           lambda: (image, m))
    both = tf.concat([image, m], -1)
    begin, extent, _ = tf.image.sample_distorted_bounding_box(
        tf.shape(both), tf.zeros((1, 0, 4)), min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(recipe.min_crop, 1.0), max_attempts=20, use_image_if_no_bounding_boxes=True)
    both = tf.image.resize(tf.slice(both, begin, extent), (recipe.train_size, recipe.train_size), antialias=True)
    both = tf.image.random_flip_left_right(both)
    if recipe.rotate_p > 0:
        turns = tf.where(tf.random.uniform(()) < recipe.rotate_p,
                         tf.random.uniform((), 0, 2, tf.int32) * 2 + 1, 0)  # 90 or 270 degrees
        both = tf.image.rot90(both, turns)
    if recipe.tilt_p > 0:
        both = tf.cond(tf.random.uniform(()) < recipe.tilt_p, lambda: tilt(both, recipe.tilt_degrees), lambda: both)
    image, m = both[..., :3], both[..., 3:]
    image = tf.image.random_brightness(image, 0.15 * 255)
    image = tf.image.random_contrast(image, 0.8, 1.2)
    image = tf.clip_by_value(tf.image.random_saturation(image, 0.85, 1.15), 0.0, 255.0)
    if recipe.soften_p > 0:
        image = tf.cond(tf.random.uniform(()) < recipe.soften_p, lambda: soften(image), lambda: image)
    if recipe.jpeg_p > 0:
        image = tf.cond(tf.random.uniform(()) < recipe.jpeg_p, lambda: recompress(image), lambda: image)
    m = tf.image.resize(m, (cells, cells), method="area")
    return image, {"probs": label, "mask.logits": m, "garment": target}


def tilt(both, degrees: float):
    """A square image (and its mask channel) turned by a random angle of up to ``degrees``, edges mirrored."""
    import tensorflow as tf

    angle = tf.random.uniform((), -degrees, degrees) * (np.pi / 180.0)
    c, s = tf.cos(angle), tf.sin(angle)
    centre = (tf.cast(tf.shape(both)[0], tf.float32) - 1.0) / 2.0
    # output (x, y) reads input (c x - s y + tx, s x + c y + ty): a turn about the centre
    transform = tf.stack([c, -s, centre - c * centre + s * centre, s, c, centre - s * centre - c * centre, 0.0, 0.0])
    turned = tf.raw_ops.ImageProjectiveTransformV3(
        images=both[None], transforms=transform[None], output_shape=tf.shape(both)[:2], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="REFLECT")[0]
    return tf.ensure_shape(turned, both.shape)


def soften(image):
    """Shrunk to 30-80% and enlarged again: the blur and lost detail of a small or unsteady phone photo."""
    import tensorflow as tf

    size = image.shape[0]
    side = tf.cast(tf.random.uniform((), 0.3, 0.8) * size, tf.int32)
    small = tf.image.resize(image, (side, side), antialias=True)
    return tf.ensure_shape(tf.image.resize(small, (size, size), method="bilinear"), image.shape)


def recompress(image):
    """Saved as JPEG at quality 50-90 and read back (0-255 float in and out)."""
    import tensorflow as tf

    quality = tf.random.uniform((), 50, 91, tf.int32)
    out = tf.image.adjust_jpeg_quality(tf.cast(tf.round(image), tf.uint8), quality)
    return tf.ensure_shape(tf.cast(out, tf.float32), image.shape)


def replace_background(image, m, other, zoom_out: float):
    """The garment (image x mask) on another background, sometimes framed wider; returns (image, mask)."""
    import tensorflow as tf

    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    scale = tf.where(tf.random.uniform(()) < 0.5, tf.random.uniform((), 1.0, zoom_out), 1.0)
    ch = tf.cast(tf.cast(h, tf.float32) * scale, tf.int32)
    cw = tf.cast(tf.cast(w, tf.float32) * scale, tf.int32)
    top = tf.random.uniform((), 0, ch - h + 1, tf.int32)
    left = tf.random.uniform((), 0, cw - w + 1, tf.int32)
    image = tf.image.pad_to_bounding_box(image, top, left, ch, cw)
    m = tf.image.pad_to_bounding_box(m, top, left, ch, cw)
    bg = background(other, ch, cw)
    return image * m + bg * (1.0 - m), m


def background(other, h, w):
    """A plausible background of h x w: a magnified patch of another photo (floor, bed, fabric),
    that photo blurred to a room, or a flat wall with a gradient and sensor noise."""
    import tensorflow as tf

    photo = tf.cast(tf.io.decode_image(other, channels=3, expand_animations=False), tf.float32)
    kind = tf.random.uniform((), 0, 3, tf.int32)

    def patch():
        begin, extent, _ = tf.image.sample_distorted_bounding_box(
            tf.shape(photo), tf.zeros((1, 0, 4)), min_object_covered=0.0, aspect_ratio_range=(1 / 2, 2),
            area_range=(0.05, 0.3), max_attempts=10, use_image_if_no_bounding_boxes=True)
        return tf.image.resize(tf.slice(photo, begin, extent), (h, w))

    def blurred():
        small = tf.image.resize(photo, (8, 8), antialias=True)
        return tf.image.resize(small, (h, w), method="bicubic")

    def wall():
        colour = tf.random.uniform((1, 1, 3), 0.0, 255.0)
        ramp = tf.linspace(-1.0, 1.0, h)[:, None, None] * tf.random.uniform((), -40.0, 40.0)
        noise = tf.random.normal((h, w, 3)) * tf.random.uniform((), 0.0, 10.0)
        return colour + ramp + noise

    return tf.clip_by_value(tf.switch_case(kind, [patch, blurred, wall]), 0.0, 255.0)


def training_stream(photos: PhotoSet, recipe: PhotoRecipe, masks: np.ndarray | None, targets: np.ndarray | None):
    """Endless shuffled batches of augmented crops; the JPEG bytes are read once into memory."""
    import tensorflow as tf

    files = [photos.read(i) for i in range(len(photos))]
    cells = recipe.train_size // 16
    if masks is None:  # no masks: the classifier alone, on the photos as they are
        blank = np.full((len(files), 2, 2), 255, np.uint8)
        plain = replace(recipe, background_p=0.0)
        ds = tf.data.Dataset.from_tensor_slices((files, photos.labels.astype("int32"), blank,
                                                 np.zeros((len(files), recipe.garment_dim), np.float32)))
        ds = tf.data.Dataset.zip((ds.shuffle(len(files), seed=recipe.seed, reshuffle_each_iteration=True),
                                  tf.data.Dataset.from_tensor_slices(files).repeat()))
        ds = ds.map(lambda a, o: decode_and_augment(*a, o, plain, cells), num_parallel_calls=2)
        ds = ds.map(lambda x, y: (x, y["probs"]))
        return ds.batch(recipe.batch_size).repeat().prefetch(2)
    main = tf.data.Dataset.from_tensor_slices((files, photos.labels.astype("int32"), masks, targets))
    main = main.shuffle(len(files), seed=recipe.seed, reshuffle_each_iteration=True)
    others = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files), seed=recipe.seed + 1,
                                                               reshuffle_each_iteration=True)
    ds = tf.data.Dataset.zip((main.repeat(), others.repeat()))
    ds = ds.map(lambda a, o: decode_and_augment(*a, o, recipe, cells), num_parallel_calls=2)
    return ds.batch(recipe.batch_size).prefetch(2)


# ---------------------------------------------------------------- networks

IMAGENET_PREFIX = "imagenet."
CUTOUT_PREFIX = "cutout."
CUTOUT_SIZE = 128
STRIDE16_BLOCK = 13  # features.13: the last block at stride 16 (96 channels)


def backbone(inputs, recipe: PhotoRecipe):
    """(stride-16 features, last features) of the fine-tuned MobileNetV2."""
    from ..nets.mobilenet_v2 import LAST_BLOCK, mobilenet_v2_blocks, torchvision_scaling

    x = mobilenet_v2_blocks(torchvision_scaling()(inputs), 0, STRIDE16_BLOCK)
    return x, mobilenet_v2_blocks(x, STRIDE16_BLOCK + 1, LAST_BLOCK)


def build_training_model(recipe: PhotoRecipe, weights: dict[str, np.ndarray] | None, with_mask: bool = True,
                         num_classes: int = len(CLASS_NAMES)) -> keras.Model:
    """Any input size; outputs probs, and with masks the mask logits and the garment features."""
    from ..nets.garment import mask_head
    from ..nets.layers import MaskedPooling
    from ..nets.mobilenet_v2 import load_torchvision_weights

    inputs = keras.Input((None, None, 3), name="image")
    s16, top = backbone(inputs, recipe)
    if with_mask:
        logits = mask_head(s16, top)
        cells = layers.AveragePooling2D(2, name="mask.pool")(layers.Activation("sigmoid", name="mask")(logits))
        pooled = MaskedPooling(name="pool")([top, cells])
    else:
        pooled = layers.GlobalAveragePooling2D(name="pool")(top)
    probs = layers.Dense(num_classes, activation="softmax", name="probs")(
        layers.Dropout(recipe.dropout, name="head_dropout")(pooled))
    outputs = [probs]
    if with_mask:
        outputs += [logits, layers.Dense(recipe.garment_dim, use_bias=False, name="garment")(pooled)]
    model = keras.Model(inputs, outputs, name="photos_mobilenet_v2")
    if weights is not None:
        load_torchvision_weights(model, weights, require_all=False)
    for layer in model.layers:
        parts = layer.name.split(".")
        if parts[0] == "features" and int(parts[1]) < recipe.frozen_blocks:
            layer.trainable = False
        if isinstance(layer, layers.BatchNormalization) and not recipe.train_bn:
            layer.trainable = False
    return model


def teacher_model(size: int, weights: dict[str, np.ndarray]) -> keras.Model:
    """Frozen ImageNet MobileNetV2: 1280-d pooled features (the garment features' teacher)."""
    from ..nets.mobilenet_v2 import load_torchvision_weights, mobilenet_v2_features

    net = mobilenet_v2_features(size, name="teacher")
    load_torchvision_weights(net, weights, require_all=False)
    return net


def garment_views(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Photos with everything but the garment painted plain grey."""
    return x * m[..., None] + np.asarray(GREY, np.float32) * (1.0 - m[..., None])


def teacher_features(teacher: keras.Model, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The teacher's features of each garment alone, averaged with its mirror image."""
    views = garment_views(x, m)
    return (batched(teacher, views) + batched(teacher, views[:, :, ::-1])) / 2


@dataclass(frozen=True)
class Projection:
    """A fixed linear map (x - mean) @ components: PCA fitted on training data."""

    mean: np.ndarray
    components: np.ndarray  # (dim_in, dim_out)

    @classmethod
    def fit(cls, x: np.ndarray, dim: int) -> Projection:
        """The ``dim`` main directions of ``x`` (zero columns beyond its rank: a quick run's few photos)."""
        mean = x.mean(0)
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        components = np.zeros((x.shape[1], dim), np.float32)
        components[:, :min(dim, len(vt))] = vt[:dim].T
        return cls(mean.astype(np.float32), components)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) @ self.components

    def layer(self, name: str) -> layers.Dense:
        dense = layers.Dense(self.components.shape[1], name=name)
        dense.build((None, self.components.shape[0]))
        dense.set_weights([self.components, -self.mean @ self.components])
        return dense


def build_serving_model(trained: keras.Model, recipe: PhotoRecipe, imagenet: dict[str, np.ndarray] | None = None,
                        projection: Projection | None = None, probe: bool = False) -> keras.Model:
    """The trained network at the serving size with the embedding ``recipe.parts`` asks for.

    Parts: ``tuned`` (the fine-tuned garment-pooled features, 1280-d), ``garment`` (the distilled
    garment features), ``colour`` (the garment-weighted colour histogram), ``imagenet`` (a frozen
    ImageNet copy at 128 px, garment-pooled: needs ``imagenet`` weights). Each part is unit-length,
    then weighted; ``projection`` (PCA) follows. ``probe`` gives every part as its own output
    instead (for choosing the parts on validation).
    """
    from ..nets.garment import mask_head
    from ..nets.layers import ColourHistogram, Cutout, MaskedPooling
    from ..nets.mobilenet_v2 import LAST_BLOCK, load_torchvision_weights, mobilenet_v2_blocks, torchvision_scaling

    size = recipe.input_size
    inputs = keras.Input((size, size, 3), name="image")
    s16, top = backbone(inputs, recipe)
    mask = layers.Activation("sigmoid", name="mask")(mask_head(s16, top))
    pooled = MaskedPooling(name="pool")([top, layers.AveragePooling2D(2, name="mask.pool")(mask)])
    probs = layers.Dense(trained.get_layer("probs").units, activation="softmax", name="probs")(pooled)
    garment = layers.Dense(recipe.garment_dim, use_bias=False, name="garment")(pooled)
    weights = dict(recipe.parts)
    parts = {"tuned": pooled, "garment": garment}
    if probe or "colour" in weights:
        parts["colour"] = ColourHistogram(recipe.colour_bins, power=recipe.colour_power, name="colour")([inputs, mask])
    if probe or "imagenet" in weights:
        small = layers.Resizing(128, 128, interpolation="bilinear", name=IMAGENET_PREFIX + "resize")(inputs)
        feats = mobilenet_v2_blocks(torchvision_scaling(IMAGENET_PREFIX + "scaling")(small), 0, LAST_BLOCK,
                                    prefix=IMAGENET_PREFIX)
        cells = layers.AveragePooling2D(size // 16 // feats.shape[1], name=IMAGENET_PREFIX + "mask")(mask)
        parts["imagenet"] = MaskedPooling(name=IMAGENET_PREFIX + "pool")([feats, cells])
    if probe or "cutout" in weights:  # frozen ImageNet features of the garment cut out by the model's own mask
        small = layers.Resizing(CUTOUT_SIZE, CUTOUT_SIZE, interpolation="bilinear", name=CUTOUT_PREFIX + "resize")(
            inputs)
        cut = Cutout(GREY, *recipe.cutout_edges, name=CUTOUT_PREFIX + "paint")([small, mask])
        feats = mobilenet_v2_blocks(torchvision_scaling(CUTOUT_PREFIX + "scaling")(cut), 0, LAST_BLOCK,
                                    prefix=CUTOUT_PREFIX)
        parts["cutout"] = layers.GlobalAveragePooling2D(name=CUTOUT_PREFIX + "pool")(feats)
    if probe:
        parts["tuned_gap"] = layers.GlobalAveragePooling2D(name="gap")(top)  # the same features, not garment-weighted
        model = keras.Model(inputs, {"probs": probs, "mask": mask, **parts}, name="photos_probe")
    else:
        joined = [layers.Rescaling(w, name=f"weight.{p}")(layers.UnitNormalization(name=f"unit.{p}")(parts[p]))
                  for p, w in recipe.parts if w > 0]
        x = joined[0] if len(joined) == 1 else layers.Concatenate(name="joined")(joined)
        if projection is not None:
            x = projection.layer("projection")(x)
        model = keras.Model(inputs, [probs, layers.UnitNormalization(name="embedding")(x)],
                            name="photos_mobilenet_v2")
    copy_trained_weights(trained, model)
    for prefix in (IMAGENET_PREFIX, CUTOUT_PREFIX):
        if prefix + "pool" in {layer.name for layer in model.layers}:
            load_torchvision_weights(model, imagenet, prefix=prefix, require_all=False)
    return model


def copy_trained_weights(trained: keras.Model, model: keras.Model) -> None:
    """Every layer of ``model`` that the training network has (by name, with weights) takes its trained weights."""
    trained_layers = {layer.name: layer for layer in trained.layers}
    for layer in model.layers:
        if layer.name in trained_layers and layer.weights:
            layer.set_weights(trained_layers[layer.name].get_weights())


def batched(net: keras.Model, x: np.ndarray, batch_size: int = 32):
    """A network's outputs over a big array, through a compiled function (eager calls were 10x slower)."""
    import tensorflow as tf

    forward = tf.function(lambda t: net(t, training=False), reduce_retracing=True)
    parts = [forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k].numpy() for p in parts]) for k in parts[0]}
    if isinstance(parts[0], (list, tuple)):
        return [np.concatenate([p[j].numpy() for p in parts]) for j in range(len(parts[0]))]
    return np.concatenate([p.numpy() for p in parts])


# ---------------------------------------------------------------- training


def photo_masks(photos: PhotoSet, masks_file: Path | None = None) -> np.ndarray | None:
    """Garment masks of ``photos``: the committed file when it has them all, else U-2-Net-p now when
    onnxruntime is installed, else None (the recipe then trains the classifier alone)."""
    from ..photo_dataset import PHOTOS_ROOT
    from .masks import MASKS_FILE, compute_masks, load_masks

    masks_file = masks_file or MASKS_FILE
    if masks_file.is_file() and photos.root.resolve() == PHOTOS_ROOT.resolve():
        try:
            return load_masks(masks_file).for_photos(photos)
        except KeyError:
            pass
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("No garment masks for these photos and no onnxruntime to compute them: training the classifier "
              "without the mask head, background replacement or garment features", flush=True)
        return None
    print(f"Computing U-2-Net-p garment masks of {len(photos)} photos (once) ...", flush=True)
    return compute_masks(photos)


def train_photos(out: Path, recipe: PhotoRecipe = PhotoRecipe(), weights_file: str | None = None,
                 limit: int | None = None, data: Path | None = None, keep_trained: Path | None = None) -> dict:
    """Train on the train split (default: the committed photos), choose nothing on test, publish.

    ``data``: a shop's own folder of category sub-folders (app/photo_dataset.py: folder_splits)
    instead of the committed clothing photos; its sub-folder names become the categories. Its garment masks are
    computed with U-2-Net-p at the start when onnxruntime is installed; without it the recipe
    trains the classifier alone (no mask head, background replacement or garment features) and
    the embedding is the pooled features. ``keep_trained`` saves the training network too (for
    app/training/photo_choices.py).
    """
    from ..nets.torch_weights import MOBILENET_V2_SHA256, mobilenet_v2_weights, read_state_dict

    keras.utils.set_random_seed(recipe.seed)
    weights_path = mobilenet_v2_weights(weights_file)
    if data is not None:
        _, splits = folder_splits(data)
    else:
        splits = {name: load_photos(name) for name in ("train", "validation", "test")}
    if limit:  # a quick check of the whole run: a spread of every split
        splits = {name: spread(photos, limit) for name, photos in splits.items()}
    train, validation = splits["train"], splits["validation"]
    state = read_state_dict(weights_path, MOBILENET_V2_SHA256)
    masks = {name: photo_masks(photos) for name, photos in splits.items() if name in ("train", "validation")}
    with_mask = masks["train"] is not None and masks["validation"] is not None
    start = time.time()
    x_val, m_val = served_inputs(validation, recipe.input_size, masks["validation"])
    targets = projection = None
    if with_mask:
        x_train, m_train = served_inputs(train, recipe.input_size, masks["train"])
        teacher = teacher_model(recipe.input_size, state)
        print(f"Garment features of {len(train) + len(validation)} photos from the frozen ImageNet teacher ...",
              flush=True)
        t_train, t_val = teacher_features(teacher, x_train, m_train), teacher_features(teacher, x_val, m_val)
        projection = Projection.fit(t_train, recipe.garment_dim)
        targets = {"train": projection(t_train), "validation": projection(t_val)}
        del x_train, teacher
    class_names = train.class_names
    net = build_training_model(recipe, state, with_mask, len(class_names))
    steps = int(np.ceil(len(train) / recipe.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(
        recipe.peak_lr / 20, decay_steps=max(1, steps * recipe.epochs - steps), alpha=0.0,
        warmup_target=recipe.peak_lr, warmup_steps=steps)
    label_loss = smoothed_loss(recipe.label_smoothing, len(class_names))
    if with_mask:
        losses = {"probs": label_loss, "mask.logits": keras.losses.BinaryCrossentropy(from_logits=True),
                  "garment": cosine_distance}
        weights = {"probs": 1.0, "mask.logits": recipe.mask_weight, "garment": recipe.garment_weight}
        metrics = {"probs": ["sparse_categorical_accuracy"]}
        y_val = {"probs": validation.labels.astype("int32"), "mask.logits": grid_masks(m_val, recipe.input_size // 16),
                 "garment": targets["validation"]}
    else:
        net = keras.Model(net.input, net.outputs[0])
        losses, weights, metrics, y_val = label_loss, None, ["sparse_categorical_accuracy"], validation.labels
    net.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=recipe.weight_decay), loss=losses,
                loss_weights=weights, metrics=metrics, jit_compile=False)
    print(f"Fine-tuning MobileNetV2 on {len(train)} photos of {len(class_names)} categories ({recipe.epochs} epochs, {recipe.train_size}-px crops"
          + (", backgrounds replaced, mask head, garment features" if with_mask else "")
          + f"), validating on {len(validation)} at {recipe.input_size} px", flush=True)
    history = net.fit(
        training_stream(train, recipe, masks["train"], None if targets is None else targets["train"]),
        steps_per_epoch=steps, epochs=recipe.epochs, validation_data=finite(x_val, y_val),
        verbose=1 if sys.stdout.isatty() else 2).history
    train_seconds = time.time() - start
    if keep_trained is not None:
        net.save(keep_trained)
    if data is not None:
        recipe = replace(recipe, notes={**recipe.notes, "data": {
            "folder": str(data), "split": "per category: 10% validation, 10% test (at least one each), chosen by "
                                          "the SHA-256 of each photo's path"}})
    return publish(net, state, recipe, out, history, train_seconds, splits, masks, with_mask)


def publish(trained: keras.Model, imagenet: dict[str, np.ndarray], recipe: PhotoRecipe, out: Path, history: dict,
            train_seconds: float, splits: dict[str, PhotoSet], masks: dict | None = None,
            with_mask: bool = True) -> dict:
    """The trained weights at the serving size: the embedding projected, saved, converted (int8 when the
    recipe says), measured on validation and (once) on test, soft mode tuned on validation, and the card."""
    from ..nets.torch_weights import MOBILENET_V2_FILE, MOBILENET_V2_SHA256
    from .cards import confusion, environment, save_card, save_model

    train, validation = splits["train"], splits["validation"]
    test, class_names = splits.get("test"), train.class_names
    serving_recipe = recipe if with_mask else replace(recipe, parts=(("tuned", 1.0),))
    x_train, _ = served_inputs(train, recipe.input_size)
    projection = None
    if with_mask and recipe.embedding_dim and len(x_train) >= 2 * recipe.embedding_dim:  # else too few to fit it
        joined = build_serving_model(trained, serving_recipe, imagenet)
        _, emb = batched(joined, x_train)
        projection = Projection.fit(emb, recipe.embedding_dim)
    serving = build_serving_model(trained, serving_recipe, imagenet, projection) if with_mask else \
        plain_serving_model(trained, recipe)
    y_val = batched(serving, served_inputs(validation, recipe.input_size)[0])[0].argmax(1)
    y_test = batched(serving, served_inputs(test, recipe.input_size)[0])[0].argmax(1) if test else None
    card = {
        "name": out.stem, "file": out.name,
        "architecture": "MobileNetV2 (torchvision layout, ImageNet weights), blocks 0-"
                        f"{recipe.frozen_blocks - 1} frozen, the rest fine-tuned"
                        + ("; a mask head (stride 16, trained on U-2-Net-p garment masks) weighs the pooled "
                           f"features; softmax {len(class_names)} on the garment-pooled features; embedding = "
                           + " + ".join(f"{w:g} x unit({p})" for p, w in serving_recipe.parts)
                           + (f", projected to {recipe.embedding_dim}-d (PCA of the training photos' embeddings)"
                              if projection is not None else "") + ", unit-length"
                           if with_mask else
                           f"; softmax {len(class_names)}; embedding = the unit-normalised 1280-d pooled features"),
        "parameters": int(serving.count_params()),
        "inputs": f"{recipe.input_size}x{recipe.input_size}x3 RGB, 0-255 (ImageNet scaling is inside the model); "
                  "photos are scaled so the shorter side fits and centre-cropped square (app/imaging/photo.py)",
        "outputs": {"probs": len(class_names), "embedding": int(serving.output_shape[1][-1])},
        "class_names": list(class_names),
        "weights": {"source": "torchvision ImageNet MobileNetV2 (BSD-3-Clause)", "file": MOBILENET_V2_FILE,
                    "sha256": MOBILENET_V2_SHA256, "licence": "BSD-3-Clause"},
        "training": {"images": len(train), "split": "train",
                     **{k: v for k, v in asdict(recipe).items() if k != "notes"},
                     "optimizer": f"AdamW (weight decay {recipe.weight_decay:g}), 1 epoch warm-up to "
                                  f"{recipe.peak_lr:g}, cosine to 0",
                     "augmentation": augmentation_text(recipe, with_mask),
                     "train_seconds": round(train_seconds, 1)},
        "validation_accuracy": float(np.mean(y_val == validation.labels)),
        **({"test_accuracy": float(np.mean(y_test == test.labels)),
            "confusion_matrix_test": confusion(test.labels, y_test, len(class_names)).tolist()} if test else {}),
        "history": {k: [round(float(v), 5) for v in vals] for k, vals in history.items()},
        **recipe.notes,
        "environment": environment(),
    }
    if with_mask:
        from ..photo_dataset import PHOTOS_ROOT
        from .masks import MASKS_FILE, U2NETP_LICENCE, U2NETP_PACKAGE, U2NETP_SHA256, load_masks

        committed = MASKS_FILE.is_file() and train.root.resolve() == PHOTOS_ROOT.resolve()
        card["masks"] = ({"file": "datasets/clothing-photos/" + MASKS_FILE.name, **load_masks(MASKS_FILE).provenance}
                         if committed else
                         {"computed": "at training time (app/training/masks.py)", "model": "u2netp.onnx",
                          "sha256": U2NETP_SHA256, "package": U2NETP_PACKAGE, "licence": U2NETP_LICENCE})
    representative = x_train[np.linspace(0, len(x_train) - 1, min(len(x_train), 300)).astype(int)]
    save_model(serving, out, card, history, validation_label="validation",
               representative=representative if recipe.quantize else None)
    card.update(tune_soft_routing_for(out.with_suffix(".tflite"), train, validation))
    save_card(card, out)
    print(f"Done in {train_seconds / 60:.1f} min: validation accuracy {card['validation_accuracy']:.4f}"
          + (f", test accuracy {card['test_accuracy']:.4f}" if test else "") + f"; saved {out}", flush=True)
    return card


def augmentation_text(recipe: PhotoRecipe, with_mask: bool) -> str:
    text = (f"random resized crop (area {recipe.min_crop:g}-1, aspect 3/4-4/3), horizontal flip, "
            f"90-degree turns ({recipe.rotate_p:.0%}), tilts up to {recipe.tilt_degrees:g} degrees "
            f"({recipe.tilt_p:.0%}), brightness/contrast jitter, saturation x0.85-1.15, hue kept; softened (shrunk to "
            f"30-80% and enlarged, {recipe.soften_p:.0%}), recompressed as JPEG quality 50-90 ({recipe.jpeg_p:.0%})")
    if with_mask:
        text = (f"background replaced on {recipe.background_p:.0%} of photos (U-2-Net-p mask; a magnified patch of "
                f"another photo, that photo blurred, or a flat graded noisy wall; half of them framed up to "
                f"{recipe.zoom_out:g}x wider), then " + text)
    return text


def plain_serving_model(trained: keras.Model, recipe: PhotoRecipe) -> keras.Model:
    """Without masks: the classifier at the serving size, its pooled features as the embedding."""
    inputs = keras.Input((recipe.input_size, recipe.input_size, 3), name="image")
    _, top = backbone(inputs, recipe)
    pooled = layers.GlobalAveragePooling2D(name="pool")(top)
    probs = layers.Dense(trained.get_layer("probs").units, activation="softmax", name="probs")(pooled)
    model = keras.Model(inputs, [probs, layers.UnitNormalization(name="embedding")(pooled)], name="photos_plain")
    copy_trained_weights(trained, model)
    return model


def served_outputs(model_path: Path, photos: PhotoSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probabilities, embeddings, labels) of photos through the serving model, as uploads go."""
    from ..runtime import open_model

    model = open_model(model_path, threads=2)
    inputs = np.stack([model.prepare(model.decode(photos.read(i), 40_000_000)) for i in range(len(photos))])
    probs, embeddings = model(inputs)
    return probs, embeddings, photos.labels


def tune_soft_routing_for(model_path: Path, train: PhotoSet, validation: PhotoSet) -> dict:
    """Soft mode's settings for this model, and the mode catalogs search by default: whichever of soft and
    routed did better on validation queries against a catalog of the training photos."""
    from ..catalog import default_mode
    from .soft_routing import tune_soft_routing

    tuned = tune_soft_routing(train.class_names, served_outputs(model_path, train),
                              served_outputs(model_path, validation))
    t = tuned["tuning"]
    print(f"soft mode tuned on validation: threshold {tuned['soft_routing']['threshold']}, evidence weight "
          f"{tuned['soft_routing']['evidence_weight']} (precision@20 {t['precision_soft']:.4f}, routed "
          f"{t['precision_routed']:.4f})", flush=True)
    return {"soft_routing": tuned["soft_routing"], "soft_routing_tuning": t,
            "default_mode": default_mode({"soft_routing_tuning": t})}


def spread(photos: PhotoSet, n: int) -> PhotoSet:
    """``n`` photos taken evenly through the set (so every category is in a quick run)."""
    rows = np.linspace(0, len(photos) - 1, min(n, len(photos))).astype(int)
    return PhotoSet(photos.root, tuple(photos.paths[i] for i in rows), photos.labels[rows], photos.class_names)


def smoothed_loss(smoothing: float, num_classes: int):
    """Sparse cross-entropy with label smoothing (Keras' sparse loss has no smoothing option)."""
    base = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)

    def loss(y_true, y_pred):
        return base(keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"), num_classes),
                    y_pred)

    return loss


def cosine_distance(y_true, y_pred):
    """1 - cosine similarity, per example."""
    ops = keras.ops
    dot = ops.sum(y_true * y_pred, axis=-1)
    return 1.0 - dot / (ops.norm(y_true, axis=-1) * ops.norm(y_pred, axis=-1) + 1e-6)


def finite(x: np.ndarray, y, batch_size: int = 64):
    import tensorflow as tf

    if not isinstance(y, dict):
        y = y.astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def publish_trained(out: Path, trained_path: Path, run_card: Path, recipe: PhotoRecipe) -> dict:
    """Publish a kept training network (``keep_trained``) with ``recipe``'s embedding: the parts, weights and size
    chosen on validation after its run. The run's card gives its history and training time."""
    from ..nets.torch_weights import MOBILENET_V2_SHA256, mobilenet_v2_weights, read_state_dict

    run = json.loads(run_card.read_text())
    trained = keras.saving.load_model(trained_path, compile=False)
    splits = {name: load_photos(name) for name in ("train", "validation", "test")}
    masks = {name: photo_masks(splits[name]) for name in ("train", "validation")}
    state = read_state_dict(mobilenet_v2_weights(), MOBILENET_V2_SHA256)
    return publish(trained, state, recipe, out, run["history"], run["training"]["train_seconds"], splits, masks)


def recipe_from_args(args: list[str]) -> tuple[PhotoRecipe, dict[str, str]]:
    """key=value overrides of the recipe's fields (JSON for tuples), and the other key=values."""
    defaults = asdict(PhotoRecipe())
    overrides = dict(arg.split("=", 1) for arg in args)
    extra = {k: overrides.pop(k) for k in list(overrides) if k not in defaults}
    values = {k: (v == "True") if isinstance(defaults[k], bool) else
              (json.loads(v) if isinstance(defaults[k], (tuple, dict)) else type(defaults[k])(v))
              for k, v in overrides.items()}
    if "parts" in values:
        values["parts"] = tuple(tuple(p) for p in values["parts"])
    return PhotoRecipe(**values), extra


if __name__ == "__main__":
    # python -m app.training.photos OUT [key=value ...] [keep=TRAINED.keras] [limit=N]: train (probes)
    # python -m app.training.photos OUT from=TRAINED.keras card=RUN.json [key=value ...]: publish a kept run
    recipe, extra = recipe_from_args(sys.argv[2:])
    if "notes_file" in extra:  # the choices made on validation, for the card
        recipe = replace(recipe, notes=json.loads(Path(extra["notes_file"]).read_text()))
    print(json.dumps({k: v for k, v in asdict(recipe).items() if k != "notes"}))
    if "from" in extra:
        publish_trained(Path(sys.argv[1]), Path(extra["from"]), Path(extra["card"]), recipe)
    else:
        train_photos(Path(sys.argv[1]), recipe, limit=int(extra["limit"]) if "limit" in extra else None,
                     keep_trained=Path(extra["keep"]) if "keep" in extra else None)
