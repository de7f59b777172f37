"""The trainer's own loop: on a small network in this process, checkpoints after the right steps with several
steps per call, an exact resume that reads no photo twice (the weights' average included), and the host
reading nothing back between logging steps; through the command, a mirrored run with a weights average
killed mid-epoch ending as an uninterrupted one."""

import concurrent.futures
import random
import signal
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline.errors import ConfigError
from trainer.network import models
from trainer.training import backup, colorizer, distribute, epochs, loop, losses, run
from trainer.training.config import RunConfig
from tests.conftest import run_module
from tests.test_task import _ending, _interrupted, _mid_epoch_checkpoint

RNG = np.random.default_rng(3)
L8 = RNG.integers(0, 256, (48, 16, 16, 1), dtype=np.uint8)
AB8 = RNG.integers(90, 166, (48, 16, 16, 2), dtype=np.uint8)
BATCH = 2


class _Commits(keras.callbacks.Callback):
    """Each new position the state file names, looked at before each call and epoch and at the end."""

    def __init__(self, folder):
        super().__init__()
        self._folder, self.positions = folder, []

    def _look(self):
        state = backup.read_state(str(self._folder))
        if state and (state["epoch"], state["step"]) not in self.positions:
            self.positions.append((state["epoch"], state["step"]))

    def on_train_batch_begin(self, batch, logs=None):
        self._look()

    def on_epoch_begin(self, epoch, logs=None):
        self._look()

    def on_train_end(self, logs=None):
        self._look()


class _Stop(Exception):
    """Stands for a kill: the run ends where it is, with what it has saved."""


class _KillAfter(keras.callbacks.Callback):
    def __init__(self, epoch: int, step: int):
        super().__init__()
        self._epoch, self._step = epoch, step

    def on_epoch_begin(self, epoch, logs=None):
        self._now = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self._now, batch) == (self._epoch, self._step):
            raise _Stop


def _training(folder, schedule: epochs.Schedule, read: "_Reads | None" = None, ema: float = 0.9, extra=()):
    """A small colourizer (with a moving average of its weights) and its epochs over endless batches of 2 photos;
    `read` notes the photos tf.data reads."""
    keras.utils.set_random_seed(0)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = colorizer.Colorizer(models.lowres_unet(16), losses.LOSSES["mae"], jit_compile=False)
        model.compile(optimizer=run._optimizer(RunConfig("", "", ema_momentum=ema, lr_schedule="constant")),
                      jit_compile=False)
        model.build_all(16)

    def photo(index):
        with tf.control_dependencies(read.note(index) if read else []):
            return tf.gather(L8, index % len(L8)), tf.gather(AB8, index % len(L8))

    options = tf.data.Options()  # the counting is outside the data's state: a checkpoint leaves it out
    options.experimental_external_state_policy = tf.data.experimental.ExternalStatePolicy.IGNORE
    data = tf.data.Dataset.range(10**6).map(photo).batch(BATCH).batch(1).prefetch(2).with_options(options)
    steps = loop.Loop(strategy, model, data)
    commits = _Commits(folder)
    callbacks = [*extra, commits]
    saves = backup.Backup(str(folder), model, steps, callbacks, distribute.Cluster(), strategy, with_data=True)
    validation = {"val_": tf.data.Dataset.from_tensor_slices((L8[:4], AB8[:4])).batch(4)}
    return model, steps, commits, epochs.Epochs(model, steps, saves, callbacks, schedule, validation, strategy)


class _Reads:
    """The first and last photo tf.data reads (photo n is the stream's n-th), and how many it reads."""

    def __init__(self):
        self.first, self.last, self.count = (tf.Variable(tf.constant(value, tf.int64)) for value in (-1, -1, 0))

    def note(self, index):
        return [self.first.assign(tf.where(self.first < 0, index, self.first)), self.last.assign(index),
                self.count.assign_add(1)]


def _state(model):
    return [w.numpy() for w in model.net.weights] + [v.numpy() for v in model.optimizer.variables]


def test_with_several_steps_per_call_a_checkpoint_follows_each_multiple_of_the_interval(tmp_path):
    """Every 10 steps, 3 steps per call: the calls end after steps 3, 6, ...; the first past 10 and 20 save."""
    _, _, commits, training = _training(tmp_path, epochs.Schedule(2, 30, per_call=3, checkpoint_every=10))
    training.run()
    assert commits.positions == [(0, 12), (0, 21), (1, 0), (1, 12), (1, 21), (2, 0)]


def test_a_run_killed_mid_epoch_resumes_to_the_same_weights_and_average_and_reads_no_photo_twice(tmp_path):
    schedule = epochs.Schedule(3, 10, checkpoint_every=3)  # after the kill, more steps than tf.data reads ahead
    whole, _, _, training = _training(tmp_path / "whole", schedule)
    training.run()
    _, _, _, cut = _training(tmp_path / "cut", schedule, extra=[_KillAfter(1, 7)])
    try:
        cut.run()
    except _Stop:
        pass
    assert backup.position(backup.read_state(str(tmp_path / "cut"))) == backup.Position(1, 6)
    read = _Reads()
    resumed, _, _, training = _training(tmp_path / "cut", schedule, read)
    training.run()
    for a, b in zip(_state(whole), _state(resumed)):  # the weights, and the optimizer's average of them too
        np.testing.assert_array_equal(a, b)
    # 16 steps of 2 photos were done: the resumed run reads on after the 32nd photo (what the reader had read
    # ahead of training before the save comes from the checkpoint, not from reading again).
    first, last, count = (int(v.numpy()) for v in (read.first, read.last, read.count))
    assert first >= 32 and count == last - first + 1 > 0, (first, last, count)


def test_between_logging_steps_the_host_reads_nothing_back(tmp_path):
    """24 steps, the loss read every 4: the host waits for the devices 6 times (the epochs' ends among them)."""
    _, steps, _, training = _training(tmp_path, epochs.Schedule(2, 12, log_every=4))
    training.run()
    assert steps.reads == 6


def _checkpoint_values(run_dir) -> dict:
    """Every tensor of the run's last checkpoint: the trained weights, the optimizer's state and its average."""
    state = backup.read_state(str(run_dir / "backup"))
    reader = tf.train.load_checkpoint(str(run_dir / "backup" / state["model"]))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def test_a_mirrored_run_with_a_weights_average_killed_mid_epoch_ends_as_an_uninterrupted_one(tiny_records, tmp_path):
    """Two logical devices, --ema_momentum: SIGTERM, then SIGKILL, mid-epoch; the weights the run exports (the
    average), the trained weights and the optimizer's state all end as the uninterrupted run's."""
    rng = random.Random(20261205)
    flags = ["--strategy=mirrored", "--logical_cpus=2", "--epochs=2", "--log_images_every=0", "--model=lowres_unet",
             "--loss=mae", "--ema_momentum=0.9", "--checkpoint_every_steps=2"]
    common = [f"--data_dir={tiny_records}", "--batch_size=8", "--seed=5", *flags]
    command = [sys.executable, "-m", "trainer.task", *common, f"--model_dir={tmp_path / 'run'}"]
    kills = [("mid-epoch", signal.SIGTERM, lambda attempt: any(line.startswith("Epoch ") for line in attempt.lines),
              rng.uniform(0.0, 1.0)),
             ("mid-epoch", signal.SIGKILL, lambda attempt: _mid_epoch_checkpoint(tmp_path / "run"),
              rng.uniform(0.0, 1.0))]
    with concurrent.futures.ThreadPoolExecutor() as pool:
        whole = pool.submit(run_module, "trainer.task", *common, f"--model_dir={tmp_path / 'whole'}")
        ending, report = _interrupted(command, tmp_path / "run", tmp_path, kills)
        whole = whole.result()
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert _ending(ending, tmp_path / "run") == _ending(whole.stdout, tmp_path / "whole")  # the fingerprint too
    resumed, uninterrupted = _checkpoint_values(tmp_path / "run"), _checkpoint_values(tmp_path / "whole")
    assert resumed.keys() == uninterrupted.keys()
    for name, value in uninterrupted.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)


def test_a_checkpoint_of_the_earlier_trainer_is_refused_in_one_line(tmp_path):
    (tmp_path / backup.STATE_FILE).write_text('{"epoch": 1, "step": 3, "weights": "epoch-1-step-3.weights.h5", '
                                              '"callbacks": []}')
    _, _, _, training = _training(tmp_path, epochs.Schedule(2, 10))
    with pytest.raises(ConfigError, match="holds a checkpoint from an earlier version of the trainer; use another "
                                          "--model_dir, or --overwrite to start again"):
        training.run()
