"""The training steps the trainer owns: several steps per call into TensorFlow, the loss summed on the devices.

`Loop.run(steps)` runs `steps` training steps in one tf.function whose `tf.range` loop runs the
per-replica step (`Colorizer.train_replica_step`: forward and gradients XLA-compiled where asked,
then the optimizer's update with the gradients all-reduced) under `strategy.run`. Nothing is read
back to the host during a call: the training loss is summed on each device and read only when the
caller asks (`global_sums`, over every worker: a collective).

The batches come from this worker's own `tf.data` iterator, which a checkpoint can hold (TF 2.16's
distributed iterators cannot be checkpointed): each element holds one batch per local replica,
and each replica takes its own in the compiled step.
"""

import tensorflow as tf


class Loop:
    """Trains `model` (a `Colorizer`, built and compiled in `strategy`'s scope) on `dataset`: this worker's
    elements, each (L8, ab8) with a leading axis of one batch per local replica."""

    def __init__(self, strategy: tf.distribute.Strategy, model, dataset: tf.data.Dataset):
        self._strategy, self._model = strategy, model
        # This worker's replicas (TensorFlow's default strategy, outside any scope, has one and no device list).
        self._local = (len(strategy.extended.worker_devices)
                       if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) else strategy.num_replicas_in_sync)
        self.iterator = iter(dataset)
        with strategy.scope():
            # Each replica's own sums (on read: summed over replicas), reset at each epoch's start.
            self._sums = [tf.Variable(0.0, trainable=False, synchronization=tf.VariableSynchronization.ON_READ,
                                      aggregation=tf.VariableAggregation.SUM) for _ in ("loss", "count")]
        self._steps = tf.function(self._run_steps)
        self._global = tf.function(self._summed_everywhere)
        self.reads = 0  # how often the host has waited for values from the devices: once per logging interval

    def _replica_step(self, batch):
        per_image = self._model.train_replica_step(*batch)
        self._sums[0].assign_add(tf.reduce_sum(tf.cast(per_image, tf.float32)))
        self._sums[1].assign_add(tf.cast(tf.size(per_image), tf.float32))

    def _run_steps(self, steps):
        for _ in tf.range(steps):
            element = next(self.iterator)
            shares = self._strategy.experimental_distribute_values_from_function(
                lambda context: tuple(part[context.replica_id_in_sync_group % self._local] for part in element))
            self._strategy.run(self._replica_step, args=(shares,))

    def run(self, steps: int) -> None:
        """`steps` training steps, in one call; returns without reading anything back."""
        self._steps(tf.constant(steps, tf.int64))

    def _summed_everywhere(self):
        values = self._strategy.run(lambda: tf.stack([tf.identity(v) for v in self._sums]))
        return self._strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None)

    def global_sums(self) -> list[float]:
        """The loss's sum and count over every replica of every worker: a collective all workers must call."""
        self.reads += 1
        return [float(value) for value in self._global()]

    def reset(self, sums: list[float] | None = None) -> None:
        """Start the sums again: from zero, or from `global_sums` saved by an interrupted run (split evenly over
        the replicas, so that their sum is the same)."""
        share = [value / self._strategy.num_replicas_in_sync for value in sums or [0.0, 0.0]]
        self._strategy.run(lambda: [v.assign(value) for v, value in zip(self._sums, share)])
