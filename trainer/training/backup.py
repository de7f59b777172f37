"""What a run resumes from: a checkpoint every N steps, at each epoch's end and on SIGTERM.

A checkpoint is the model's weights (with the optimizer's), where training stands
(`Position`: the epoch and how many of its steps are done), the running sums of
the epoch's training metrics, and the state of the callbacks that count across
epochs (early stopping, the best score, the time used). The training data are a
stream keyed on (seed, epoch) (`run.training_stream`), so the position says which
batch comes next: a run killed at any moment and re-run ends exactly where an
uninterrupted run ends.

Each checkpoint's weights go to a file of their own; one small state file,
written atomically after them, names them: it is the commit, and older weights
are removed after it. Only the chief writes.
"""

import dataclasses
import json
import signal
import threading

import keras
import numpy as np
import tensorflow as tf

from trainer.training import callbacks, distribute, run_files

STATE_FILE = "training_metadata.json"
TERMINATED_EXIT_STATUS = 143  # 128 + SIGTERM, as a shell reports a process SIGTERM ended

# What each stateful callback must carry over an interruption to behave as if there had been none.
_STATE = {
    keras.callbacks.EarlyStopping: ("wait", "best", "best_epoch", "stopped_epoch"),
    callbacks.BestWeights: ("best",),
    keras.callbacks.ReduceLROnPlateau: ("wait", "best", "cooldown_counter"),
    callbacks.TimeBudget: ("used",),
    # Which copy the model holds at an epoch's end (the average): a resumed run must swap back first.
    # Keras keeps it in a private attribute; tests/test_training_stream.py fails if that attribute goes.
    keras.callbacks.SwapEMAWeights: ("_ema_weights_in_model",),
}


@dataclasses.dataclass(frozen=True)
class Position:
    """`step` steps of epoch `epoch` are done (both from 0, as Keras counts epochs)."""

    epoch: int = 0
    step: int = 0


def read_state(backup_dir: str) -> dict | None:
    """The last checkpoint's state (position, weights file, metric sums, callbacks); None for a new run."""
    return run_files.read_json(f"{backup_dir}/{STATE_FILE}")


def position(state: dict | None) -> Position:
    return Position(state["epoch"], state.get("step", 0)) if state else Position()


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


class _MetricSums:
    """The training metrics' running sums, over every replica and worker, read and put back.

    Keras keeps a Mean's total and count per replica; the sums are all-reduced to be read,
    and put back split evenly over the replicas, so their all-reduced sum is the same.
    """

    def __init__(self, model: keras.Model):
        self._strategy = model.distribute_strategy
        self._variables = [v for metric in model.metrics for v in metric.variables]

    def read(self) -> list[float]:
        @tf.function
        def summed():
            values = self._strategy.run(lambda: [tf.identity(v.value) for v in self._variables])
            return self._strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None)

        return [float(value) for value in summed()]

    def put(self, sums: list[float]) -> None:
        share = 1.0 / self._strategy.num_replicas_in_sync

        @tf.function
        def assign():
            for variable, total in zip(self._variables, sums):
                variable.assign(tf.cast(total * share, variable.dtype))

        self._strategy.run(assign)


class ResumableBackup(keras.callbacks.Callback):
    """Checkpoints every `every_steps` steps and at each epoch's end; restores one at the start of `fit`.

    Put it last among the callbacks: it restores the others' state after they have reset
    themselves in `on_train_begin`. A run resumed mid-epoch calls `fit` twice (the rest of
    that epoch, then the others): the callbacks' state is carried from one call to the next.
    On SIGTERM it checkpoints after the current step and exits with status 143. With several workers
    (`coordinated`) they ask each other after every step whether one got a SIGTERM, so all of them save
    at the same step and stop together: a preempted host costs no steps.
    """

    def __init__(self, backup_dir: str, stateful: list[keras.callbacks.Callback], is_chief: bool,
                 resume: dict | None, epoch_steps: int, every_steps: int, epochs: int, coordinated: bool = False):
        super().__init__()
        self._dir, self._is_chief, self._coordinated = backup_dir, is_chief, coordinated
        self._stateful = [c for c in stateful if type(c) in _STATE]
        self._pending, self._sums_pending = resume, (resume or {}).get("metric_sums")
        self._epoch_steps, self._every, self._epochs = epoch_steps, every_steps, epochs
        self._terminated = threading.Event()

    def on_train_begin(self, logs=None):
        if self._pending is not None:
            if "weights" in self._pending:
                if not self.model.optimizer.built:
                    self.model.optimizer.build(self.model.trainable_variables)
                self.model.load_weights(f"{self._dir}/{self._pending['weights']}")
            for callback, saved in zip(self._stateful, self._pending["callbacks"]):
                for name, value in saved.items():
                    setattr(callback, name, value)
        self._sums = _MetricSums(self.model)
        self._offset = self._epoch_steps - self.params["steps"]  # steps of the first epoch done before this fit
        self._done = self._offset
        self._any_worker = distribute.AnyWorker(self.model.distribute_strategy) if self._coordinated else None
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda signum, frame: self._terminated.set())

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self._sums_pending is not None:
            self._sums.put(self._sums_pending)
            self._sums_pending = None

    def on_train_batch_end(self, batch, logs=None):
        # With --steps_per_execution N this is called every N steps (`batch`: the last one's index), so a
        # multiple of the interval is passed more often than landed on: the first call past it saves.
        done, before = self._offset + batch + 1, self._done
        self._done = done
        if done == self._epoch_steps:  # the epoch's end (validation, the other callbacks) saves next
            return
        if self._terminating():
            self._save_and_exit(Position(self._epoch, done))
        if self._every and done // self._every > before // self._every:
            self._save(Position(self._epoch, done))

    def on_epoch_end(self, epoch, logs=None):
        self._offset = self._done = 0
        if self._terminating():
            self._save_and_exit(Position(epoch + 1, 0))
        self._save(Position(epoch + 1, 0))

    def _terminating(self) -> bool:
        """A SIGTERM came here (or, coordinated, to any worker)."""
        if self._any_worker is None:
            return self._terminated.is_set()
        return self._any_worker(self._terminated.is_set())

    def _save_and_exit(self, where: Position):
        self._save(where)
        print(f"SIGTERM: saved after step {where.step or self._epoch_steps}/{self._epoch_steps} of epoch "
              f"{where.epoch + (1 if where.step else 0)}; re-run the same command to resume", flush=True)
        raise SystemExit(TERMINATED_EXIT_STATUS)

    def on_train_end(self, logs=None):
        """Carries the callbacks' state to the next `fit`; a run stopped early is over, a re-run trains no more."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # outside training, SIGTERM ends the process as usual
        self._pending = {"callbacks": self._callback_state()}
        state = read_state(self._dir)
        if self._is_chief and self.model.stop_training and state is not None:
            self._commit({**state, "epoch": self._epochs, "step": 0})

    def _callback_state(self) -> list[dict]:
        return [{name: _plain(getattr(c, name)) for name in _STATE[type(c)]} for c in self._stateful]

    def _save(self, where: Position):
        sums = self._sums.read() if where.step else None  # a collective: every worker takes part
        if not self._is_chief:
            return
        weights = f"epoch-{where.epoch}-step-{where.step}.weights.h5"
        run_files.write_atomically(f"{self._dir}/{weights}",
                                   lambda temporary: self.model.save_weights(temporary, overwrite=True))
        self._commit({"epoch": where.epoch, "step": where.step, "weights": weights, "metric_sums": sums,
                      "callbacks": self._callback_state()})

    def _commit(self, state: dict):
        run_files.write_text_atomically(f"{self._dir}/{STATE_FILE}", json.dumps(state))
        for name in tf.io.gfile.listdir(self._dir):
            if name not in (STATE_FILE, state["weights"]):
                tf.io.gfile.remove(f"{self._dir}/{name}")
