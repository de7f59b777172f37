"""Training losses on model-scale ab, one value per image (the training step averages them).

`rebalanced_mae` is MAE with every pixel weighted by how rare its true colour
is in the training data (the class rebalancing of Zhang, Isola and Efros,
2016, applied to regression). Plain regression losses are minimized by dull,
averaged colours; weighting rare, saturated colours up makes predictions vivid.
"""

import cv2
import numpy as np
import tensorflow as tf

from pipeline import dataset
from trainer import metrics

HUBER_DELTA = 0.1  # in model ab units (12.8 in 8-bit Lab): errors beyond it count linearly
PRIOR_BINS = 32  # per ab axis: bins of 8 units of 8-bit Lab
PRIOR_SIGMA = 0.6  # Gaussian smoothing of the colour histogram, in bins (Zhang et al.: 5 Lab units)


def mse(ab_true, ab_pred):
    return tf.reduce_mean(tf.square(ab_true - ab_pred), axis=[1, 2, 3])


def mae(ab_true, ab_pred):
    return tf.reduce_mean(tf.abs(ab_true - ab_pred), axis=[1, 2, 3])


def huber(ab_true, ab_pred):
    error = tf.abs(ab_true - ab_pred)
    quadratic = tf.minimum(error, HUBER_DELTA)
    return tf.reduce_mean(0.5 * tf.square(quadratic) + HUBER_DELTA * (error - quadratic), axis=[1, 2, 3])


def ssim(ab_true, ab_pred):
    """1 - SSIM on the original project's scale (ab8 / 128, max_val 1), as its SSIM loss."""
    return 1.0 - metrics.ssim(ab_true + 1.0, ab_pred + 1.0, max_val=1.0)


def _bin_index(ab):
    """Model-scale ab (..., 2) -> the flat index of its colour bin."""
    bins = tf.clip_by_value(tf.cast(tf.floor((ab + 1.0) * PRIOR_BINS / 2), tf.int32), 0, PRIOR_BINS - 1)
    return bins[..., 0] * PRIOR_BINS + bins[..., 1]


def colour_prior(records: dataset.Records, folds=None) -> np.ndarray:
    """How often each ab bin occurs over the training pixels, smoothed: (PRIOR_BINS, PRIOR_BINS), sums to 1."""
    counts = np.zeros(PRIOR_BINS * PRIOR_BINS, np.int64)
    for _, ab in dataset.make_dataset(records, 256, training=False, folds=folds):
        counts += tf.math.bincount(tf.reshape(_bin_index(ab), [-1]), minlength=counts.size).numpy()
    histogram = counts.reshape(PRIOR_BINS, PRIOR_BINS) / counts.sum()
    prior = cv2.GaussianBlur(histogram, (0, 0), PRIOR_SIGMA, borderType=cv2.BORDER_CONSTANT)
    return prior / prior.sum()


def rebalancing_weights(prior: np.ndarray, strength: float) -> np.ndarray:
    """Per-bin weights 1 / (strength * prior + (1 - strength) / bins), averaging 1 over the training pixels.

    strength 0 weighs every colour the same (plain MAE); 1 weighs each by the inverse of its frequency;
    Zhang et al. use 0.5.
    """
    used = np.count_nonzero(prior > 1e-6)
    weights = 1.0 / (strength * prior + (1.0 - strength) / used)
    return (weights / np.sum(prior * weights)).astype(np.float32)


def rebalanced_mae(weights: np.ndarray):
    table = tf.constant(weights.reshape(-1))

    def loss(ab_true, ab_pred):
        pixel_weights = tf.gather(table, _bin_index(ab_true))[..., None]
        return tf.reduce_mean(pixel_weights * tf.abs(ab_true - ab_pred), axis=[1, 2, 3])

    return loss


LOSSES = {"mse": mse, "mae": mae, "huber": huber, "ssim": ssim}
NAMES = (*LOSSES, "rebalanced_mae")


def build(name: str, records: dataset.Records, folds=None, strength: float = 0.5):
    """The loss function by name; rebalanced_mae first measures the colour prior of `records`."""
    if name == "rebalanced_mae":
        return rebalanced_mae(rebalancing_weights(colour_prior(records, folds), strength))
    return LOSSES[name]
