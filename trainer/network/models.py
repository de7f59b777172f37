"""Colourization networks: L (h, w, 1) in [0, 1], or L and hint planes (h, w, 4), -> ab (h, w, 2) in [-1, 1].

Only built-in Keras layers, so a saved `.keras` file loads without this project.
Under a mixed-precision policy the body computes in 16 bits; the layers that make
the output (the colour logits and their decoding, the regressed ab) are float32
(`OUTPUT_DTYPE`), where the losses and metrics need their precision.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from trainer.network import colour_classes, hints

OUTPUT_DTYPE = "float32"


def seed_autoencoder(size: int = 200) -> keras.Model:
    """The original project's autoencoder, layer for layer (1,329,730 parameters at any size).

    About 3.4 GMAC per 200x200 image, most of it in 64- and 128-channel
    convolutions at full and half resolution.
    """
    inputs = keras.Input((size, size, 1), name="lightness")
    x = inputs
    for filters in (64, 128, 256):
        x = layers.Conv2D(filters, 3, activation="relu", padding="same")(x)
        x = layers.MaxPooling2D(2)(x)
    for filters in (256, 128, 64):
        x = layers.Conv2DTranspose(filters, 3, activation="relu", padding="same")(x)
        x = layers.UpSampling2D(2)(x)
    outputs = layers.Conv2D(2, 3, padding="same", name="ab", dtype=OUTPUT_DTYPE)(x)
    return keras.Model(inputs, outputs, name="seed_autoencoder")


def _conv(x, filters: int, strides: int = 1, dilation: int = 1):
    return layers.Conv2D(filters, 3, strides=strides, dilation_rate=dilation, padding="same",
                         activation="relu")(x)


def lowres_unet(size: int = 200, width: int = 32) -> keras.Model:
    """A small U-Net that predicts ab at a quarter of the resolution, then upsamples it bilinearly.

    Colour is low-frequency: ab at a quarter of the resolution, upsampled and
    recombined with full-resolution L, loses little (33.9 dB RGB PSNR on the
    flowers), and every layer after the stem then costs 16 times less. Strided
    convolutions take L to 1/2, 1/4 and 1/8; dilated convolutions at 1/8 see
    the whole photo (receptive field about 270 px at 200x200); one skip
    connection brings back the 1/4 detail. About 0.3 GMAC per 200x200 image,
    a twelfth of `seed_autoencoder`.
    """
    if size % 8:
        raise ValueError(f"lowres_unet needs an image size divisible by 8, got {size}")
    inputs = keras.Input((size, size, 1), name="lightness")
    half = _conv(inputs, width // 2, strides=2)
    quarter = _conv(_conv(half, width, strides=2), width)
    x = _conv(_conv(quarter, width * 2, strides=2), width * 2)
    for dilation in (1, 2, 4):
        x = _conv(x, width * 3, dilation=dilation)
    x = layers.Conv2D(width, 1, activation="relu")(x)
    x = layers.UpSampling2D(2, interpolation="bilinear")(x)
    x = _conv(_conv(layers.Concatenate()([x, quarter]), width), width)
    return keras.Model(inputs, _regressed_ab(x), name="lowres_unet")


def _upsampled(ab_quarter):
    return layers.UpSampling2D(4, interpolation="bilinear", name="ab", dtype=OUTPUT_DTYPE)(ab_quarter)


def _regressed_ab(features):
    """ab at a quarter of the resolution from the last features, upsampled: the regression head."""
    return _upsampled(layers.Conv2D(2, 3, padding="same", dtype=OUTPUT_DTYPE)(features))


def context_unet(size: int = 200, width: int = 48, bins: "colour_classes.ColourBins | None" = None,
                 rebalancing: float = 0.5, temperature: float = 0.38, vividness: float = 1.0) -> keras.Model:
    """A hint-aware U-Net with global context that predicts colour at a quarter of the resolution.

    Input: L and hint planes (`trainer.network.hints`). The body is `lowres_unet`'s
    (strided, then dilated 3x3 convolutions; colour is low-frequency) plus a
    global branch (Iizuka, Simo-Serra and Ishikawa 2016): features averaged
    over the whole photo and fused back at every position, so one flower
    keeps one colour and a sky is one blue. With `bins`, the head classifies
    each position's colour over them and decodes by the annealed mean
    (`trainer.network.colour_classes`); without, it regresses ab.
    """
    if size % 8:
        raise ValueError(f"context_unet needs an image size divisible by 8, got {size}")
    inputs = keras.Input((size, size, hints.CHANNELS), name="lightness_and_hints")
    half = _conv(inputs, width // 2, strides=2)
    quarter = _conv(_conv(half, width, strides=2), width)
    x = _conv(_conv(quarter, width * 2, strides=2), width * 2)
    for dilation in (1, 2, 4, 8):
        x = _conv(x, width * 3, dilation=dilation)
    context = layers.GlobalAveragePooling2D(keepdims=True)(x)
    context = layers.Conv2D(width * 3, 1, activation="relu")(context)
    context = layers.Conv2D(width * 3, 1, activation="relu")(context)
    # A 1x1 convolution of [features, context] is the sum of one over each part: the photo-wide
    # part is computed once and broadcast, so the network runs on windows of any size.
    fused = layers.Add()([layers.Conv2D(width * 2, 1)(x), layers.Conv2D(width * 2, 1, use_bias=False)(context)])
    x = layers.Activation("relu")(fused)
    x = layers.UpSampling2D(2, interpolation="bilinear")(x)
    x = _conv(_conv(layers.Concatenate()([x, quarter]), width * 2), width * 2)
    if bins is None:
        return keras.Model(inputs, _regressed_ab(x), name="context_unet")
    logits = layers.Conv2D(bins.size, 1, name=colour_classes.LOGITS_LAYER, dtype=OUTPUT_DTYPE)(x)
    ab, fixed = colour_classes.decoding_head(logits, bins, rebalancing, temperature, vividness, OUTPUT_DTYPE)
    net = keras.Model(inputs, _upsampled(ab), name="context_unet_classifier")
    for name, weights in fixed.items():
        net.get_layer(name).set_weights(weights)
    return net


def accept_any_size(net: keras.Model) -> keras.Model:
    """Let `net` (fully convolutional, e.g. `context_unet`) run on photos or windows of any size in training;
    the saved file keeps the size it was built for, which is what it colourizes at."""
    net.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: net.input_shape[-1]})
    return net


def decode_logits(net: keras.Model, logits) -> keras.KerasTensor:
    """A classifier's decoding applied to `logits` (at its colour resolution), upsampled to its output size."""
    factor = net.output_shape[1] // logits.shape[1]
    return layers.UpSampling2D(factor, interpolation="bilinear", name="ab", dtype=OUTPUT_DTYPE)(
        colour_classes.decode(net, logits))


def _mirror(x, name: str):
    """x (b, h, w, c) mirrored left to right, with built-in layers: width moved last, reversed by a fixed
    anti-identity Dense, moved back. Returns the tensor and the Dense layer (its weights to fix)."""
    width = x.shape[2]
    reverse = layers.Dense(width, use_bias=False, trainable=False, name=name, dtype=OUTPUT_DTYPE)
    return layers.Permute((1, 3, 2))(reverse(layers.Permute((1, 3, 2))(x))), reverse


def mirror_averaged(net: keras.Model) -> keras.Model:
    """A classifier that decides each position's colour from the photo and its mirror image.

    The body runs on both; the second view's logits are mirrored back and the two
    averaged before decoding. Where the views agree nothing changes; where they
    disagree (a white petal one view takes for yellow) the distribution spreads and
    the annealed mean stays nearer neutral instead of following one guess. Built-in
    layers only, so the .keras file still loads with Keras alone; twice the compute.
    """
    body = keras.Model(net.inputs, net.get_layer(colour_classes.LOGITS_LAYER).output, name="body")
    inputs = keras.Input(net.input_shape[1:], name="lightness_and_hints")
    mirrored_input, input_mirror = _mirror(inputs, "mirror_input")
    mirrored_logits, logits_mirror = _mirror(body(mirrored_input), "mirror_logits")
    logits = layers.Average(name=colour_classes.LOGITS_LAYER, dtype=OUTPUT_DTYPE)([body(inputs), mirrored_logits])
    averaged = keras.Model(inputs, decode_logits(net, logits), name=f"{net.name}_mirror_averaged")
    for reverse in (input_mirror, logits_mirror):
        reverse.set_weights([np.eye(reverse.units, dtype=np.float32)[::-1]])
    return averaged


def single_view(net: keras.Model) -> keras.Model:
    """A mirror-averaged classifier's plain network (its body, then its decoding), with its weights; any other
    network as it is. Training (fine-tuning from the shipped model) needs the one view, not both."""
    body = next((layer for layer in net.layers if isinstance(layer, keras.Model) and layer.name == "body"), None)
    if body is None:
        return net

    def renamed(layer):  # the body's own names would clash with the decoding's once both are one graph
        config = layer.get_config()
        if layer.name != colour_classes.LOGITS_LAYER:
            config["name"] = f"body_{layer.name}"
        return layer.__class__.from_config(config)

    plain = keras.models.clone_model(body, clone_function=renamed)
    plain.set_weights(body.get_weights())
    return keras.Model(plain.inputs, decode_logits(net, plain.output), name=net.name.removesuffix("_mirror_averaged"))


def _float32_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
    return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})


def detached(net: keras.Model) -> keras.Model:
    """A float32 copy of `net` with plain variables, outside any distribution strategy (for saving).

    A network trained in mixed precision is saved in float32: it then computes the
    same everywhere, on hardware without bfloat16 or float16 too.
    """
    copy = keras.models.clone_model(net, clone_function=_float32_layer)
    copy.set_weights([np.asarray(weight, np.float32) for weight in net.get_weights()])
    return copy


MODELS = {"seed_autoencoder": seed_autoencoder, "lowres_unet": lowres_unet, "context_unet": context_unet}


def resolve(path: str | None) -> str:
    """A .keras file from a path to one, a training run's model_dir, or None (the shipped default model)."""
    from trainer import default_model

    path = (path or default_model.PATH).rstrip("/")
    if not path.endswith(".keras"):
        path = f"{path}/model.keras"
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"no model at {path}: give a .keras file or a training run's model_dir")
    return path


def build(name: str, size: int, **head) -> keras.Model:
    """The network by name; `head` (bins, rebalancing, temperature, vividness) makes context_unet a classifier."""
    if name not in MODELS:
        raise ValueError(f"--model must be one of {sorted(MODELS)}, got {name!r}")
    if head and name != "context_unet":
        raise ValueError(f"--loss=classification needs --model=context_unet, not {name}")
    return MODELS[name](size, **head)
