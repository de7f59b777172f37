"""Keras callbacks the trainer adds to the standard ones (TensorBoard, EarlyStopping, ...).

Epochs are numbered from 1 in every file and line a run writes, as Keras's progress bar
numbers them; only the `epoch` arguments Keras passes count from 0.
"""

import csv
import io
import time

import keras
import numpy as np
import tensorflow as tf

from pipeline import color_tf
from pipeline.errors import UsageError
from trainer.training import run_files

PROGRESS_SECONDS = 30.0


class Throughput(keras.callbacks.Callback):
    """Adds the epoch's time, steps run, training speed (examples/s, validation excluded) and learning rate to the logs.

    `epoch_steps`: the steps of a whole epoch; an epoch that a resumed run finishes counts the
    steps run before the interruption too, one that the time budget cuts short only those it ran.
    """

    def __init__(self, global_batch_size: int, epoch_steps: int):
        super().__init__()
        self._batch, self._epoch_steps = global_batch_size, epoch_steps

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._steps, self._seconds = time.perf_counter(), 0, None

    def on_train_batch_end(self, batch, logs=None):
        self._steps = batch + 1

    def on_test_begin(self, logs=None):
        if self._seconds is None:  # the epoch's validation starts: training is over
            self._seconds = time.perf_counter() - self._start

    def on_epoch_end(self, epoch, logs=None):
        logs["epoch_seconds"] = time.perf_counter() - self._start
        logs["examples_per_second"] = self._steps * self._batch / (self._seconds or logs["epoch_seconds"])
        logs["steps"] = self._epoch_steps - self.params["steps"] + self._steps
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class TimeBudget(keras.callbacks.Callback):
    """Stops training once the run (all its resumed parts together) has used its wall-clock budget.

    The budget covers training and each epoch's validation: a step is not started when the
    time used, plus what the last validation took, reaches it, so the run keeps its budget to
    within a step (the final test scoring and export come after). After each epoch it says how
    many more epochs the budget has room for (at this run's pace so far), and when it stops
    training, after which step of which epoch.
    """

    def __init__(self, minutes: float):
        super().__init__()
        self.minutes = minutes
        self.seconds = minutes * 60.0
        self.used = 0.0

    def on_train_begin(self, logs=None):
        self._since = time.perf_counter()
        self._used_before, self._epochs, self._validation = self.used, 0, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._cut_after = None

    def _account(self):
        now = time.perf_counter()
        self.used += now - self._since
        self._since = now

    def _spent(self) -> bool:
        return self.used + self._validation >= self.seconds

    def on_train_batch_end(self, batch, logs=None):
        self._account()
        if self._spent() and not self.model.stop_training:
            self.model.stop_training = True
            self._cut_after = batch + 1

    def on_test_begin(self, logs=None):
        self._account()
        self._validation_start = self.used

    def on_test_end(self, logs=None):
        self._account()
        self._validation = self.used - self._validation_start

    def on_epoch_end(self, epoch, logs=None):
        self._account()
        self._epochs += 1
        if self._cut_after or self._spent():
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
            room_text = f"about {room}" if room else "part of one"
            print(f"time budget: {self.used / 60:.1f} of {self.minutes:g} min used, room for {room_text} of the "
                  f"{left} epochs left", flush=True)


class Progress(keras.callbacks.ProgbarLogger):
    """Keras's progress bar on a terminal; elsewhere (a log file, a pipe) a line every `every` seconds
    within an epoch (step/steps, loss, examples/s), so a long epoch does not look hung.

    Either way an epoch cut short (time budget, a diverged loss) ends showing the steps
    it ran, where Keras's would claim them all; and `Epoch n/N` counts the run's `epochs`,
    also when a resumed run finishes an interrupted epoch in a `fit` of its own. The bar ends when
    training does, so its time per step is the training's; validation's time and metrics follow
    on a line of their own (Keras's bar would end after validation, its time counted per step).
    """

    def __init__(self, global_batch_size: int, epochs: int | None = None, every: float = PROGRESS_SECONDS):
        super().__init__()
        self._batch, self._epochs, self._every = global_batch_size, epochs, every

    def set_params(self, params):
        super().set_params(params)
        self.epochs = self._epochs or self.epochs

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self._start = self._last = time.perf_counter()
        self._validation_start, self._training_logs = None, {}

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        self._training_logs = logs or {}
        now = time.perf_counter()
        if self.verbose == 2 and now - self._last >= self._every:
            self._last = now
            print(f"  step {self.seen}/{self.target} - loss: {float(logs['loss']):.4f} - "
                  f"{self.seen * self._batch / (now - self._start):.1f} examples/s", flush=True)

    def on_test_begin(self, logs=None):
        super().on_test_begin(logs)
        if self._validation_start is None:  # the epoch's validation starts: its training is over
            self.progbar.update(self.seen, list(self._training_logs.items()), finalize=True)
            self._validation_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._validation_start is None:  # no validation this epoch
            self.progbar.update(self.seen, list(logs.items()), finalize=True)
            return
        shown = " - ".join(f"{name}: {_number(value)}" for name, value in logs.items() if name != "loss")
        print(f"  validation - {time.perf_counter() - self._validation_start:.0f}s - {shown}", flush=True)


def _number(value) -> str:
    """A metric as Keras's progress bar shows it."""
    value = float(value)
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


class WarmUp(keras.callbacks.Callback):
    """The learning rate rises linearly to `peak` over the first `steps` steps, then is left alone.

    A callback, not a Keras LearningRateSchedule: an optimizer built with a schedule refuses
    ReduceLROnPlateau's changes (TypeError, Keras 3), and this one only sets the rate while
    warming up, so ReduceLROnPlateau halves it afterwards as usual. It follows the optimizer's
    step count, which a resumed run restores. With --steps_per_execution N it moves every N steps.
    """

    def __init__(self, peak: float, steps: int):
        super().__init__()
        self._peak, self._steps = peak, steps

    def on_train_begin(self, logs=None):
        self._warm = False

    def on_train_batch_begin(self, batch, logs=None):
        if self._warm:
            return
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self._warm = step >= self._steps
        if not self._warm:
            self.model.optimizer.learning_rate = self._peak * (step + 1) / self._steps


class Diverged(UsageError):
    """The training loss became NaN or infinite: a learning rate too high, most often."""


class Divergence(keras.callbacks.Callback):
    """Stops training at the first step whose loss is not finite, and says where (`where`, None while finite).

    Keras's TerminateOnNaN stops too, but the run then looks finished; the trainer
    records this one as diverged instead (metrics.json) and exits with an error.
    """

    def __init__(self):
        super().__init__()
        self.where = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = float(logs["loss"])
        if not np.isfinite(loss) and self.where is None:
            self.where = {"epoch": self._epoch + 1, "step": batch + 1, "loss": str(loss)}
            self.model.stop_training = True


class BestWeights(keras.callbacks.Callback):
    """The weights with the lowest `monitor` so far, replaced whole: a kill mid-write leaves the previous best."""

    def __init__(self, path: str, monitor: str):
        super().__init__()
        self._path, self._monitor = path, monitor
        self.best = float("inf")

    def on_epoch_end(self, epoch, logs=None):
        value = float(logs[self._monitor])
        if value < self.best:
            self.best = value
            run_files.write_atomically(self._path, lambda temporary: self.model.save_weights(temporary, overwrite=True))


class History(keras.callbacks.Callback):
    """history.csv, one row per epoch, the whole file rewritten (atomically) at each epoch's end.

    Keras's CSVLogger appends: a kill mid-row leaves a torn line that the next run's
    first row is glued to. Here an epoch a resumed run repeats replaces its earlier row.
    Epochs are numbered from 1, as the console and curves.png number them.
    """

    def __init__(self, path: str):
        super().__init__()
        self._path = path

    def on_epoch_end(self, epoch, logs=None):
        rows = [row for row in run_files.history_rows(self._path) if int(row["epoch"]) <= epoch]
        rows.append({"epoch": epoch + 1, **{name: float(value) for name, value in (logs or {}).items()}})
        text = io.StringIO()
        writer = csv.DictWriter(text, ["epoch", *sorted({name for row in rows for name in row} - {"epoch"})],
                                restval="NA", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        run_files.write_text_atomically(self._path, text.getvalue())


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
