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
        return {"loss": self.loss_tracker.result()}

    def _loss_and_metrics(self, lightness, ab):
        predicted = self.net(lightness, training=False)
        return self.loss_fn(ab, predicted), metrics.per_image(lightness, ab, predicted)

    def test_step(self, data):
        lightness, ab = data
        per_image, quality = self._eval_replica(lightness, ab)
        self.loss_tracker.update_state(per_image)
        for tracker in self.quality:
            tracker.update_state(quality[tracker.name])
        return {tracker.name: tracker.result() for tracker in self.metrics}
