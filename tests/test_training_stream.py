"""The training stream's position: a stream started at any step, or an iterator restored from a checkpoint,
gives the batches an uninterrupted one gives; each input pipeline draws its own augmentation."""

import keras
import numpy as np
import tensorflow as tf

from pipeline import dataset
from trainer.training import backup, run
from trainer.training.config import RunConfig
from trainer.training.splits import Splits

EPOCH_STEPS = 3


def _stream(records, start: backup.Position, epoch_steps: int = EPOCH_STEPS) -> tf.data.Dataset:
    config = RunConfig(str(records), "", seed=7)
    keras.utils.set_random_seed(config.seed)  # as the trainer does before it reads
    return run.training_stream(Splits(config, 8), config, 8, epoch_steps, start)


def _batches(records, start: backup.Position, count: int) -> list[np.ndarray]:
    return [l8.numpy() for l8, _ in _stream(records, start).take(count)]


def test_a_stream_started_at_any_step_continues_the_uninterrupted_one(tiny_records):
    whole = _batches(tiny_records, backup.Position(), 3 * EPOCH_STEPS)
    for epoch, step in [(0, 2), (1, 0), (1, 1), (2, 2)]:
        done = epoch * EPOCH_STEPS + step
        resumed = _batches(tiny_records, backup.Position(epoch, step), 3 * EPOCH_STEPS - done)
        assert all(np.array_equal(a, b) for a, b in zip(resumed, whole[done:])), (epoch, step)
    assert not np.array_equal(whole[0], whole[EPOCH_STEPS])  # each epoch its own order and crops


def test_an_iterator_restored_from_a_checkpoint_continues_the_uninterrupted_stream(tiny_records, tmp_path):
    """Epochs longer than the photos (each repeats its shuffled share): restored mid-epoch and mid-repeat."""
    epoch_steps = 13  # the 72 photos make 9 batches of 8
    whole = [l8.numpy() for l8, _ in _stream(tiny_records, backup.Position(), epoch_steps).take(3 * epoch_steps)]
    for done in (4, 11, epoch_steps + 10):
        iterator = iter(_stream(tiny_records, backup.Position(), epoch_steps))
        for _ in range(done):
            next(iterator)
        path = tf.train.Checkpoint(data=iterator).write(str(tmp_path / f"after-{done}"))
        restored = iter(_stream(tiny_records, backup.Position(), epoch_steps))
        tf.train.Checkpoint(data=restored).read(path).assert_existing_objects_matched()
        rest = [next(restored)[0].numpy() for _ in range(3 * epoch_steps - done)]
        assert all(np.array_equal(a, b) for a, b in zip(rest, whole[done:])), done


def test_each_input_pipeline_draws_its_own_augmentation():
    photos = tf.constant(np.arange(2 * 8 * 8).reshape(2, 8, 8, 1) % 251, tf.uint8)
    batch = (photos, tf.concat([photos, photos], axis=-1))
    first, again, other = (dataset.augment(5, pipeline)(tf.constant(3, tf.int64), batch)[0] for pipeline in (0, 0, 1))
    assert np.array_equal(first, again) and not np.array_equal(first, other)
