"""Colourizing photos of any size in the graph, and exporting that as a self-contained SavedModel.

The network sees the photo as the Beam job prepares it (RGB resized with area
averaging to the model's square size, then L); its ab prediction is upsampled
bilinearly to the photo's own size and recombined with the photo's own
full-resolution L. So the output has exactly the input's size and lightness,
and only the low-frequency colour comes from the model.

`trainer.inference` does the same with OpenCV's colour conversions (faster on
a CPU) for `python -m trainer.colorize`; both agree within a level or two of
8-bit RGB.
"""

import keras
import tensorflow as tf

from pipeline import color_tf
from trainer import hints

SIGNATURE = "serving_default"


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
    """The photo's own L with the predicted ab upsampled to its size -> uint8 RGB (b, h, w, 3)."""
    lightness, _ = color_tf.to_lab(rgb)
    ab = tf.image.resize(ab, tf.shape(rgb)[1:3], method="bilinear")
    return tf.cast(tf.round(color_tf.to_rgb(lightness, ab) * 255.0), tf.uint8)


def colorize(net: keras.Model, images: tf.Tensor) -> tf.Tensor:
    """uint8 photos (b, h, w, c), gray or colour (colour is discarded) -> uint8 RGB (b, h, w, 3)."""
    rgb = as_rgb(images)
    lightness = model_input(rgb, net.input_shape[1])
    inputs = hints.network_input(lightness) if hints.is_hint_aware(net) else lightness
    return recombine(rgb, net(inputs, training=False))


class _Serving(tf.Module):
    def __init__(self, net: keras.Model):
        super().__init__()
        self.net = net

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.uint8, name="images")])
    def colorize(self, images):
        return {"colorized": colorize(self.net, images)}


def export(net: keras.Model, path: str) -> None:
    """SavedModel with signature serving_default: uint8 images (b, h, w, 1|3|4) -> {"colorized": uint8 RGB}.

    It loads with `tf.saved_model.load` alone: no Keras, no project code.
    """
    module = _Serving(net)
    tf.saved_model.save(module, path, signatures={SIGNATURE: module.colorize})
