"""The model a run trains: its network, loss and optimizer, and the per-replica training step.

`model.compile(jit_compile=True)` under MirroredStrategy with two devices fails
at the first step on this stack (TF 2.16, Keras 3: "Trying to access resource
... located in device CPU:1 from device CPU:0"). What works: compile only the
per-replica computation (forward, loss, gradients) with
`tf.function(jit_compile=True)` and run it inside `strategy.run`, with the
gradient all-reduce and the optimizer's update outside XLA. `trainer.training.loop`
runs `train_replica_step` so; validation scores through `evaluator`, as every split is scored.
It stays a Keras model so that Keras's `compile` (the loss-scale optimizer under
mixed_float16) and Keras callbacks (early stopping, the learning rate's plateau) apply to it.

The data arrive as stored, uint8 L8 and ab8 (a quarter of float32's bytes to
move to a device), and are scaled inside the step. A hint-aware network gets
hints simulated from the truth (`trainer.network.hints`): a random number per photo
in training, none in evaluation (automatic colourization).
A loss that names an `output_layer` (the colour classifier's logits) is
computed on that layer's output; metrics always use the network's ab.
"""

import keras
import tensorflow as tf

from pipeline import color_tf
from trainer.network import hints
from trainer.training import species
from trainer.evaluation.evaluator import Evaluator


def _not_finite_anywhere_not_finite_here(gradients: list) -> list:
    """This replica's gradients, made NaN when any replica's are not finite (one all-reduced count).

    Keras 3.15's LossScaleOptimizer decides whether a step overflowed from the first replica's
    own gradients, before the replicas' are summed: an overflow on another replica alone would be
    summed into the weights and the loss scale kept. With this every replica, the first included,
    sees the overflow, so every replica skips the same step and the scale drops.
    """
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in gradients])
    overflows = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM,
                                                               1.0 - tf.cast(finite, tf.float32))
    factor = tf.where(overflows > 0, float("nan"), 1.0)
    return [g * tf.cast(factor, g.dtype) for g in gradients]


class Colorizer(keras.Model):
    """Trains `net` (L [+ hints] -> ab) with a per-image loss; `evaluator` scores it with every metric."""

    def __init__(self, net: keras.Model, loss_fn, jit_compile: bool, seed: int = 0,
                 simulated_hints: hints.Simulated | None = hints.Simulated(), species_count: int = 0,
                 species_weight: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.net = net
        self.loss_fn = loss_fn
        self.seed, self.simulated_hints = seed, simulated_hints
        self.hint_aware = hints.is_hint_aware(net)
        self._train_replica = tf.function(self._loss_and_gradients, jit_compile=jit_compile)
        # Validation scores photos as every other split is scored: with no hints (automatic colourization).
        self.evaluator = Evaluator(net, loss_fn=loss_fn, jit_compile=jit_compile)
        self.species_weight = species_weight
        self.species_head = None
        if species_weight:
            features = species.photo_features(net)
            self._with_features = keras.Model(net.inputs, [self.evaluator.loss_output_of(net), features])
            self._with_features.input_spec = net.input_spec  # the sizes `net` accepts (`models.accept_any_size`)
            self.species_head = species.head(features.shape, species_count)

    @property
    def trained_variables(self) -> list:
        """What the optimizer trains: the network's weights, and the species head's when there is one."""
        return self.net.trainable_variables + (self.species_head.trainable_variables if self.species_head else [])

    def build_all(self, image_size: int) -> None:
        """Create every variable now, in the strategy's scope, rather than lazily inside `fit`."""
        self(tf.zeros((1, image_size, image_size, self.net.input_shape[-1])))
        if self.optimizer is not None:
            self.optimizer.build(self.trained_variables)

    def call(self, inputs, training=False):
        return self.net(inputs, training=training)

    def automatic(self, lightness):
        """ab for L (b, h, w, 1) with no hints."""
        return self.net(hints.network_input(lightness) if self.hint_aware else lightness, training=False)

    def species_logits(self, l8):
        """The species head's logits (b, species) for photos L8 (b, h, w, 1) given no hints."""
        lightness = color_tf.l8_to_input(l8)
        inputs = hints.network_input(lightness) if self.hint_aware else lightness
        return self.species_head(self._with_features(inputs, training=False)[1], training=False)

    def _loss_and_gradients(self, l8, ab8, step, photo_species=None):
        # The global mean: sum over this replica's images over the global batch, then all-reduced.
        context = tf.distribute.get_replica_context()
        lightness, ab = color_tf.l8_to_input(l8), color_tf.ab8_to_target(ab8)
        seed = tf.stack([tf.cast(self.seed * 1009 + context.replica_id_in_sync_group, tf.int64), step])
        counts = (self.simulated_hints.counts(tf.shape(l8)[0], seed) if self.simulated_hints
                  else tf.zeros_like(l8[:, 0, 0, 0], tf.int32))
        max_half = self.simulated_hints.max_half if self.simulated_hints else 0
        inputs = hints.revealed_input(self.net, lightness, ab, counts, tf.reverse(seed, [0]), max_half)
        with tf.GradientTape() as tape:
            if self.species_head is None:
                per_image = self.loss_fn(ab, self.evaluator.loss_output(inputs, training=True))
                extra = 0.0
            else:
                colour_output, features = self._with_features(inputs, training=True)
                per_image = self.loss_fn(ab, colour_output)
                extra = self.species_weight * species.summed_loss(self.species_head(features, training=True),
                                                                  photo_species)
            global_batch = tf.cast(tf.shape(per_image)[0] * context.num_replicas_in_sync, per_image.dtype)
            loss = (tf.reduce_sum(per_image) + tf.cast(extra, per_image.dtype)) / global_batch
            # Under mixed_float16 the optimizer is a LossScaleOptimizer: scaled here, unscaled in `apply`.
            scaled = self.optimizer.scale_loss(loss)
        return per_image, tape.gradient(scaled, self.trained_variables)

    def train_replica_step(self, l8, ab8, photo_species=None):
        """One replica's training step on its share of the batch (with each photo's species index when the
        species head trains): gradients, then the optimizer's update (which all-reduces them); returns the
        share's per-photo colour losses. `trainer.training.loop` runs it in `strategy.run`."""
        per_image, gradients = self._train_replica(l8, ab8, tf.cast(self.optimizer.iterations, tf.int64),
                                                   photo_species)
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            gradients = _not_finite_anywhere_not_finite_here(gradients)
        self.optimizer.apply_gradients(zip(gradients, self.trained_variables))
        return per_image
