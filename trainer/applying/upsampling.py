"""Edge-aware upsampling of predicted colour to a photo's full resolution (guided filter, He, Sun and Tang 2010).

The network predicts ab on a coarse grid (a quarter of its input size).
Upsampled bilinearly, that colour is a blurry wash that spills over edges at
high resolution. The guided filter fits, in every window, ab as a linear
function of the photo's own lightness: where L has an edge, the colour
follows it; where L is flat, the colour stays as it was. It runs at the
network's output size and only the fitted linear coefficients are upsampled
(the fast guided filter, He and Sun 2015), then applied to the full-resolution
L: cost nearly independent of the photo's size, edges at full resolution.

Two twins of one computation: NumPy/OpenCV for `trainer.colorize`, TensorFlow
for the SavedModel; a test keeps them in agreement. Windows are clipped at the
border (means over the pixels inside), in both.
"""

import cv2
import numpy as np
import tensorflow as tf

EPSILON = 1e-3  # on L in [0, 1]: an L step of about 0.03 or more steers the colour
RADIUS = 8  # window radius at the network's output size: two cells of its quarter-resolution colour grid


def _box(image: np.ndarray, radius: int) -> np.ndarray:
    size = (2 * radius + 1, 2 * radius + 1)
    sums = cv2.boxFilter(image, -1, size, normalize=False, borderType=cv2.BORDER_CONSTANT)
    counts = cv2.boxFilter(np.ones(image.shape[:2], np.float32), -1, size, normalize=False,
                           borderType=cv2.BORDER_CONSTANT)
    return sums / (counts[..., None] if image.ndim == 3 else counts)


def guided_upsample(lightness: np.ndarray, ab: np.ndarray, epsilon: float = EPSILON) -> np.ndarray:
    """Full-size L (H, W) in [0, 1] and ab (h, w, 2) -> ab (H, W, 2), its edges following L's."""
    height, width = lightness.shape
    guide = lightness.astype(np.float32)
    small = cv2.resize(guide, (ab.shape[1], ab.shape[0]), interpolation=cv2.INTER_AREA)
    colour = ab.astype(np.float32)
    mean_guide = _box(small, RADIUS)
    variance = _box(small * small, RADIUS) - mean_guide**2
    mean_colour = _box(colour, RADIUS)
    covariance = _box(colour * small[..., None], RADIUS) - mean_colour * mean_guide[..., None]
    slope = covariance / (variance[..., None] + epsilon)
    offset = mean_colour - slope * mean_guide[..., None]
    coefficients = np.concatenate([_box(slope, RADIUS), _box(offset, RADIUS)], axis=-1)
    coefficients = cv2.resize(coefficients, (width, height), interpolation=cv2.INTER_LINEAR)
    return coefficients[..., :2] * guide[..., None] + coefficients[..., 2:]


def _box_tf(image: tf.Tensor, radius: int) -> tf.Tensor:
    """Mean over the (2r+1)^2 window clipped to the image, for (b, h, w, c), from an integral image."""
    height, width = tf.shape(image)[1], tf.shape(image)[2]
    integral = tf.pad(tf.cumsum(tf.cumsum(image, axis=1), axis=2), [[0, 0], [1, 0], [1, 0], [0, 0]])
    rows, columns = tf.range(height), tf.range(width)
    top, bottom = tf.maximum(rows - radius, 0), tf.minimum(rows + radius + 1, height)
    left, right = tf.maximum(columns - radius, 0), tf.minimum(columns + radius + 1, width)

    def corner(y, x):
        return tf.gather(tf.gather(integral, y, axis=1), x, axis=2)

    sums = corner(bottom, right) - corner(top, right) - corner(bottom, left) + corner(top, left)
    counts = tf.cast((bottom - top)[:, None] * (right - left)[None, :], image.dtype)
    return sums / counts[None, :, :, None]


def guided_upsample_tf(lightness: tf.Tensor, ab: tf.Tensor, epsilon: float = EPSILON) -> tf.Tensor:
    """The TensorFlow twin of `guided_upsample`, batched: L (b, H, W, 1), ab (b, h, w, 2) -> (b, H, W, 2)."""
    guide = tf.cast(lightness, tf.float32)
    small = tf.image.resize(guide, tf.shape(ab)[1:3], method="area")
    mean_guide = _box_tf(small, RADIUS)
    variance = _box_tf(small * small, RADIUS) - mean_guide**2
    mean_colour = _box_tf(ab, RADIUS)
    covariance = _box_tf(ab * small, RADIUS) - mean_colour * mean_guide
    slope = covariance / (variance + epsilon)
    offset = mean_colour - slope * mean_guide
    coefficients = tf.concat([_box_tf(slope, RADIUS), _box_tf(offset, RADIUS)], axis=-1)
    coefficients = tf.image.resize(coefficients, tf.shape(guide)[1:3], method="bilinear")
    return coefficients[..., :2] * guide + coefficients[..., 2:]
