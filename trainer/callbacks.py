"""Keras callbacks the trainer adds to the standard ones (TensorBoard, EarlyStopping, ...)."""

import json
import time

import keras
import numpy as np
import tensorflow as tf

from pipeline import color_tf

STATE_FILE = "callbacks.json"


class Throughput(keras.callbacks.Callback):
    """Adds the epoch's time, training speed (examples/s, validation excluded) and learning rate to the logs."""

    def __init__(self, global_batch_size: int):
        super().__init__()
        self._batch = global_batch_size

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._steps, self._seconds = time.perf_counter(), 0, None

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1

    def on_test_begin(self, logs=None):
        if self._seconds is None:  # the epoch's validation starts: training is over
            self._seconds = time.perf_counter() - self._start

    def on_epoch_end(self, epoch, logs=None):
        logs["epoch_seconds"] = time.perf_counter() - self._start
        logs["examples_per_second"] = self._steps * self._batch / (self._seconds or logs["epoch_seconds"])
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class TimeBudget(keras.callbacks.Callback):
    """Stops training once the run (all its resumed parts together) has used its wall-clock budget."""

    def __init__(self, minutes: float):
        super().__init__()
        self.seconds = minutes * 60.0
        self.used = 0.0

    def on_train_begin(self, logs=None):
        self._since = time.perf_counter()

    def _account(self):
        now = time.perf_counter()
        self.used += now - self._since
        self._since = now

    def on_train_batch_end(self, batch, logs=None):
        self._account()
        if self.used >= self.seconds:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self._account()


class PhotoLogger(keras.callbacks.Callback):
    """Every N epochs, a TensorBoard image of fixed validation photos: gray | predicted | truth."""

    def __init__(self, log_dir: str, l8: np.ndarray, ab8: np.ndarray, every: int):
        super().__init__()
        self._writer = tf.summary.create_file_writer(log_dir)
        self._lightness, self._ab = color_tf.l8_to_input(l8), color_tf.ab8_to_target(ab8)
        self._every = every

    def sheet(self) -> tf.Tensor:
        predicted = self.model.automatic(self._lightness)
        gray = tf.repeat(self._lightness, 3, axis=-1)
        rows = tf.concat([gray, color_tf.to_rgb(self._lightness, predicted),
                          color_tf.to_rgb(self._lightness, self._ab)], axis=2)
        return tf.reshape(rows, (1, -1, rows.shape[2], 3))

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self._every == 0:
            with self._writer.as_default():
                tf.summary.image("validation photos: gray | predicted | truth", self.sheet(), step=epoch)
            self._writer.flush()


# What each stateful Keras callback must carry over an interruption to behave as if there had been none.
_STATE = {
    keras.callbacks.EarlyStopping: ("wait", "best", "best_epoch", "stopped_epoch"),
    keras.callbacks.ModelCheckpoint: ("best",),
    keras.callbacks.ReduceLROnPlateau: ("wait", "best", "cooldown_counter"),
    TimeBudget: ("used",),
}


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that also keeps the other callbacks' state, and writes only on the chief.

    Keras restores weights, optimizer and epoch; without the early-stopping
    counter, the best checkpoint's score or the time used, a resumed run would
    not end where an uninterrupted one does. Put it last among the callbacks,
    so that it restores after they have reset themselves in `on_train_begin`.
    """

    def __init__(self, backup_dir: str, stateful: list[keras.callbacks.Callback], is_chief: bool):
        super().__init__(backup_dir, delete_checkpoint=False)
        self._stateful = [c for c in stateful if type(c) in _STATE]
        self._is_chief = is_chief
        self._state_path = f"{backup_dir}/{STATE_FILE}"

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if tf.io.gfile.exists(self._state_path):
            with tf.io.gfile.GFile(self._state_path) as handle:
                saved = json.load(handle)
            for callback, state in zip(self._stateful, saved):
                for name, value in state.items():
                    setattr(callback, name, value)

    def _save_model(self):
        if not self._is_chief:
            return
        super()._save_model()
        state = [{name: _plain(getattr(c, name)) for name in _STATE[type(c)]} for c in self._stateful]
        with tf.io.gfile.GFile(self._state_path, "w") as handle:
            json.dump(state, handle)


def initial_epoch(backup_dir: str) -> int:
    """The epoch a resumed run starts at (0 for a new run), read before `fit` restores it."""
    path = f"{backup_dir}/training_metadata.json"
    if not tf.io.gfile.exists(path):
        return 0
    with tf.io.gfile.GFile(path) as handle:
        return int(json.load(handle)["epoch"])
