"""A run's epochs, driven by the trainer itself rather than `keras.Model.fit`.

Each epoch runs its steps in calls of --steps_per_execution steps (`Loop.run`), reads the training
loss back only every --log_every_steps steps and at the epoch's end, checkpoints after the first call
past each multiple of --checkpoint_every_steps, then validates (the weights' moving average, when
kept, put in for validation and the callbacks that follow it, then taken out again), calls the
callbacks at Keras's hooks, and checkpoints the epoch's end. Every worker runs the same calls, so the
collectives (checkpoints, loss reads, validation) meet. On SIGTERM, `Preemption` saves after a call
the cluster agrees on and exits.
"""

import contextlib
import dataclasses
import math

import keras
import tensorflow as tf

from trainer.evaluation import scoring
from trainer.training.backup import Backup, Position
from trainer.training.loop import Loop
from trainer.training.preemption import Preemption


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How a run's steps are laid out: epochs of `epoch_steps`, calls of `per_call` steps, a checkpoint after
    the first call past each multiple of `checkpoint_every` (0: epoch ends only), the loss read every
    `log_every` steps."""

    epochs: int
    epoch_steps: int
    per_call: int = 1
    checkpoint_every: int = 0
    log_every: int = 100


def _passed(before: int, after: int, every: int) -> bool:
    return bool(every) and after // every > before // every


class Epochs:
    """Trains `model` with `loop` as `schedule` says, validating on `validation` (metric-name prefix -> batches
    of (L8, ab8)) at each epoch's end."""

    def __init__(self, model, loop: Loop, backup: Backup, callbacks: list[keras.callbacks.Callback],
                 schedule: Schedule, validation: dict[str, tf.data.Dataset], strategy: tf.distribute.Strategy,
                 pause_when_stopped: bool = False):
        self._model, self._loop, self._backup, self._schedule = model, loop, backup, schedule
        self._pause = pause_when_stopped  # a stop (the time budget) checkpoints and exits: a re-run trains on
        self._validation, self._strategy = validation, strategy
        self._callbacks = keras.callbacks.CallbackList(
            callbacks, model=model, epochs=schedule.epochs, steps=schedule.epoch_steps,
            steps_per_execution=schedule.per_call, verbose=0)
        self._where = Position()

    def run(self) -> dict | None:
        """Trains from the last checkpoint (none: from the start) to the last epoch or an earlier stop; returns
        where the training loss stopped being finite (None if it did not)."""
        start = self._backup.restore()
        self._model.stop_training = False
        self._callbacks.on_train_begin()
        self._backup.restore_callbacks()
        preemption = Preemption(self._strategy, self._save_here, self._backup.workers)
        try:
            for epoch in range(start.epoch, self._schedule.epochs):
                diverged = self._epoch(epoch, start.step if epoch == start.epoch else 0, preemption)
                if diverged:
                    return diverged
                if self._model.stop_training:
                    if self._pause:
                        self._paused(Position(epoch + 1, 0))
                    self._backup.finish(self._schedule.epochs)
                    break
        finally:
            preemption.close()
        self._callbacks.on_train_end()
        return None

    def _save_here(self) -> str:
        self._backup.save(self._where)
        return (f"saved after step {self._where.step}/{self._schedule.epoch_steps} of epoch "
                f"{self._where.epoch + 1}")

    def _epoch(self, epoch: int, step: int, preemption: Preemption) -> dict | None:
        if not step:
            self._loop.reset()
        self._callbacks.on_epoch_begin(epoch)
        steps, logs = self._schedule.epoch_steps, {}
        while step < steps and not self._model.stop_training:
            count = min(self._schedule.per_call, steps - step)
            self._callbacks.on_train_batch_begin(step)
            self._loop.run(count)
            before, step = step, step + count
            logs = {"loss": self._loss()} if step == steps or _passed(before, step, self._schedule.log_every) else {}
            if not math.isfinite(logs.get("loss", 0.0)):
                return {"epoch": epoch + 1, "step": step, "loss": str(logs["loss"])}
            self._callbacks.on_train_batch_end(step - 1, logs)
            if step < steps:
                self._where = Position(epoch, step)
                preemption.check()
                if _passed(before, step, self._schedule.checkpoint_every):
                    self._backup.save(self._where)
        if self._pause and self._model.stop_training and step < steps:
            self._paused(Position(epoch, step))
        logs = {"loss": logs.get("loss", None) or self._loss()}
        with averaged_weights(self._model):
            self._callbacks.on_test_begin(logs)
            for prefix, batches in self._validation.items():
                logs.update({f"{prefix}{name}": value
                             for name, value in scoring.means(self._model.evaluator, batches).items()})
            self._callbacks.on_test_end(logs)
            self._callbacks.on_epoch_end(epoch, logs)
        self._backup.save(Position(epoch + 1, 0))
        return None

    def _paused(self, where: Position) -> None:
        """Checkpoints at `where` (unless an epoch's end just did) and exits: the run is not finished."""
        if where.step:
            self._backup.save(where)
        print(f"Paused after step {where.step}/{self._schedule.epoch_steps} of epoch {where.epoch + 1}: the time "
              "budget is used; re-run with a larger --time_budget_minutes to train on", flush=True)
        raise SystemExit(0)

    def _loss(self) -> float:
        total, count = self._loop.global_sums()
        return total / count if count else float("nan")



@contextlib.contextmanager
def averaged_weights(model):
    """While open, the model's network holds the optimizer's moving average of its weights, when one is kept.

    Under mixed_float16 the optimizer is Keras's LossScaleOptimizer, whose own `use_ema` is always False:
    the average lives in the optimizer it wraps."""
    keeps_average = getattr(model.optimizer, "inner_optimizer", model.optimizer).use_ema
    trained = model.net.get_weights() if keeps_average else None
    if keeps_average:
        model.optimizer.finalize_variable_values(model.net.trainable_variables)
    try:
        yield
    finally:
        if keeps_average:
            model.net.set_weights(trained)
