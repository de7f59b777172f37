"""The project's colour convention (see `pipeline.color`), TensorFlow side, inside the graph."""

import tensorflow as tf
import tensorflow_io as tfio

from pipeline.color import AB_OFFSET, AB_SCALE, BYTE_MAX, L_MAX


def l8_to_input(l8: tf.Tensor) -> tf.Tensor:
    """uint8 L8 -> float32 model input in [0, 1]."""
    return tf.cast(l8, tf.float32) / BYTE_MAX


def ab8_to_target(ab8: tf.Tensor) -> tf.Tensor:
    """uint8 a8, b8 -> float32 model target in [-1, 1)."""
    return (tf.cast(ab8, tf.float32) - AB_OFFSET) / AB_SCALE


def rgb_to_unit(rgb: tf.Tensor) -> tf.Tensor:
    """uint8 RGB -> float RGB in [0, 1]."""
    return tf.cast(rgb, tf.float32) / BYTE_MAX


def unit_to_rgb(rgb: tf.Tensor) -> tf.Tensor:
    """Float RGB in [0, 1] -> uint8 RGB, rounded."""
    return tf.cast(tf.round(rgb * BYTE_MAX), tf.uint8)


def to_rgb(lightness: tf.Tensor, ab: tf.Tensor) -> tf.Tensor:
    """Model-scale L in [0, 1] and ab in [-1, 1] -> RGB float in [0, 1]."""
    lab = tf.concat([lightness * L_MAX, ab * AB_SCALE], axis=-1)
    return tf.clip_by_value(tfio.experimental.color.lab_to_rgb(lab), 0.0, 1.0)


def to_lab(rgb: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """RGB float in [0, 1] -> model-scale (L in [0, 1], ab in [-1, 1])."""
    lab = tfio.experimental.color.rgb_to_lab(rgb)
    return lab[..., :1] / L_MAX, lab[..., 1:] / AB_SCALE
