"""The training stream's position: a run resumed at any step sees the batches an uninterrupted one sees;
each input pipeline draws its own augmentation; the Keras private state the trainer relies on is still there."""

import inspect

import keras
import numpy as np
import tensorflow as tf

from pipeline import dataset
from trainer.training import backup, colorizer, run
from trainer.training.config import RunConfig
from trainer.training.splits import Splits

EPOCH_STEPS = 3


def _batches(records, start: backup.Position, count: int) -> list[np.ndarray]:
    config = RunConfig(str(records), "", seed=7)
    keras.utils.set_random_seed(config.seed)  # as the trainer does before it reads
    strategy = tf.distribute.get_strategy()
    stream = run.training_stream(strategy, Splits(config, 8), config, 8, EPOCH_STEPS, start)
    return [l8.numpy() for l8, _ in stream.take(count)]


def test_a_stream_started_at_any_step_continues_the_uninterrupted_one(tiny_records):
    whole = _batches(tiny_records, backup.Position(), 3 * EPOCH_STEPS)
    for epoch, step in [(0, 2), (1, 0), (1, 1), (2, 2)]:
        done = epoch * EPOCH_STEPS + step
        resumed = _batches(tiny_records, backup.Position(epoch, step), 3 * EPOCH_STEPS - done)
        assert all(np.array_equal(a, b) for a, b in zip(resumed, whole[done:])), (epoch, step)
    assert not np.array_equal(whole[0], whole[EPOCH_STEPS])  # each epoch its own order and crops


def test_each_input_pipeline_draws_its_own_augmentation():
    photos = tf.constant(np.arange(2 * 8 * 8).reshape(2, 8, 8, 1) % 251, tf.uint8)
    batch = (photos, tf.concat([photos, photos], axis=-1))
    first, again, other = (dataset.augment(5, pipeline)(tf.constant(3, tf.int64), batch)[0] for pipeline in (0, 0, 1))
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_the_keras_internals_the_trainer_relies_on_are_still_there():
    """Each has no public equivalent; if Keras renames or drops one, this fails before a resumed run goes wrong."""
    # backup._STATE carries which copy of the weights SwapEMAWeights left in the model.
    assert "_ema_weights_in_model" in vars(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    # Colorizer skips Keras's lazy build from an averaged batch, which fails under multi-worker training.
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    assert list(inspect.signature(TensorFlowTrainer._maybe_symbolic_build).parameters) == [
        "self", "iterator", "data_batch"]
    assert "_maybe_symbolic_build" in inspect.getsource(TensorFlowTrainer.fit)
    assert colorizer.Colorizer._maybe_symbolic_build is not TensorFlowTrainer._maybe_symbolic_build
