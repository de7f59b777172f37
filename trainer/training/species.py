"""Species knowledge for training: an auxiliary head that names each photo's species from the photo-wide features.

Iizuka, Simo-Serra and Ishikawa (2016) train their colourizer's global branch jointly on scene
classes and report that the colours it picks then fit the recognised scene; ChromaGAN adds a class
loss for the same reason. Every record carries its photo's folder name (`label`); where the folders
are species (the flowers), the network is told which species it looks at, through a small head on
the features its global-context branch averages over the whole photo. The head trains with the
network and is not exported: the colourizer still takes L and hints alone.

A photo whose folder names no species does not count towards the head: one directly in an input
folder (its label is then that folder, the `--input`'s own name) or of a held-out species.
"""

import keras
import tensorflow as tf
from keras import layers

HIDDEN_UNITS = 64
UNKNOWN = -1


def names(manifest, holdout_labels=()) -> tuple[str, ...]:
    """The species the head tells apart: the training split's labels that name a species, sorted."""
    sources = {source for entry in manifest.splits.values() for source in entry.by_source}
    labels = manifest.splits["train"].by_label
    return tuple(sorted(label for label in labels if label not in sources and label not in holdout_labels))


def lookup(species: tuple[str, ...]):
    """Label bytes (b,) -> species index (b,) int32, UNKNOWN for labels that name none."""
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(list(species)), tf.range(len(species), dtype=tf.int32)),
        default_value=UNKNOWN)
    return table.lookup


def photo_features(net: keras.Model) -> keras.KerasTensor:
    """The network's photo-wide features: the output of its global-context pooling."""
    pooled = [layer for layer in net.layers if isinstance(layer, layers.GlobalAveragePooling2D)]
    if not pooled:
        raise ValueError(f"{net.name} has no photo-wide features (global pooling) for a species head")
    return pooled[0].output


def head(features_shape, count: int) -> keras.Model:
    """Photo-wide features (b, 1, 1, c) -> species logits (b, count), float32."""
    inputs = keras.Input(features_shape[1:])
    hidden = layers.Dense(HIDDEN_UNITS, activation="relu")(layers.Flatten()(inputs))
    return keras.Model(inputs, layers.Dense(count, dtype="float32")(hidden), name="species_head")


def summed_loss(logits: tf.Tensor, species: tf.Tensor) -> tf.Tensor:
    """Cross-entropy summed over the photos whose species is known (the caller divides by the global batch)."""
    known = species >= 0
    per_photo = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.maximum(species, 0), tf.cast(logits, tf.float32))
    return tf.reduce_sum(tf.where(known, per_photo, 0.0))

