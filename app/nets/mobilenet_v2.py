"""MobileNetV2 in Keras, laid out exactly as torchvision's, so its ImageNet weights load as they are.

Three details make a port reproduce torchvision: every 3x3 convolution gets symmetric
1-pixel zero padding (Keras' ``padding="same"`` pads stride-2 convolutions on one side
only), batch norm uses epsilon 1e-5, and inputs are scaled as torchvision scales them
(RGB / 255, then ImageNet mean and standard deviation). The scaling is a layer of the
model, so every model built here takes RGB pixel values 0-255 and serving needs no
framework-specific preprocessing.
"""
from __future__ import annotations

import numpy as np

from .layers import FusedBatchNorm, keras, layers

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FEATURE_DIM = 1280
# (expansion t, output channels c, repeats n, first stride s): torchvision's inverted_residual_setting
SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def torchvision_scaling(name: str = "imagenet_scaling") -> layers.Layer:
    """RGB 0-255 to torchvision's input: (x / 255 - mean) / std, as a fixed Normalization layer."""
    return layers.Normalization(mean=[255 * m for m in IMAGENET_MEAN],
                                variance=[(255 * s) ** 2 for s in IMAGENET_STD], name=name)


def _conv_bn(x, filters: int | None, kernel: int, stride: int, conv: str, bn: str, relu: bool = True):
    """torchvision's Conv-BN(-ReLU6), its layers named after the state-dict entries they load;
    ``filters=None`` makes the convolution depthwise."""
    if kernel == 3:
        x = layers.ZeroPadding2D(1, name=f"{conv}.pad")(x)
    if filters is None:
        x = layers.DepthwiseConv2D(kernel, stride, use_bias=False, name=conv)(x)
    else:
        x = layers.Conv2D(filters, kernel, stride, use_bias=False, name=conv)(x)
    x = FusedBatchNorm(epsilon=1e-5, momentum=0.9, name=bn)(x)
    return layers.ReLU(6.0, name=f"{bn}.relu6")(x) if relu else x


def _inverted_residual(x, out_channels: int, stride: int, expansion: int, block: str):
    """torchvision's InvertedResidual: [1x1 expand,] 3x3 depthwise, 1x1 linear projection [, + input]."""
    in_channels = x.shape[-1]
    y, i = x, 0
    if expansion != 1:
        y = _conv_bn(y, in_channels * expansion, 1, 1, f"{block}.conv.0.0", f"{block}.conv.0.1")
        i = 1
    y = _conv_bn(y, None, 3, stride, f"{block}.conv.{i}.0", f"{block}.conv.{i}.1")
    y = _conv_bn(y, out_channels, 1, 1, f"{block}.conv.{i + 1}", f"{block}.conv.{i + 2}", relu=False)
    if stride == 1 and in_channels == out_channels:
        y = layers.Add(name=f"{block}.add")([x, y])
    return y


LAST_BLOCK = 1 + sum(n for _, _, n, _ in SETTING)  # features.18: the final 1x1 convolution to 1280 channels


def mobilenet_v2_blocks(x, first: int = 0, last: int = LAST_BLOCK, prefix: str = ""):
    """torchvision's ``features[first..last]`` applied to ``x``; layers are named ``prefix`` + their state-dict
    names, so a second copy of some blocks (another prefix) can live in the same model."""
    if first <= 0 <= last:
        x = _conv_bn(x, 32, 3, 2, f"{prefix}features.0.0", f"{prefix}features.0.1")
    block = 1
    for t, c, n, s in SETTING:
        for i in range(n):
            if first <= block <= last:
                x = _inverted_residual(x, c, s if i == 0 else 1, t, f"{prefix}features.{block}")
            block += 1
    if last == LAST_BLOCK:
        x = _conv_bn(x, FEATURE_DIM, 1, 1, f"{prefix}features.{block}.0", f"{prefix}features.{block}.1")
    return x


def mobilenet_v2_features(input_size: int | None = 224, name: str = "mobilenet_v2") -> keras.Model:
    """The backbone: RGB 0-255 in, 1280-d global-average-pooled ImageNet features out.

    ``input_size=None`` accepts any size (training at one size, serving at another).
    """
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = mobilenet_v2_blocks(torchvision_scaling()(inputs))
    features = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, features, name=name)


def mobilenet_v2_imagenet(input_size: int | None = 224) -> keras.Model:
    """Backbone plus torchvision's 1000-class ImageNet classifier (checks the port; not served)."""
    backbone = mobilenet_v2_features(input_size)
    logits = layers.Dense(1000, name="classifier.1")(backbone.output)
    return keras.Model(backbone.input, layers.Softmax(name="imagenet_probs")(logits), name="mobilenet_v2_imagenet")


def load_torchvision_weights(model: keras.Model, state: dict[str, np.ndarray], prefix: str = "",
                             require_all: bool = True) -> int:
    """Copy torchvision MobileNetV2 weights into the layers of ``model`` named ``prefix`` + a state-dict name.

    Convolutions go from (out, in, h, w) to (h, w, in, out), depthwise ones to (h, w, channels, 1),
    the classifier from (out, in) to (in, out). Every such layer must find its weights, and with
    ``require_all`` every weight of the file must be used (the classifier only when the model has
    one). Returns the number of state-dict entries used.
    """
    used: set[str] = set()
    for layer in model.layers:
        name = layer.name.removeprefix(prefix)
        if not layer.name.startswith(prefix) or name.split(".")[0] not in ("features", "classifier"):
            continue
        if isinstance(layer, layers.DepthwiseConv2D):
            values = [state[f"{name}.weight"].transpose(2, 3, 0, 1)]
        elif isinstance(layer, layers.Conv2D):
            values = [state[f"{name}.weight"].transpose(2, 3, 1, 0)]
        elif isinstance(layer, layers.BatchNormalization):
            values = [state[f"{name}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]
            used.add(f"{name}.num_batches_tracked")
        elif isinstance(layer, layers.Dense) and name == "classifier.1":
            values = [state[f"{name}.weight"].T, state[f"{name}.bias"]]
        else:
            continue
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [v.shape for v in values] != expected:
            raise ValueError(f"{layer.name}: weights {[v.shape for v in values]} do not fit {expected}")
        layer.set_weights(values)
        used.update(k for k in state if k.startswith(name + ".") and k.rsplit(".", 1)[0] == name)
    has_classifier = any(layer.name == prefix + "classifier.1" for layer in model.layers)
    unused = sorted(k for k in state if k not in used and (has_classifier or not k.startswith("classifier.")))
    if require_all and unused:
        raise ValueError(f"{len(unused)} weights of the file fit no layer, e.g. {unused[:3]}")
    return len(used)
