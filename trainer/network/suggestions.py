"""Suggested colours at a point: the distinct modes of a colour classifier's distribution there.

A classifier (`trainer.network.colour_classes`) holds, at every cell of its
colour grid, a distribution over ab bins; its output is that distribution's
annealed mean, one colour. A person who clicks a point is better served by the
few colours the model hesitates between (Zhang, Zhu, Isola et al. 2017 show them
as a palette): a purple or a yellow iris, not their gray average.

- The distribution: the network's, with its decoding's vividness (what a
  person sets with --vividness shapes the suggestions too) at temperature 1
  (`colour_classes.distribution`): the model's own probabilities, not the
  sharpened ones its annealed mean averages (a decoding device that moves one
  output colour towards the most likely). Measured on the same 1,000 points of
  the test split with the model shipped third, T 0.38: the true colour among
  the first 3 at 61.4% of them; at T 1: 66.4% (docs/benchmarks.md).
- At a point of the photo (its own pixels, origin top-left): the point is
  mapped to the network's view as a hint is (`hints.user_planes`), and the
  distribution is read there as the output colour is made: bilinear between
  grid cells, blended over the windows that cover it (`pipeline.preparation`).
- Modes: bins are laid on the 2-D ab grid. Greedily, the bin with the most
  probability in its 3x3 neighbourhood is a mode; all the probability within
  SEPARATION of it is that mode's, so neighbouring bins of one colour are one
  suggestion and no two peaks are nearer than SEPARATION; repeated on
  what is left, then ordered by mass. A mode's colour is the probability-
  weighted mean of its peak's 3x3 bins, a little finer than the 10-unit grid.
- Rendering: each mode at the photo's own lightness at that point; a colour
  outside sRGB there keeps its hue and loses chroma until it fits (white
  cannot become saturated red; clipping RGB channels would change the hue).

All TensorFlow, so the colorize command, the web app and the SavedModel
signature compute suggestions with the same code.
"""

import dataclasses
import typing

import keras
import numpy as np
import tensorflow as tf

from pipeline import ab_bins, color, color_tf, preparation_tf
from pipeline.errors import UsageError
from pipeline.preparation import Preparation, blend_weights
from trainer.network import colour_classes, hints

MAX_SUGGESTIONS = 8  # modes returned per point, most likely first (fewer when the distribution has fewer)
MIN_PROBABILITY = 0.01  # modes with less mass than this are not offered
SEPARATION = 20.0  # Lab units (ab): the probability this near a peak is its mode's, and no other peak is as near
_SMOOTHING = np.array([1.0, 1.0, 1.0], np.float32)  # along a and b: a bin's probability with its neighbours'
_GAMUT_STEPS = 12  # halvings of the chroma interval when bringing a colour inside sRGB


def check_classifier(net: keras.Model) -> None:
    if not colour_classes.is_classifier(net):
        raise UsageError("suggested colours need a colour-classification model; this one regresses ab")


def distribution_model(net: keras.Model) -> keras.Model:
    """`net`'s input -> its colour distribution (its vividness, temperature 1) at its colour grid (b, g, g, Q)."""
    check_classifier(net)
    logits = net.get_layer(colour_classes.LOGITS_LAYER).output
    return keras.Model(net.inputs, colour_classes.distribution(net, logits, temperature=1.0),
                       name="colour_distribution")


@dataclasses.dataclass(frozen=True)
class Distribution:
    """What `suggest` needs of a network: windows (n, S, S, c) -> their distributions (n, g, g, Q), and the input's
    shape (c: 4 when it takes hints). A `distribution_model` is one; so is a function traced once that returns
    the distribution beside the colour (`trainer.applying.inference`)."""

    function: typing.Callable
    input_shape: tuple

    def __call__(self, windows, training: bool = False):
        return self.function(windows)


def view_points(xy: tf.Tensor, height, width, view_height, view_width) -> tf.Tensor:
    """Points (..., 2) (x, y) in the photo's pixels -> integer (x, y) pixels of the network's view, as hints are."""
    scale = tf.cast(tf.stack([view_width, view_height]), tf.float32) / tf.cast(tf.stack([width, height]), tf.float32)
    return tf.clip_by_value(tf.cast(tf.floor(tf.cast(xy, tf.float32) * scale), tf.int32), 0,
                            tf.stack([view_width, view_height]) - 1)


def _sample(grids: tf.Tensor, pixels: tf.Tensor, size: int) -> tf.Tensor:
    """grids (n, b, g, g, Q) read bilinearly at pixels (n, b, k, 2) (x, y) of size x size windows, as
    the network's bilinear upsampling (half-pixel centres) reads them -> (n, b, k, Q)."""
    cells = grids.shape[2]  # static: the network's colour grid
    source = (tf.cast(pixels, tf.float32) + 0.5) * (cells / size) - 0.5
    source = tf.clip_by_value(source, 0.0, cells - 1.0)
    low = tf.minimum(tf.cast(tf.floor(source), tf.int32), cells - 2)
    fraction = source - tf.cast(low, tf.float32)
    n, b, k = tf.shape(pixels)[0], tf.shape(pixels)[1], tf.shape(pixels)[2]
    window = tf.broadcast_to(tf.range(n)[:, None, None], [n, b, k])
    photo = tf.broadcast_to(tf.range(b)[None, :, None], [n, b, k])

    def at(dy, dx):
        index = tf.stack([window, photo, low[..., 1] + dy, low[..., 0] + dx], axis=-1)
        return tf.gather_nd(grids, index)

    fx, fy = fraction[..., 0:1], fraction[..., 1:2]
    top = at(0, 0) * (1 - fx) + at(0, 1) * fx
    bottom = at(1, 0) * (1 - fx) + at(1, 1) * fx
    return top * (1 - fy) + bottom * fy


def point_distributions(distribution_net: "keras.Model | Distribution", prep: Preparation, inputs: tf.Tensor,
                        pixels: tf.Tensor) -> tf.Tensor:
    """The distribution at view pixels (b, k, 2) (x, y) of the network's input over a whole view (b, h, w, c),
    blended over the windows that cover each point as the output colour is -> (b, k, Q)."""
    size = prep.size
    tops = preparation_tf.window_offsets(tf.shape(inputs)[1], size)
    lefts = preparation_tf.window_offsets(tf.shape(inputs)[2], size)
    top_grid, left_grid = tf.meshgrid(tops, lefts, indexing="ij")
    corners = tf.stack([tf.reshape(left_grid, [-1]), tf.reshape(top_grid, [-1])], axis=1)  # (n, 2) (x, y)
    count, batch = tf.shape(corners)[0], tf.shape(inputs)[0]
    windows = tf.map_fn(lambda corner: inputs[:, corner[1]:corner[1] + size, corner[0]:corner[0] + size],
                        corners, fn_output_signature=inputs.dtype)
    grids = distribution_net(tf.reshape(windows, [-1, size, size, distribution_net.input_shape[-1]]), training=False)
    grids = tf.reshape(grids, [count, batch, *grids.shape[1:]])
    local = pixels[None] - corners[:, None, None, :]  # (n, b, k, 2)
    inside = tf.reduce_all((local >= 0) & (local < size), axis=-1)
    clipped = tf.clip_by_value(local, 0, size - 1)
    weight = tf.gather_nd(tf.constant(blend_weights(size)), tf.reverse(clipped, axis=[-1]))
    weight = tf.where(inside, weight, 0.0)[..., None]
    return tf.reduce_sum(_sample(grids, clipped, size) * weight, axis=0) / tf.reduce_sum(weight, axis=0)


def _on_grid(probabilities: tf.Tensor, indices: np.ndarray) -> tf.Tensor:
    """(m, Q) over the bins -> (m, SIDE, SIDE) over the whole ab grid, 0 where no bin is."""
    lookup = np.full(ab_bins.COUNT, indices.size, np.int32)
    lookup[indices] = np.arange(indices.size, dtype=np.int32)
    padded = tf.concat([probabilities, tf.zeros_like(probabilities[:, :1])], axis=1)
    return tf.reshape(tf.gather(padded, lookup, axis=1), [-1, ab_bins.SIDE, ab_bins.SIDE])


def _smoothed(grid: tf.Tensor) -> tf.Tensor:
    kernel = tf.constant(np.outer(_SMOOTHING, _SMOOTHING)[:, :, None, None])
    return tf.nn.conv2d(grid[..., None], kernel, 1, "SAME")[..., 0]


def modes(probabilities: tf.Tensor, indices: np.ndarray, count: int = MAX_SUGGESTIONS):
    """Distributions (m, Q) over the bins at flat grid `indices` -> the `count` heaviest modes of each:
    model-scale ab (m, count, 2) and probability (m, count), heaviest first; absent modes have probability 0.

    Greedy: the bin with the most probability around it (3x3) is a mode; the probability within
    SEPARATION of it is its mass, and leaves the distribution; repeat. A shoulder of a broad
    distribution (a yellow leaning off a cream) is offered too, which steepest ascent would fold
    into the peak it leans on.
    """
    grid = _on_grid(tf.cast(probabilities, tf.float32), indices)
    flat = tf.reshape(grid, [-1, ab_bins.COUNT])
    around = tf.reshape(_smoothed(grid), [-1, ab_bins.COUNT])
    centres = tf.constant(ab_bins.centres(np.arange(ab_bins.COUNT)) / color.AB_SCALE, tf.float32)
    distance = tf.norm(centres[:, None, :] - centres[None, :, :], axis=-1) * color.AB_SCALE  # (COUNT, COUNT)
    left = tf.ones_like(flat)
    masses, colours = [], []
    for _ in range(count):
        peak = tf.argmax(around * left, axis=-1, output_type=tf.int32)
        to_peak = tf.gather(distance, peak)  # (m, COUNT)
        members = left * tf.cast(to_peak <= SEPARATION, tf.float32)
        masses.append(tf.reduce_sum(flat * members, axis=-1))
        near = flat * members * tf.cast(to_peak <= ab_bins.STEP * 1.5, tf.float32)  # the peak's 3x3 bins
        colours.append(tf.linalg.matmul(near, centres) / tf.maximum(tf.reduce_sum(near, -1, keepdims=True), 1e-30))
        left = left - members
    probability, order = tf.math.top_k(tf.stack(masses, axis=1), k=count)
    ab = tf.gather(tf.stack(colours, axis=1), order, batch_dims=1)
    keep = probability >= MIN_PROBABILITY
    return tf.where(keep[..., None], ab, 0.0), tf.where(keep, probability, 0.0)


_XYZ_TO_LINEAR_RGB = np.array([[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560],
                               [0.0556434, -0.2040259, 1.0572252]], np.float32)  # sRGB primaries, D65
_WHITE = np.array([0.95047, 1.0, 1.08883], np.float32)  # D65, as the project's Lab


def _linear_rgb(lightness: tf.Tensor, ab: tf.Tensor) -> tf.Tensor:
    """Model-scale L (..., 1) and ab (..., 2) -> linear sRGB, unclipped: outside [0, 1] is outside the gamut.
    (tensorflow-io's lab_to_rgb clips, which would hide exactly that.)"""
    fy = (lightness * color.L_MAX + 16.0) / 116.0
    lab = ab * color.AB_SCALE
    f = tf.concat([fy + lab[..., :1] / 500.0, fy, fy - lab[..., 1:] / 200.0], axis=-1)
    delta = 6.0 / 29.0
    xyz = tf.where(f > delta, f ** 3, 3 * delta**2 * (f - 4.0 / 29.0)) * _WHITE
    return tf.linalg.matvec(tf.constant(_XYZ_TO_LINEAR_RGB), xyz)


def in_gamut(lightness: tf.Tensor, ab: tf.Tensor) -> tf.Tensor:
    """ab (..., 2) with its chroma reduced, hue kept, until the colour at `lightness` (..., 1) is inside sRGB."""
    def fits(scale):
        rgb = _linear_rgb(lightness, ab * scale[..., None])
        return tf.reduce_all((rgb >= -1e-3) & (rgb <= 1.0 + 1e-3), axis=-1)

    low, high = tf.zeros_like(ab[..., 0]), tf.ones_like(ab[..., 0])
    whole = fits(high)
    for _ in range(_GAMUT_STEPS):
        middle = (low + high) / 2
        inside = fits(middle)
        low, high = tf.where(inside, middle, low), tf.where(inside, high, middle)
    return ab * tf.where(whole, 1.0, low)[..., None]


def render(lightness: tf.Tensor, ab: tf.Tensor) -> tf.Tensor:
    """Colours at the photo's lightness: L (m, 1) and ab (m, count, 2) -> uint8 RGB (m, count, 3), in gamut."""
    lightness = tf.broadcast_to(lightness[:, None, :], tf.concat([tf.shape(ab)[:2], [1]], 0))
    return color_tf.unit_to_rgb(color_tf.to_rgb(lightness, in_gamut(lightness, ab)))


def lightness_at(rgb: tf.Tensor, xy: tf.Tensor) -> tf.Tensor:
    """Model-scale L (b, k, 1) of float RGB photos (b, h, w, 3) at their pixels (b, k, 2) (x, y)."""
    size = tf.stack([tf.shape(rgb)[2], tf.shape(rgb)[1]])
    pixel = tf.clip_by_value(tf.cast(tf.floor(xy), tf.int32), 0, size - 1)
    picked = tf.gather_nd(rgb, tf.reverse(pixel, axis=[-1]), batch_dims=1)
    lightness, _ = color_tf.to_lab(picked)
    return lightness


def suggest(distribution_net: "keras.Model | Distribution", prep: Preparation, indices: np.ndarray, rgb: tf.Tensor,
            xy: tf.Tensor, hint_xy=None, hint_rgb=None, count: int = MAX_SUGGESTIONS) -> dict[str, tf.Tensor]:
    """Suggested colours at points of photos (one size per batch).

    rgb (b, h, w, 3) float in [0, 1]; xy (b, k, 2) points (x, y) in the photos' pixels; hint_xy (b, j, 2)
    and hint_rgb (b, j, 3) uint8: hints already given (they change what the model expects). Returns
    {"colors": uint8 RGB (b, k, count, 3), "probabilities": (b, k, count), "ab": model-scale (b, k, count, 2)},
    most likely first; a mode below MIN_PROBABILITY (or absent) has probability 0.
    """
    height, width = tf.shape(rgb)[1], tf.shape(rgb)[2]
    view_height, view_width = preparation_tf.view_shape(prep, height, width)
    inputs, _ = color_tf.to_lab(preparation_tf.resize(rgb, view_height, view_width))
    if distribution_net.input_shape[-1] == hints.CHANNELS:
        planes = None if hint_xy is None else hints.user_planes(hint_xy, hint_rgb, height, width, view_height,
                                                                view_width)
        inputs = hints.network_input(inputs, planes)
    pixels = view_points(xy, height, width, view_height, view_width)
    probabilities = point_distributions(distribution_net, prep, inputs, pixels)
    batch, points = tf.shape(xy)[0], tf.shape(xy)[1]
    ab, probability = modes(tf.reshape(probabilities, [batch * points, -1]), indices, count)
    colours = render(tf.reshape(lightness_at(rgb, xy), [-1, 1]), ab)
    return {"colors": tf.reshape(colours, [batch, points, count, 3]),
            "probabilities": tf.reshape(probability, [batch, points, count]),
            "ab": tf.reshape(ab, [batch, points, count, 2])}


def bin_indices(net: keras.Model) -> np.ndarray:
    """Flat ab-grid indices of a classifier's bins, recovered from its decoding's bin centres."""
    lab = colour_classes.centres_of(net) * color.AB_SCALE
    axis = np.rint((lab - ab_bins.AXIS[0]) / ab_bins.STEP).astype(np.int64)
    return axis[:, 0] * ab_bins.SIDE + axis[:, 1]
