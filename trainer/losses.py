"""Training losses on model-scale ab, one value per image (averaged by the training step)."""

import tensorflow as tf

from trainer import metrics

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


LOSSES = {"mse": mse, "mae": mae, "huber": huber, "ssim": ssim}
