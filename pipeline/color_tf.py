"""The project's colour convention (see `pipeline.color`), TensorFlow side, inside the graph."""

import tensorflow as tf
import tensorflow_io as tfio

AB_SCALE = 128.0


def l8_to_input(l8: tf.Tensor) -> tf.Tensor:
    """uint8 L8 -> float32 model input in [0, 1]."""
    return tf.cast(l8, tf.float32) / 255.0


def ab8_to_target(ab8: tf.Tensor) -> tf.Tensor:
    """uint8 a8, b8 -> float32 model target in [-1, 1)."""
    return (tf.cast(ab8, tf.float32) - 128.0) / AB_SCALE


def to_rgb(lightness: tf.Tensor, ab: tf.Tensor) -> tf.Tensor:
    """Model-scale L in [0, 1] and ab in [-1, 1] -> RGB float in [0, 1]."""
    lab = tf.concat([lightness * 100.0, ab * AB_SCALE], axis=-1)
    return tf.clip_by_value(tfio.experimental.color.lab_to_rgb(lab), 0.0, 1.0)


def to_lab(rgb: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """RGB float in [0, 1] -> model-scale (L in [0, 1], ab in [-1, 1])."""
    lab = tfio.experimental.color.rgb_to_lab(rgb)
    return lab[..., :1] / 100.0, lab[..., 1:] / AB_SCALE
