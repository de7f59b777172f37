"""Keras callbacks the trainer adds to the standard ones (TensorBoard, EarlyStopping, ...).

Every file a run resumes from is written whole or not at all (`write_atomically`),
so a run killed at any moment, even mid-write, resumes where it left off.
"""

import csv
import io
import json
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from pipeline import color_tf

STATE_FILE = "training_metadata.json"
PROGRESS_SECONDS = 30.0


def write_atomically(path: str, write: Callable[[str], None]) -> None:
    """`write(temporary)`, then rename the temporary file over `path`.

    Whoever reads `path` (a resumed run) finds the old file or the new one, never a
    torn one. The temporary file sits in the same folder, so the rename stays within
    one file system, and its name ends like `path` (Keras wants `.weights.h5`).
    """
    folder, name = path.rsplit("/", 1)
    tf.io.gfile.makedirs(folder)
    temporary = f"{folder}/.tmp-{name}"
    write(temporary)
    tf.io.gfile.rename(temporary, path, overwrite=True)


def write_text_atomically(path: str, text: str) -> None:
    def write(temporary):
        with tf.io.gfile.GFile(temporary, "w") as handle:
            handle.write(text)

    write_atomically(path, write)


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
    """Stops training once the run (all its resumed parts together) has used its wall-clock budget.

    After each epoch it says how many more epochs the budget has room for (at this
    run's pace so far), and when it stops training, after which step of which epoch.
    """

    def __init__(self, minutes: float):
        super().__init__()
        self.minutes = minutes
        self.seconds = minutes * 60.0
        self.used = 0.0

    def on_train_begin(self, logs=None):
        self._since = time.perf_counter()
        self._used_before, self._epochs = self.used, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._cut_after = None

    def _account(self):
        now = time.perf_counter()
        self.used += now - self._since
        self._since = now

    def on_train_batch_end(self, batch, logs=None):
        self._account()
        if self.used >= self.seconds and not self.model.stop_training:
            self.model.stop_training = True
            self._cut_after = batch + 1

    def on_epoch_end(self, epoch, logs=None):
        self._account()
        self._epochs += 1
        if self.used >= self.seconds:
            where = (f"after step {self._cut_after}/{self.params['steps']} of" if self._cut_after
                     else "at the end of")
            print(f"time budget of {self.minutes:g} min used up {where} epoch {epoch + 1}: training stops here",
                  flush=True)
            self.model.stop_training = True
            return
        left = self.params["epochs"] - epoch - 1
        if left and not self.model.stop_training:
            pace = (self.used - self._used_before) / self._epochs
            room = min(left, int((self.seconds - self.used) / pace))
            print(f"time budget: {self.used / 60:.1f} of {self.minutes:g} min used, room for about {room} of the "
                  f"{left} epochs left", flush=True)


class Progress(keras.callbacks.ProgbarLogger):
    """Keras's progress bar on a terminal; elsewhere (a log file, a pipe) a line every `every` seconds
    within an epoch (step/steps, loss, examples/s), so a long epoch does not look hung.

    Either way an epoch cut short (time budget, TerminateOnNaN) ends showing the steps
    it ran, where Keras's would claim them all.
    """

    def __init__(self, global_batch_size: int, every: float = PROGRESS_SECONDS):
        super().__init__()
        self._batch, self._every = global_batch_size, every

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self._start = self._last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        now = time.perf_counter()
        if self.verbose == 2 and now - self._last >= self._every:
            self._last = now
            print(f"  step {self.seen}/{self.target} - loss: {float(logs['loss']):.4f} - "
                  f"{self.seen * self._batch / (now - self._start):.1f} examples/s", flush=True)

    def _finalize_progbar(self, logs):
        self.progbar.update(self.seen, list((logs or {}).items()), finalize=True)


class BestWeights(keras.callbacks.ModelCheckpoint):
    """The weights with the best `monitor` so far, replaced whole: a kill mid-write leaves the previous best."""

    def __init__(self, path: str, monitor: str):
        super().__init__(path, monitor=monitor, save_best_only=True, save_weights_only=True)

    def _save_model(self, epoch, batch, logs):
        if self._should_save_model(epoch, batch, logs, self.filepath):
            write_atomically(self.filepath, lambda temporary: self.model.save_weights(temporary, overwrite=True))


def _csv_rows(path: str) -> list[dict]:
    if not tf.io.gfile.exists(path):
        return []
    with tf.io.gfile.GFile(path) as handle:
        return list(csv.DictReader(handle))


class History(keras.callbacks.Callback):
    """history.csv, one row per epoch, the whole file rewritten (atomically) at each epoch's end.

    Keras's CSVLogger appends: a kill mid-row leaves a torn line that the next run's
    first row is glued to. Here an epoch a resumed run repeats replaces its earlier row.
    """

    def __init__(self, path: str):
        super().__init__()
        self._path = path

    def on_epoch_end(self, epoch, logs=None):
        rows = [row for row in _csv_rows(self._path) if int(row["epoch"]) < epoch]
        rows.append({"epoch": epoch, **{name: float(value) for name, value in (logs or {}).items()}})
        text = io.StringIO()
        writer = csv.DictWriter(text, ["epoch", *sorted({name for row in rows for name in row} - {"epoch"})],
                                restval="NA", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomically(self._path, text.getvalue())


class HeldOutValidation(keras.callbacks.Callback):
    """At each epoch's end, the metrics on photos the run never trains on (held-out species or sources),
    added to the logs as `val_unseen_<metric>`: history.csv and TensorBoard's validation curves show them
    beside the seen photos'.

    Put it after `SwapEMAWeights`, so that it scores the weights validation scores.
    """

    PREFIX = "val_unseen_"

    def __init__(self, dataset: tf.data.Dataset):
        super().__init__()
        self._dataset = dataset

    def on_epoch_end(self, epoch, logs=None):
        results = self.model.evaluate(self._dataset, return_dict=True, verbose=0)
        logs.update({f"{self.PREFIX}{name}": value for name, value in results.items()})


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
    BestWeights: ("best",),
    keras.callbacks.ReduceLROnPlateau: ("wait", "best", "cooldown_counter"),
    TimeBudget: ("used",),
    # Which copy the model holds at an epoch's end (the average): a resumed run must swap back first.
    # Keras keeps it in a private attribute; tests/test_task.py's resume test with --ema_momentum guards it.
    keras.callbacks.SwapEMAWeights: ("_ema_weights_in_model",),
}


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that also keeps the other callbacks' state, writes only on the chief, and
    can be killed at any moment.

    Keras restores weights, optimizer and epoch; without the early-stopping
    counter, the best checkpoint's score or the time used, a resumed run would
    not end where an uninterrupted one does. Put it last among the callbacks,
    so that it restores after they have reset themselves in `on_train_begin`.

    Keras writes its weights and then its epoch in place: a kill between the two,
    or during either, leaves a backup that cannot be read or does not match. Here
    each epoch's weights go to a file of their own, and one small state file,
    written atomically after them, names them with the epoch and the callbacks'
    state: it is the commit, and older weights are removed after it.
    """

    def __init__(self, backup_dir: str, stateful: list[keras.callbacks.Callback], is_chief: bool):
        super().__init__(backup_dir, delete_checkpoint=False)
        self._stateful = [c for c in stateful if type(c) in _STATE]
        self._is_chief = is_chief

    def on_train_begin(self, logs=None):
        state = read_state(self.backup_dir)
        if state is None:
            return
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(f"{self.backup_dir}/{state['weights']}")
        self.model._initial_epoch = state["epoch"]
        for callback, saved in zip(self._stateful, state["callbacks"]):
            for name, value in saved.items():
                setattr(callback, name, value)

    def _save_model(self):
        if not self._is_chief:
            return
        weights = f"epoch-{self._current_epoch}.weights.h5"
        write_atomically(f"{self.backup_dir}/{weights}",
                         lambda temporary: self.model.save_weights(temporary, overwrite=True))
        self._commit(self._current_epoch, weights)

    def _commit(self, epoch: int, weights: str):
        callbacks = [{name: _plain(getattr(c, name)) for name in _STATE[type(c)]} for c in self._stateful]
        write_text_atomically(f"{self.backup_dir}/{STATE_FILE}",
                              json.dumps({"epoch": epoch, "weights": weights, "callbacks": callbacks}))
        for name in tf.io.gfile.listdir(self.backup_dir):
            if name not in (STATE_FILE, weights):
                tf.io.gfile.remove(f"{self.backup_dir}/{name}")

    def on_train_end(self, logs=None):
        """A run that stopped early (early stopping, time budget) is over: a re-run trains no more."""
        state = read_state(self.backup_dir)
        if self._is_chief and self.model.stop_training and state is not None:
            self._commit(self.params["epochs"], state["weights"])


def read_state(backup_dir: str) -> dict | None:
    """What a resumed run starts from (epoch, weights file, callbacks' state); None for a new run."""
    path = f"{backup_dir}/{STATE_FILE}"
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)


def initial_epoch(backup_dir: str) -> int:
    """The epoch a resumed run starts at (0 for a new run), read before `fit` restores it."""
    state = read_state(backup_dir)
    return state["epoch"] if state else 0
