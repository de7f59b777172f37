"""A Keras model whose train and eval steps are XLA-compiled per replica.

`model.compile(jit_compile=True)` under MirroredStrategy with two devices fails
at the first step on this stack (TF 2.16, Keras 3: "Trying to access resource
... located in device CPU:1 from device CPU:0"). What works: compile only the
per-replica computation (forward, loss, gradients; or forward and metrics)
with `tf.function(jit_compile=True)` and let Keras run it inside
`strategy.run`, with the gradient all-reduce and optimizer update outside XLA.
That is what `Colorizer` does, so `fit`, `evaluate` and every Keras callback
work unchanged on one device, many GPUs or many hosts.
"""

import keras
import tensorflow as tf

from trainer import metrics


class Colorizer(keras.Model):
    """Trains `net` (L -> ab) with a per-image loss; evaluates every metric of `trainer.metrics`."""

    def __init__(self, net: keras.Model, loss_fn, jit_compile: bool, **kwargs):
        super().__init__(**kwargs)
        self.net = net
        self.loss_fn = loss_fn
        self.loss_tracker = keras.metrics.Mean("loss")
        self.quality = [keras.metrics.Mean(name) for name in metrics.NAMES]
        self._train_replica = tf.function(self._loss_and_gradients, jit_compile=jit_compile)
        self._eval_replica = tf.function(self._loss_and_metrics, jit_compile=jit_compile)
        # Steps return values already global (see `_global_results`): any replica's copy will do.
        self.distribute_reduction_method = "first"

    def build_all(self, image_size: int) -> None:
        """Create every variable now, in the strategy's scope, rather than lazily inside `fit`."""
        self(tf.zeros((1, image_size, image_size, 1)))
        if self.optimizer is not None:
            self.optimizer.build(self.net.trainable_variables)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras would build lazily from a batch it first averages across replicas, which fails
        # under MultiWorkerMirroredStrategy (TF 2.16, Keras 3.15: "Attempt to convert a value
        # (PerReplica ...) to a Tensor"). `build_all` has already built everything.
        if not self.built or (self.optimizer is not None and not self.optimizer.built):
            super()._maybe_symbolic_build(iterator, data_batch)

    def call(self, lightness, training=False):
        return self.net(lightness, training=training)

    @property
    def metrics(self):
        return [self.loss_tracker, *self.quality]

    def _loss_and_gradients(self, lightness, ab):
        # The global mean: sum over this replica's images over the global batch, then all-reduced.
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        with tf.GradientTape() as tape:
            per_image = self.loss_fn(ab, self.net(lightness, training=True))
            global_batch = tf.cast(tf.shape(per_image)[0] * replicas, per_image.dtype)
            loss = tf.reduce_sum(per_image) / global_batch
        return per_image, tape.gradient(loss, self.net.trainable_variables)

    def train_step(self, data):
        lightness, ab = data
        per_image, gradients = self._train_replica(lightness, ab)
        self.optimizer.apply_gradients(zip(gradients, self.net.trainable_variables))
        self.loss_tracker.update_state(per_image)
        return self._global_results([self.loss_tracker])

    def _loss_and_metrics(self, lightness, ab):
        predicted = self.net(lightness, training=False)
        return self.loss_fn(ab, predicted), metrics.per_image(lightness, ab, predicted)

    def test_step(self, data):
        lightness, ab = data
        per_image, quality = self._eval_replica(lightness, ab)
        self.loss_tracker.update_state(per_image)
        for tracker in self.quality:
            tracker.update_state(quality[tracker.name])
        return self._global_results(self.metrics)

    @staticmethod
    def _global_results(trackers) -> dict:
        """Each Mean's value over all replicas and workers, computed inside the replica step.

        Keras then averages the replicas' outputs: all equal, so the value stays.
        In multi-worker mode it averages with `strategy.reduce(MEAN, axis=0)`,
        which fails on scalars (TF 2.16, Keras 3.15: "Invalid reduction
        dimension 0 for input with 0 dimensions", tensorflow#72388), so there
        each value gets an axis of length one that the average removes.
        """
        strategy = tf.distribute.get_strategy()
        multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
            strategy.extended._in_multi_worker_mode())  # the test Keras itself makes
        sums = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, [tf.stack([t.total.value, t.count.value]) for t in trackers])
        results = {t.name: total_count[0] / total_count[1] for t, total_count in zip(trackers, sums)}
        return {name: tf.reshape(value, (1,)) if multi_worker else value for name, value in results.items()}
