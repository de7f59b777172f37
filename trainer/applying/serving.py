"""Colourizing photos of any size in the graph, and exporting that as a self-contained SavedModel.

The network sees each photo as the model's training photos were prepared
(`pipeline.preparation_tf`, the twin of the Beam job's rule): its view, cut
into windows whose colours are blended. Its ab prediction is brought to the
photo's own size, guided by the photo's full-resolution L
(`trainer.applying.upsampling`), and recombined with that L. So the output has
exactly the input's size and lightness, and only the colour comes from the
model. A second signature takes a person's colour hints (`trainer.network.hints`);
a classifier's export also suggests colours at given points (`trainer.network.suggestions`).

`trainer.applying.inference` does the same with OpenCV's colour conversions
(faster on a CPU) for `python -m trainer.colorize`; both agree within a level
or two of 8-bit RGB.
"""

import json

import keras
import tensorflow as tf

from pipeline import color_tf, preparation_tf
from pipeline.preparation import Preparation
from trainer.network import colour_classes, hints, suggestions
from trainer.applying import upsampling

SIGNATURE = "serving_default"
HINTS_SIGNATURE = "colorize_with_hints"
SUGGEST_SIGNATURE = "suggest"
SUGGEST_WITH_HINTS_SIGNATURE = "suggest_with_hints"


def as_rgb(images: tf.Tensor) -> tf.Tensor:
    """uint8 (b, h, w, 1 or 3 or 4) -> float RGB in [0, 1]; gray becomes three equal channels."""
    rgb = tf.cond(tf.shape(images)[-1] >= 3, lambda: images[..., :3],
                  lambda: tf.repeat(images[..., :1], 3, axis=-1))
    return color_tf.rgb_to_unit(rgb)


def recombine(rgb: tf.Tensor, ab: tf.Tensor) -> tf.Tensor:
    """The photo's own L with the predicted ab brought to its size along L's edges -> uint8 RGB (b, h, w, 3)."""
    lightness, _ = color_tf.to_lab(rgb)
    ab = upsampling.guided_upsample_tf(lightness, ab)
    return color_tf.unit_to_rgb(color_tf.to_rgb(lightness, ab))


def colorize(net: keras.Model, prep: Preparation, images: tf.Tensor, hint_xy=None, hint_rgb=None) -> tf.Tensor:
    """uint8 photos (b, h, w, c), gray or colour (colour is discarded) -> uint8 RGB (b, h, w, 3).

    hint_xy (b, k, 2) and hint_rgb (b, k, 3): optional hints, points in the photos' pixels.
    """
    rgb = as_rgb(images)
    height, width = tf.shape(rgb)[1], tf.shape(rgb)[2]
    view_height, view_width = preparation_tf.view_shape(prep, height, width)
    inputs, _ = color_tf.to_lab(preparation_tf.resize(rgb, view_height, view_width))
    if hints.is_hint_aware(net):
        planes = None if hint_xy is None else hints.user_planes(hint_xy, hint_rgb, height, width, view_height,
                                                                view_width)
        inputs = hints.network_input(inputs, planes)
    ab = preparation_tf.in_windows(prep, lambda windows: net(windows, training=False), inputs)
    return recombine(rgb, ab)


class _Serving(tf.Module):
    def __init__(self, net: keras.Model, prep: Preparation):
        super().__init__()
        self.net = net
        self.prep = prep

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.uint8, name="images")])
    def colorize(self, images):
        return {"colorized": colorize(self.net, self.prep, images)}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.uint8, name="images"),
                                  tf.TensorSpec([None, None, 2], tf.float32, name="hint_xy"),
                                  tf.TensorSpec([None, None, 3], tf.uint8, name="hint_rgb")])
    def colorize_with_hints(self, images, hint_xy, hint_rgb):
        return {"colorized": colorize(self.net, self.prep, images, hint_xy, hint_rgb)}


class _Suggesting(_Serving):
    """A classifier's serving module: it also suggests colours (a regressor has no distribution to offer)."""

    def __init__(self, net: keras.Model, prep: Preparation):
        super().__init__(net, prep)
        self.distribution = suggestions.distribution_model(net)
        self.bin_indices = suggestions.bin_indices(net)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.uint8, name="images"),
                                  tf.TensorSpec([None, None, 2], tf.float32, name="points")])
    def suggest(self, images, points):
        return self._suggest(images, points)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.uint8, name="images"),
                                  tf.TensorSpec([None, None, 2], tf.float32, name="points"),
                                  tf.TensorSpec([None, None, 2], tf.float32, name="hint_xy"),
                                  tf.TensorSpec([None, None, 3], tf.uint8, name="hint_rgb")])
    def suggest_with_hints(self, images, points, hint_xy, hint_rgb):
        return self._suggest(images, points, hint_xy, hint_rgb)

    def _suggest(self, images, points, hint_xy=None, hint_rgb=None):
        output = suggestions.suggest(self.distribution, self.prep, self.bin_indices, as_rgb(images), points,
                                     hint_xy, hint_rgb)
        return {"colors": output["colors"], "probabilities": output["probabilities"]}


PREPARATION_FILE = "assets.extra/preparation.json"


def export(net: keras.Model, path: str, prep: Preparation) -> None:
    """SavedModel with its signatures; it loads with `tf.saved_model.load` alone: no Keras, no project code.

    serving_default: uint8 images (b, h, w, 1|3|4) -> {"colorized": uint8 RGB (b, h, w, 3)};
    colorize_with_hints (hint-aware models): the same plus hint_xy (b, k, 2) float points (x, y) in
    the photos' pixels and hint_rgb (b, k, 3) uint8 colours;
    suggest (classifiers): images and points (b, n, 2) (x, y) in the photos' pixels -> {"colors": uint8
    RGB (b, n, s, 3), "probabilities": (b, n, s)} (s = suggestions.MAX_SUGGESTIONS), the modes of the colour
    distribution at each point, most likely first, at the photo's lightness there (probability 0: none);
    suggest_with_hints (hint-aware classifiers): the same, given hint_xy and hint_rgb.
    The graph prepares photos by `prep`, which is also written to assets.extra/preparation.json for
    anyone who reads the model.
    """
    module = (_Suggesting if colour_classes.is_classifier(net) else _Serving)(net, prep)
    signatures = {SIGNATURE: module.colorize}
    if hints.is_hint_aware(net):
        signatures[HINTS_SIGNATURE] = module.colorize_with_hints
    if colour_classes.is_classifier(net):
        signatures[SUGGEST_SIGNATURE] = module.suggest
        if hints.is_hint_aware(net):
            signatures[SUGGEST_WITH_HINTS_SIGNATURE] = module.suggest_with_hints
    tf.saved_model.save(module, path, signatures=signatures)
    tf.io.gfile.makedirs(f"{path}/assets.extra")
    with tf.io.gfile.GFile(f"{path}/{PREPARATION_FILE}", "w") as handle:
        json.dump(prep.to_json(), handle, indent=2)


def preparation(path: str) -> Preparation:
    """The preparation an exported SavedModel's graph applies."""
    with tf.io.gfile.GFile(f"{path.rstrip('/')}/{PREPARATION_FILE}") as handle:
        return Preparation.from_json(json.load(handle))
