"""Training losses on model-scale ab, one value per image (the training step averages them).

Regression losses (mse, mae, huber, ssim) are minimized by dull, averaged
colours. `classification` is the colour classifier's rebalanced cross-entropy
(`trainer.network.colour_classes`); `rebalanced_mae` is MAE with every pixel weighted
by the same class-rebalancing weight of its true colour. Both read how often
each colour occurs from the Beam job's manifest: no pass over the data.
"""

import numpy as np
import tensorflow as tf

from pipeline import ab_bins, color_tf
from trainer.network import colour_classes
from trainer.evaluation import metrics

HUBER_DELTA = 0.1  # in model ab units (12.8 in 8-bit Lab): errors beyond it count linearly


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


def rebalanced_mae(weights: np.ndarray, indices: np.ndarray):
    """MAE with each pixel weighted by its true colour's bin (`indices`: in-gamut grid bins, `weights` per bin)."""
    table = np.zeros(ab_bins.COUNT, np.float32)
    table[indices] = weights
    table = tf.constant(table)
    axis = tf.constant(ab_bins.AXIS)

    def loss(ab_true, ab_pred):
        lab = ab_true * color_tf.AB_SCALE
        nearest = tf.clip_by_value(tf.cast(tf.round((lab - axis[0]) / ab_bins.STEP), tf.int32), 0, ab_bins.SIDE - 1)
        pixel_weights = tf.gather(table, nearest[..., 0] * ab_bins.SIDE + nearest[..., 1])[..., None]
        return tf.reduce_mean(pixel_weights * tf.abs(ab_true - ab_pred), axis=[1, 2, 3])

    return loss


LOSSES = {"mse": mse, "mae": mae, "huber": huber, "ssim": ssim}
REBALANCED = ("rebalanced_mae", "classification")
NAMES = (*LOSSES, *REBALANCED)


def build(name: str, bins: colour_classes.ColourBins, rebalancing: float = 0.5):
    """The loss function by name; the rebalanced ones weight rare colours of the training split's `bins` up."""
    if name == "classification":
        return colour_classes.rebalanced_cross_entropy(bins, rebalancing)
    if name == "rebalanced_mae":
        return rebalanced_mae(bins.weights(rebalancing), bins.indices)
    return LOSSES[name]
