"""What a run resumes from: a checkpoint every N steps, at each epoch's end and on SIGTERM.

A checkpoint is one `tf.train.Checkpoint` of the network and the optimizer (its step count, its
learning-rate schedule's position and its moving average of the weights included), written by
the chief; each worker's own position in its training data (its `tf.data` iterator, shuffle
buffer included, so nothing it has trained on is read again); where training stands
(`Position`: the epoch and how many of its steps are done); the epoch's running training-loss
sums; and the state of the callbacks that count across epochs (early stopping, the best score,
the time used). A run killed at any moment and re-run ends exactly where an uninterrupted run ends.

Every worker writes its data position first; after a barrier the chief writes the network and
optimizer, then one small state file, atomically, naming them: that file is the commit, and older
checkpoints are removed after it. A worker keeps its last two data positions, so the one the
commit names exists whether or not the commit happened.
"""

import dataclasses
import json

import keras
import numpy as np
import tensorflow as tf

from pipeline.errors import ConfigError
from trainer.training import callbacks, distribute, run_files
from trainer.training.loop import Loop

STATE_FILE = "training_metadata.json"
TERMINATED_EXIT_STATUS = 143  # 128 + SIGTERM, as a shell reports a process SIGTERM ended

# What each stateful callback must carry over an interruption to behave as if there had been none.
_STATE = {
    keras.callbacks.EarlyStopping: ("wait", "best", "best_epoch", "stopped_epoch"),
    callbacks.BestWeights: ("best",),
    keras.callbacks.ReduceLROnPlateau: ("wait", "best", "cooldown_counter"),
    callbacks.TimeBudget: ("used",),
}


@dataclasses.dataclass(frozen=True)
class Position:
    """`step` steps of epoch `epoch` are done (both from 0, as Keras counts epochs)."""

    epoch: int = 0
    step: int = 0

    @property
    def tag(self) -> str:
        return f"epoch-{self.epoch}-step-{self.step}"


def read_state(backup_dir: str) -> dict | None:
    """The last checkpoint's state (position, checkpoint names, loss sums, callbacks by class name); None for
    a new run."""
    state = run_files.read_json(f"{backup_dir}/{STATE_FILE}")
    if state and isinstance(state.get("callbacks"), list):  # written as a list by earlier versions
        by_fields = {fields: callback.__name__ for callback, fields in _STATE.items()}
        state["callbacks"] = {by_fields[tuple(saved)]: saved for saved in state["callbacks"]}
    return state


def layout(strategy: tf.distribute.Strategy, cluster: distribute.Cluster) -> dict:
    """How a run's data is laid out over its input pipelines: each worker's iterator yields one batch per
    local replica, so a data position saved on one layout cannot be read on another."""
    return {"workers": cluster.workers, "replicas": strategy.num_replicas_in_sync}


def refuse_another_layout(state: dict | None, strategy: tf.distribute.Strategy, cluster: distribute.Cluster) -> None:
    """A resumed run's data position needs the layout it was saved on: another is named in one line."""
    saved, now = (state or {}).get("layout"), layout(strategy, cluster)
    if saved and saved != now:
        raise ConfigError(f"the checkpoint's data position was saved with {saved['replicas']} replica(s) on "
                          f"{saved['workers']} worker(s), this run has {now['replicas']} on {now['workers']}: resume "
                          "with the same --strategy, --logical_cpus and cluster, or --overwrite to start again")


def position(state: dict | None) -> Position:
    return Position(state["epoch"], state.get("step", 0)) if state else Position()


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _remove_others(directory: str, prefix: str, keep: set[str]) -> None:
    """Removes the checkpoint files in `directory` named `prefix`... that belong to no checkpoint in `keep` (the
    folders of writes a kill cut short among them)."""
    for name in tf.io.gfile.listdir(directory):
        path = f"{directory}/{name.rstrip('/')}"
        if name.startswith(prefix) and name.split(".")[0] not in keep:
            (tf.io.gfile.rmtree if tf.io.gfile.isdir(path) else tf.io.gfile.remove)(path)


def trained(model) -> tf.train.Checkpoint:
    """What a checkpoint holds of the model: the network, the optimizer and the species head, when trained."""
    head = {"species_head": model.species_head} if model.species_head is not None else {}
    return tf.train.Checkpoint(net=model.net, optimizer=model.optimizer, **head)


@dataclasses.dataclass(frozen=True)
class Start:
    """Where a run that goes on from another run's last checkpoint (--init_checkpoint) starts: that checkpoint
    and its step count. Without one, the run starts from step 0 with new weights."""

    checkpoint: str | None = None
    step: int = 0

    @classmethod
    def of(cls, run_dir: str | None) -> "Start":
        if not run_dir:
            return cls()
        backup_dir = run_files.RunFiles(run_dir).backup
        state = read_state(backup_dir)
        if state is None or "model" not in state:
            raise ConfigError(f"--init_checkpoint {run_dir}: no checkpoint of this trainer there (give a training "
                              "run's --model_dir)")
        path = f"{backup_dir}/{state['model']}"
        reader = tf.train.load_checkpoint(path)
        key = next(name for name in reader.get_variable_to_shape_map()
                   if name.startswith("optimizer/") and name.endswith("iterations/.ATTRIBUTES/VARIABLE_VALUE"))
        return cls(path, int(reader.get_tensor(key)))

    def restore(self, model) -> None:
        """The checkpoint's network, optimizer (and species head) put into `model`; nothing without one."""
        if self.checkpoint:
            trained(model).read(self.checkpoint).assert_existing_objects_matched()


class Backup:
    """Saves and restores a run's checkpoints in `directory` (the run's backup/ folder).

    `with_data`: checkpoint this worker's data iterator (not possible through the tf.data service,
    whose stream a resumed run rebuilds from the position instead).
    """

    def __init__(self, directory: str, model, loop: Loop, stateful: list[keras.callbacks.Callback],
                 cluster: distribute.Cluster, strategy: tf.distribute.Strategy, with_data: bool):
        self._dir, self._loop, self._cluster, self._strategy = directory, loop, cluster, strategy
        self._model = trained(model)
        self._data = tf.train.Checkpoint(data=loop.iterator) if with_data else None
        self._data_dir = f"{directory}/data-{cluster.task_type}-{cluster.task_index}"
        self._stateful = [c for c in stateful if type(c) in _STATE]
        self._callback_state, self._kept = {}, []

    @property
    def workers(self) -> int:
        return self._cluster.workers

    def restore(self) -> Position:
        """The last commit's network, optimizer, data position and loss sums put back; returns where it stands."""
        state = read_state(self._dir)
        if state is None:
            return Position()
        if "model" not in state:  # the weights file of the trainer that ran on keras fit
            raise ConfigError(f"{self._dir} holds a checkpoint from an earlier version of the trainer; use another "
                              "--model_dir, or --overwrite to start again")
        where = position(state)
        self._model.read(f"{self._dir}/{state['model']}").assert_existing_objects_matched()
        if self._data is not None:
            self._data.read(f"{self._data_dir}/{where.tag}").assert_existing_objects_matched()
            self._kept = [where.tag]
        self._loop.reset(state.get("loss_sums"))
        self._callback_state = state["callbacks"]
        return where

    def restore_callbacks(self) -> None:
        """Puts back the callbacks' state, each its own by name (a resumed run may keep fewer or more of them);
        call it after `on_train_begin`, where they reset themselves."""
        for callback in self._stateful:
            for name, value in self._callback_state.get(type(callback).__name__, {}).items():
                setattr(callback, name, value)

    def save(self, where: Position) -> None:
        """A checkpoint at `where`. Every worker calls it at the same step (it holds collectives)."""
        if self._data is not None:
            self._data.write(f"{self._data_dir}/{where.tag}")
            self._kept = [*self._kept[-1:], where.tag]
            _remove_others(self._data_dir, "epoch-", set(self._kept))
        sums = self._loop.global_sums() if where.step else None  # a collective: every worker's sums
        if self._cluster.workers > 1:
            distribute.barrier(self._strategy)  # every worker's data position is written
        if not self._cluster.is_chief:
            return
        model = f"model-{where.tag}"
        self._model.write(f"{self._dir}/{model}")
        self._commit({"epoch": where.epoch, "step": where.step, "model": model, "loss_sums": sums,
                      "callbacks": self._callbacks(), "layout": layout(self._strategy, self._cluster)})

    def finish(self, epochs: int) -> None:
        """Training stopped early (early stopping, the time budget): a re-run trains no more."""
        state = read_state(self._dir)
        if self._cluster.is_chief and state is not None:
            self._commit({**state, "epoch": epochs, "step": 0, "callbacks": self._callbacks()})

    def _callbacks(self) -> dict[str, dict]:
        return {type(c).__name__: {name: _plain(getattr(c, name)) for name in _STATE[type(c)]} for c in self._stateful}

    def _commit(self, state: dict) -> None:
        run_files.write_text_atomically(f"{self._dir}/{STATE_FILE}", json.dumps(state))
        _remove_others(self._dir, "model-", {state["model"]})
