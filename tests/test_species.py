"""The species head: which labels it tells apart, and that it learns them in the trainer's own loop."""

import keras
import numpy as np
import tensorflow as tf

from pipeline import dataset
from trainer.network import models
from trainer.training import colorizer, loop, losses, species


def test_the_species_are_the_training_labels_that_name_one(tiny_records):
    manifest = dataset.load_manifest(str(tiny_records))
    assert species.names(manifest) == ("cornflower", "marigold", "poppy")
    assert species.names(manifest, holdout_labels=("poppy",)) == ("cornflower", "marigold")
    lookup = species.lookup(("cornflower", "marigold"))
    assert lookup(tf.constant([b"marigold", b"poppy", b"own"])).numpy().tolist() == [1, species.UNKNOWN,
                                                                                      species.UNKNOWN]


def test_a_photo_of_no_known_species_adds_nothing_to_the_loss():
    logits = tf.constant([[2.0, -1.0], [0.5, 0.5]])
    both = species.summed_loss(logits, tf.constant([0, 1]))
    first = species.summed_loss(logits, tf.constant([0, species.UNKNOWN]))
    assert float(first) < float(both) and np.isclose(float(both - first), np.log(2.0), atol=1e-6)


def _mean_cross_entropy(model, batches) -> float:
    values = [tf.nn.sparse_softmax_cross_entropy_with_logits(ids, model.species_logits(l8)).numpy()
              for l8, _, ids in batches]
    return float(np.mean(np.concatenate(values)))


def _toy_photos(count: int, seed: int):
    """Noise photos whose species shows in their lightness alone: species 0 dark, 1 mid, 2 light."""
    rng = np.random.default_rng(seed)
    ids = np.arange(count) % 3
    l8 = rng.integers(0, 80, (count, 32, 32, 1)) + 85 * ids[:, None, None, None]
    ab8 = np.full((count, 32, 32, 2), 128)
    return tf.data.Dataset.from_tensor_slices((l8.astype(np.uint8), ab8.astype(np.uint8), ids.astype(np.int32)))


def test_the_species_loss_falls_as_the_trainers_loop_trains():
    keras.utils.set_random_seed(0)
    train = _toy_photos(96, 1).shuffle(96, seed=2).repeat().batch(16)
    held = list(_toy_photos(48, 3).batch(16))
    model = colorizer.Colorizer(models.context_unet(32, width=16), losses.LOSSES["mae"], jit_compile=False,
                                species_count=3, species_weight=1.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.build_all(32)
    before = _mean_cross_entropy(model, held)
    loop.Loop(tf.distribute.get_strategy(), model, train.batch(1)).run(60)
    assert _mean_cross_entropy(model, held) < 0.5 * before
