"""Colour hints as network input (Zhang, Zhu, Isola et al. 2017, "Real-Time User-Guided Image Colorization").

A hint-aware network sees four planes at its own resolution: L, hint a, hint b
and a hint mask (1 where a hint was given). A hint paints a small square patch
with one ab colour. In training, hints are simulated from the truth: for each
photo a random number of points (none for `NO_HINTS_SHARE` of the photos,
else 1 + a geometric count), each revealing the mean true ab of a random patch
from 1x1 to 9x9 pixels; with no hints the network is an automatic colourizer.
A person's hint becomes a `USER_HALF_SIZE` patch at the model's resolution.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from pipeline import color_tf

CHANNELS = 4  # L, hint a, hint b, hint mask
MAX_POINTS = 32
NO_HINTS_SHARE = 0.25
GEOMETRIC_P = 1.0 / 8.0
MAX_HALF_SIZE = 4  # patches from 1x1 to 9x9
USER_HALF_SIZE = 2  # a person's hint covers 5x5 pixels at the model's resolution


def is_hint_aware(net) -> bool:
    return net.input_shape[-1] == CHANNELS


def paint(values, ys, xs, half, active, height: int, width: int) -> tf.Tensor:
    """Hint planes (b, h, w, 3): ab and mask from patches centred at (ys, xs) (b, k) of half-size `half`.

    values (b, k, 2) is each patch's model-scale ab; only `active` (b, k) patches count; where
    patches overlap, their colours are averaged.
    """
    rows = _span(ys, half, height) * tf.cast(active, tf.float32)[..., None]
    columns = _span(xs, half, width)
    cover = tf.einsum("bky,bkx->byx", rows, columns)[..., None]
    painted = tf.einsum("bky,bkx,bkc->byxc", rows, columns, tf.cast(values, tf.float32))
    mask = tf.cast(cover > 0, tf.float32)
    return tf.concat([painted / tf.maximum(cover, 1.0), mask], axis=-1)


def _span(centres, half, length: int) -> tf.Tensor:
    """(b, k, length): 1 where |position - centre| <= half."""
    positions = tf.range(length)[None, None, :]
    return tf.cast(tf.abs(positions - centres[..., None]) <= half[..., None], tf.float32)


def _patch_means(ab, ys, xs, half):
    """Mean ab (b, k, 2) over each patch, clipped to the image, from an integral image."""
    batch, height, width = tf.shape(ab)[0], tf.shape(ab)[1], tf.shape(ab)[2]
    integral = tf.pad(tf.cumsum(tf.cumsum(ab, axis=1), axis=2), [[0, 0], [1, 0], [1, 0], [0, 0]])
    top, bottom = tf.maximum(ys - half, 0), tf.minimum(ys + half + 1, height)
    left, right = tf.maximum(xs - half, 0), tf.minimum(xs + half + 1, width)
    index = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(ys))

    def at(y, x):
        return tf.gather_nd(integral, tf.stack([index, y, x], axis=-1))

    sums = at(bottom, right) - at(top, right) - at(bottom, left) + at(top, left)
    area = tf.cast((bottom - top) * (right - left), ab.dtype)[..., None]
    return sums / area


def reveal(ab: tf.Tensor, counts: tf.Tensor, seed: tf.Tensor, max_half: int = MAX_HALF_SIZE) -> tf.Tensor:
    """Hint planes (b, h, w, 3) revealing `counts` (b,) random patches of the true ab (b, h, w, 2), each of
    half-size 0 to `max_half`."""
    batch, height, width = tf.shape(ab)[0], ab.shape[1], ab.shape[2]
    shape = tf.stack([batch, MAX_POINTS])
    seeds = tf.random.experimental.stateless_split(seed, 3)
    ys = tf.random.stateless_uniform(shape, seeds[0], 0, height, tf.int32)
    xs = tf.random.stateless_uniform(shape, seeds[1], 0, width, tf.int32)
    half = tf.random.stateless_uniform(shape, seeds[2], 0, max_half + 1, tf.int32)
    active = tf.range(MAX_POINTS)[None, :] < counts[:, None]
    return paint(_patch_means(ab, ys, xs, half), ys, xs, half, active, height, width)


@dataclasses.dataclass(frozen=True)
class Simulated:
    """How training simulates a person's hints: how many per photo (`counts`) and how large (`max_half`).

    More and larger patches (a smaller `geometric_p`, a larger `max_half`) show the network the true
    colour of more of each region, so that it learns to carry one point's colour over the region it belongs to.
    """

    geometric_p: float = GEOMETRIC_P
    max_half: int = MAX_HALF_SIZE

    @classmethod
    def from_flags(cls, points_p: float, max_patch: int) -> "Simulated":
        return cls(points_p, max_patch // 2)

    def counts(self, batch, seed: tf.Tensor) -> tf.Tensor:
        """Hints per photo: 0 for NO_HINTS_SHARE of them, else 1 + geometric(p), at most MAX_POINTS."""
        seeds = tf.random.experimental.stateless_split(seed, 2)
        none = tf.random.stateless_uniform([batch], seeds[0]) < NO_HINTS_SHARE
        if self.geometric_p >= 1.0:
            return tf.where(none, 0, 1)
        uniform = tf.random.stateless_uniform([batch], seeds[1], minval=1e-6, maxval=1.0)
        geometric = tf.cast(tf.floor(tf.math.log(uniform) / np.log(1.0 - self.geometric_p)), tf.int32)
        return tf.where(none, 0, tf.minimum(1 + geometric, MAX_POINTS))


def evaluation_seed(seed: int, l8: tf.Tensor) -> tf.Tensor:
    """A stateless seed for evaluation hints from the batch's own pixels: the same photos get the same hints."""
    return tf.stack([tf.cast(seed, tf.int64), tf.reduce_sum(tf.cast(l8, tf.int64))])


def revealed_input(net, lightness: tf.Tensor, ab: tf.Tensor, counts, seed: tf.Tensor,
                   max_half: int = MAX_HALF_SIZE) -> tf.Tensor:
    """`net`'s input: with `counts` (b,) patches of the true ab revealed if it is hint-aware, else L alone."""
    if not is_hint_aware(net):
        return lightness
    return network_input(lightness, reveal(ab, counts, seed, max_half))


def network_input(lightness: tf.Tensor, hint_planes: tf.Tensor | None = None) -> tf.Tensor:
    """L (b, h, w, 1) and hint planes (b, h, w, 3), or none, -> the hint-aware network's input."""
    if hint_planes is None:
        hint_planes = tf.zeros(tf.concat([tf.shape(lightness)[:3], [3]], axis=0), lightness.dtype)
    return tf.concat([lightness, hint_planes], axis=-1)


def user_planes(xy, rgb, photo_height, photo_width, height, width) -> tf.Tensor:
    """A person's hints -> hint planes (b, height, width, 3) for photos resized to height x width.

    xy (b, k, 2): points (x, y) in the photo's own pixels, origin top-left; rgb (b, k, 3) uint8: their
    colours, of which only the chroma (ab) is used: the photo keeps its own lightness.
    """
    xy = tf.cast(xy, tf.float32)
    scale = tf.cast(tf.stack([width, height]), tf.float32) / tf.cast(tf.stack([photo_width, photo_height]), tf.float32)
    position = tf.minimum(tf.maximum(tf.cast(tf.floor(xy * scale), tf.int32), 0), tf.stack([width, height]) - 1)
    _, ab = color_tf.to_lab(color_tf.rgb_to_unit(rgb)[:, :, None, :])
    half = tf.fill(tf.shape(xy)[:2], USER_HALF_SIZE)
    active = tf.ones(tf.shape(xy)[:2], tf.bool)
    return paint(ab[:, :, 0, :], position[..., 1], position[..., 0], half, active, height, width)
