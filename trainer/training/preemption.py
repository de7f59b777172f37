"""SIGTERM (a preempted VM, a Kubernetes pod's end, Ctrl-C's polite cousin): save and stop, every worker
after the same step.

With several workers, TensorFlow's `PreemptionCheckpointHandler` agrees on the step through the
cluster's coordination service, so nothing is all-reduced per step for it. It saves through the
run's own `Backup` (`save_fn`): its own save would write one checkpoint holding the chief's data
position alone, where every worker has its own. A single worker has nothing to agree on: it saves
after the call in which the signal came. (The handler would do the same there, but on Google
Cloud CPU VMs it declines to act at all, and a CPU training job would then not stop on SIGTERM.)
"""

import signal
import tempfile
import threading
from typing import Callable

import tensorflow as tf

from trainer.training.backup import TERMINATED_EXIT_STATUS


class Preemption:
    """From its making until `close`, a SIGTERM makes `check` (called after each call of training steps, on
    every worker) run `save` after the same call on every worker, print what `save` returns and exit 143."""

    def __init__(self, strategy: tf.distribute.Strategy, save: Callable[[], str], workers: int):
        self._save, self._signalled, self._message, self._exiting = save, threading.Event(), "", False
        signal.signal(signal.SIGTERM, lambda signum, frame: self._signalled.set())
        self._handler = None
        if workers > 1:
            # grace_period 0: exit right after the save. Left unset, TensorFlow takes 3600 s on Google Cloud GPU
            # VMs, training on for an hour after it saved.
            config = tf.distribute.experimental.TerminationConfig(
                termination_watcher_fn=self._signalled.is_set, exit_fn=self._exit, grace_period=0,
                save_fn=self._saved)
            # The handler restores from this manager at its start: an empty folder, as the run restores itself.
            nothing = tf.train.CheckpointManager(tf.train.Checkpoint(), tempfile.mkdtemp(prefix="preemption-"), 1)
            self._handler = tf.distribute.experimental.PreemptionCheckpointHandler(
                strategy.cluster_resolver, nothing, termination_config=config)

    def _saved(self) -> None:
        self._message = self._save()

    def _exit(self) -> None:
        self._exiting = True
        print(f"SIGTERM: {self._message}; re-run the same command to resume", flush=True)
        raise SystemExit(TERMINATED_EXIT_STATUS)

    def check(self) -> None:
        """After each call of training steps: host-side only, unless a SIGTERM came (then it saves and exits)."""
        if self._handler is not None:
            self._handler.save_checkpoint_if_preempted()
        elif self._signalled.is_set():
            self._saved()
            self._exit()

    def close(self) -> None:
        """Outside training a SIGTERM ends the process as usual; one that came after the last check still does."""
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if self._signalled.is_set() and not self._exiting:
            print("SIGTERM after the last training step: the last checkpoint stands; re-run the same command to "
                  "finish", flush=True)
            raise SystemExit(TERMINATED_EXIT_STATUS)
