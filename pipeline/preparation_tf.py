"""The preparation rule of `pipeline.preparation`, TensorFlow side, inside the SavedModel's graph.

Photos of any size (one size per batch) are brought to the network's view and
cut into the same windows, by the same arithmetic, as the NumPy side; a test
keeps the two in agreement.
"""

import tensorflow as tf

from pipeline.preparation import Preparation, blend_weights


def resize(rgb: tf.Tensor, height, width) -> tf.Tensor:
    """Float RGB (b, h, w, 3) to height x width: area averaging when neither side grows, else bilinear."""
    shape = tf.shape(rgb)
    shrinking = tf.logical_and(height <= shape[1], width <= shape[2])
    size = tf.stack([height, width])
    return tf.cond(shrinking, lambda: tf.image.resize(rgb, size, method="area"),
                   lambda: tf.image.resize(rgb, size, method="bilinear"))


def view_shape(prep: Preparation, height: tf.Tensor, width: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """`Preparation.view_shape` for int32 scalars."""
    if prep.resize == "stretch":
        return tf.constant(prep.size), tf.constant(prep.size)
    scale = prep.size / tf.cast(tf.minimum(height, width), tf.float64)

    def side(length):
        return tf.maximum(prep.size, tf.cast(tf.round(tf.cast(length, tf.float64) * scale), tf.int32))

    return side(height), side(width)


def window_offsets(length: tf.Tensor, size: int) -> tf.Tensor:
    """`pipeline.preparation.window_offsets` for an int32 scalar."""
    spare = tf.cast(length - size, tf.float64)
    count = tf.where(length <= size, 1, tf.cast(tf.math.ceil(spare / (size // 2)), tf.int32) + 1)
    steps = tf.cast(tf.range(count), tf.float64) * spare / tf.cast(tf.maximum(count - 1, 1), tf.float64)
    return tf.cast(tf.round(steps), tf.int32)


def in_windows(prep: Preparation, predict, planes: tf.Tensor) -> tf.Tensor:
    """`predict` over every size x size window of a view's planes (b, h, w, c), blended -> (b, h, w, k).

    The windows of all photos go through `predict` in one call.
    """
    size = prep.size
    height, width = tf.shape(planes)[1], tf.shape(planes)[2]
    tops, lefts = tf.meshgrid(window_offsets(height, size), window_offsets(width, size), indexing="ij")
    corners = tf.stack([tf.reshape(tops, [-1]), tf.reshape(lefts, [-1])], axis=1)
    count, batch = tf.shape(corners)[0], tf.shape(planes)[0]
    windows = tf.map_fn(lambda corner: planes[:, corner[0]:corner[0] + size, corner[1]:corner[1] + size],
                        corners, fn_output_signature=planes.dtype)
    flat = tf.reshape(windows, tf.concat([[count * batch, size, size], tf.shape(planes)[3:]], axis=0))
    predicted = predict(flat)
    predicted = tf.reshape(predicted, tf.concat([[count, batch, size, size], tf.shape(predicted)[3:]], axis=0))
    weights = tf.constant(blend_weights(size))[None, :, :, None]

    def placed(corner, value):
        padding = [[0, 0], [corner[0], height - corner[0] - size], [corner[1], width - corner[1] - size], [0, 0]]
        return tf.pad(value * weights, padding)

    total = tf.reduce_sum(tf.map_fn(lambda item: placed(*item), (corners, predicted),
                                    fn_output_signature=predicted.dtype), axis=0)
    weight = tf.reduce_sum(tf.map_fn(lambda corner: placed(corner, tf.ones([1, size, size, 1])), corners,
                                     fn_output_signature=tf.float32), axis=0)
    return total / weight
