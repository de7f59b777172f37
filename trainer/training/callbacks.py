"""Keras callbacks the trainer's loop (`trainer.training.epochs`) calls beside Keras's own (EarlyStopping,
ReduceLROnPlateau), with the hooks and arguments `keras.Model.fit` uses: `batch` is the index within its
epoch of a call's last step (its first, for `on_train_batch_begin`), and `logs` holds the training loss
only at logging steps, the only times it is read back from the devices.

Epochs are numbered from 1 in every file and line a run writes; only the `epoch` arguments Keras's
hooks take count from 0.
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

# Validation's metrics on the console; history.csv and TensorBoard have them all.
_SHOWN = ("loss", "rgb_psnr", "rgb_ssim", "colourfulness_ratio", "neutral_false_colour")


class Throughput(keras.callbacks.Callback):
    """Adds the epoch's time, steps done, training speed (examples/s, validation excluded) and learning rate to
    the logs.

    `steps` counts the epoch's steps done, those an interrupted run did before it resumed included;
    the speed counts only the steps run since this process started the epoch.
    """

    def __init__(self, global_batch_size: int):
        super().__init__()
        self._batch = global_batch_size

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._first, self._steps, self._seconds = time.perf_counter(), None, 0, None

    def on_train_batch_begin(self, batch, logs=None):
        if self._first is None:
            self._first = batch

    def on_train_batch_end(self, batch, logs=None):
        self._steps = batch + 1

    def on_test_begin(self, logs=None):
        if self._seconds is None:  # the epoch's validation starts: training is over
            self._seconds = time.perf_counter() - self._start

    def on_epoch_end(self, epoch, logs=None):
        logs["epoch_seconds"] = time.perf_counter() - self._start
        ran = self._steps - (self._first or 0)
        logs["examples_per_second"] = ran * self._batch / (self._seconds or logs["epoch_seconds"])
        logs["steps"] = self._steps
        logs["learning_rate"] = _learning_rate(self.model)


def _learning_rate(model) -> float:
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


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


class Progress(keras.callbacks.Callback):
    """The console's account of training: `Epoch n/N` (under a time budget, which N only caps), a line at each logging step (step/steps, loss,
    examples/s), the epoch's line when its training ends (steps, time, time per step, loss), and validation's
    time and main metrics on a line of their own. An epoch cut short (time budget) ends showing the steps it ran.
    """

    def __init__(self, global_batch_size: int, epochs: int, budget_minutes: float | None = None):
        super().__init__()
        self._batch, self._epochs, self._budget = global_batch_size, epochs, budget_minutes

    def on_epoch_begin(self, epoch, logs=None):
        # Under a time budget, --epochs is only a ceiling: the budget says when training ends.
        of = f" (of at most {self._epochs}; time budget {self._budget:g} min)" if self._budget else f"/{self._epochs}"
        print(f"Epoch {epoch + 1}{of}", flush=True)
        self._start, self._first, self._done, self._validation_start = time.perf_counter(), None, 0, None

    def on_train_batch_begin(self, batch, logs=None):
        if self._first is None:
            self._first = batch

    def on_train_batch_end(self, batch, logs=None):
        self._done = batch + 1
        if logs and "loss" in logs and self._done < self.params["steps"]:
            speed = (self._done - self._first) * self._batch / (time.perf_counter() - self._start)
            print(f"  step {self._done}/{self.params['steps']} - loss: {_number(logs['loss'])} - "
                  f"{speed:.1f} examples/s", flush=True)

    def on_test_begin(self, logs=None):
        if self._validation_start is None:  # the epoch's validation starts: its training is over
            self._training_line(logs or {})
            self._validation_start = time.perf_counter()

    def _training_line(self, logs):
        seconds = time.perf_counter() - self._start
        per_step = seconds / max(self._done - (self._first or 0), 1)
        loss = f" - loss: {_number(logs['loss'])}" if "loss" in logs else ""
        print(f"{self._done}/{self.params['steps']} - {seconds:.0f}s - {per_step * 1000:.0f}ms/step{loss}",
              flush=True)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._validation_start is None:  # no validation this epoch
            self._training_line(logs)
            return
        shown = " - ".join(f"{name}: {_number(value)}" for name, value in logs.items()
                           if name.startswith("val_") and name.rsplit("val_", 1)[1].removeprefix("unseen_") in _SHOWN)
        print(f"  validation - {time.perf_counter() - self._validation_start:.0f}s - {shown}", flush=True)


def _number(value) -> str:
    """A metric as Keras's progress bar shows it."""
    value = float(value)
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


class WarmUp(keras.callbacks.Callback):
    """The learning rate rises linearly to `peak` over the first `steps` steps, then is left alone.

    A callback, not a Keras LearningRateSchedule: an optimizer built with a schedule refuses
    ReduceLROnPlateau's changes (TypeError, Keras 3), and this one only sets the rate while
    warming up, so ReduceLROnPlateau halves it afterwards as usual. It counts steps on the host
    (`epoch_steps` per epoch), so it reads nothing back from the devices; with --steps_per_execution N
    it moves every N steps, and the first call at or past the warm-up's end sets the peak.
    """

    def __init__(self, peak: float, steps: int, epoch_steps: int):
        super().__init__()
        self._peak, self._steps, self._epoch_steps = peak, steps, epoch_steps

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        step = self._epoch * self._epoch_steps + batch
        if step < self._steps + self.params.get("steps_per_execution", 1) - 1:
            self.model.optimizer.learning_rate = self._peak * min(step + 1, self._steps) / self._steps


class Diverged(UsageError):
    """The training loss became NaN or infinite: a learning rate too high, most often."""


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
                tf.summary.image("validation photos: gray | predicted | truth", self.sheet(), step=epoch + 1)
            self._writer.flush()


class Summaries(keras.callbacks.Callback):
    """TensorBoard scalars: each epoch's under Keras's tags (`epoch_loss`, ...), numbered as the console numbers
    epochs, the training ones in `train/` and validation's (`val_x` as `epoch_x`) in `validation/`; and at every
    logging step, numbered by the run's step, the training loss, learning rate and examples/s since the last
    (`step_loss`, `step_learning_rate`, `step_examples_per_second` in `train/`)."""

    def __init__(self, log_dir: str, global_batch_size: int):
        super().__init__()
        self._writers = {part: tf.summary.create_file_writer(f"{log_dir}/{part}") for part in ("train", "validation")}
        self._batch = global_batch_size

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._last = epoch, None

    def on_train_batch_end(self, batch, logs=None):
        if "loss" not in (logs or {}):  # read back only at logging steps
            return
        step, now = self._epoch * self.params["steps"] + batch + 1, time.perf_counter()
        with self._writers["train"].as_default():
            tf.summary.scalar("step_loss", float(logs["loss"]), step=step)
            tf.summary.scalar("step_learning_rate", _learning_rate(self.model), step=step)
            if self._last:
                tf.summary.scalar("step_examples_per_second",
                                  (step - self._last[0]) * self._batch / (now - self._last[1]), step=step)
        self._last = (step, now)

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            part, tag = ("validation", name[len("val_"):]) if name.startswith("val_") else ("train", name)
            with self._writers[part].as_default():
                tf.summary.scalar(f"epoch_{tag.removeprefix('epoch_')}", float(value), step=epoch + 1)
        for writer in self._writers.values():
            writer.flush()


class Profile(keras.callbacks.Callback):
    """TensorFlow's profiler over the training steps `first` to `last` (counted from 1 over the run), into
    `log_dir` for TensorBoard's Profile tab; with --steps_per_execution N, over the calls that run them."""

    def __init__(self, log_dir: str, first: int, last: int, epoch_steps: int):
        super().__init__()
        self._dir, self._first, self._last, self._epoch_steps = log_dir, first, last, epoch_steps
        self._running = False

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        step = self._epoch * self._epoch_steps + batch + 1
        if not self._running and step <= self._first <= step + self.params["steps_per_execution"] - 1:
            tf.profiler.experimental.start(self._dir)
            self._running = True

    def on_train_batch_end(self, batch, logs=None):
        if self._running and self._epoch * self._epoch_steps + batch + 1 >= self._last:
            tf.profiler.experimental.stop()
            self._running = False
