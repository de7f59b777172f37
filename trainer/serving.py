"""Colourizing photos of any size in the graph, and exporting that as a self-contained SavedModel.

The network sees the photo as the Beam job prepares it (RGB resized with area
averaging to the model's square size, then L); its ab prediction is brought
to the photo's own size, guided by the photo's full-resolution L
(`trainer.upsampling`), and recombined with that L. So the output has exactly
the input's size and lightness, and only the colour comes from the model. A
second signature takes a person's colour hints (`trainer.hints`).

`trainer.inference` does the same with OpenCV's colour conversions (faster on
a CPU) for `python -m trainer.colorize`; both agree within a level or two of
8-bit RGB.
"""

import keras
import tensorflow as tf

from pipeline import color_tf
from trainer import hints, upsampling

SIGNATURE = "serving_default"
HINTS_SIGNATURE = "colorize_with_hints"


def as_rgb(images: tf.Tensor) -> tf.Tensor:
    """uint8 (b, h, w, 1 or 3 or 4) -> float RGB in [0, 1]; gray becomes three equal channels."""
    rgb = tf.cond(tf.shape(images)[-1] >= 3, lambda: images[..., :3],
                  lambda: tf.repeat(images[..., :1], 3, axis=-1))
    return tf.cast(rgb, tf.float32) / 255.0


def model_input(rgb: tf.Tensor, size: int) -> tf.Tensor:
    """Float RGB (b, h, w, 3) -> the network's input: L in [0, 1] at size x size."""
    lightness, _ = color_tf.to_lab(tf.image.resize(rgb, (size, size), method="area"))
    return lightness


def recombine(rgb: tf.Tensor, ab: tf.Tensor) -> tf.Tensor:
    """The photo's own L with the predicted ab brought to its size along L's edges -> uint8 RGB (b, h, w, 3)."""
    lightness, _ = color_tf.to_lab(rgb)
    ab = upsampling.guided_upsample_tf(lightness, ab)
    return tf.cast(tf.round(color_tf.to_rgb(lightness, ab) * 255.0), tf.uint8)


def colorize(net: keras.Model, images: tf.Tensor, hint_xy=None, hint_rgb=None) -> tf.Tensor:
    """uint8 photos (b, h, w, c), gray or colour (colour is discarded) -> uint8 RGB (b, h, w, 3).

    hint_xy (b, k, 2) and hint_rgb (b, k, 3): optional hints, points in the photos' pixels.
    """
    rgb = as_rgb(images)
    size = net.input_shape[1]
    lightness = model_input(rgb, size)
    inputs = lightness
    if hints.is_hint_aware(net):
        planes = None if hint_xy is None else hints.user_planes(
            hint_xy, hint_rgb, tf.shape(rgb)[1], tf.shape(rgb)[2], size)
        inputs = hints.network_input(lightness, planes)
    return recombine(rgb, net(inputs, training=False))


class _Serving(tf.Module):
    def __init__(self, net: keras.Model):
        super().__init__()
        self.net = net

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.uint8, name="images")])
    def colorize(self, images):
        return {"colorized": colorize(self.net, images)}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.uint8, name="images"),
                                  tf.TensorSpec([None, None, 2], tf.float32, name="hint_xy"),
                                  tf.TensorSpec([None, None, 3], tf.uint8, name="hint_rgb")])
    def colorize_with_hints(self, images, hint_xy, hint_rgb):
        return {"colorized": colorize(self.net, images, hint_xy, hint_rgb)}


def export(net: keras.Model, path: str) -> None:
    """SavedModel with two signatures; it loads with `tf.saved_model.load` alone: no Keras, no project code.

    serving_default: uint8 images (b, h, w, 1|3|4) -> {"colorized": uint8 RGB (b, h, w, 3)};
    colorize_with_hints (hint-aware models): the same plus hint_xy (b, k, 2) float points (x, y) in
    the photos' pixels and hint_rgb (b, k, 3) uint8 colours.
    """
    module = _Serving(net)
    signatures = {SIGNATURE: module.colorize}
    if hints.is_hint_aware(net):
        signatures[HINTS_SIGNATURE] = module.colorize_with_hints
    tf.saved_model.save(module, path, signatures=signatures)
