"""One evaluator for every split: a network's ab and every metric per photo, its own and the gray
baseline's, computed by each replica of a distribution strategy in a compiled step.

Validation during training (`scoring.means`), the validation, test and
held-out reports at the end of a run and `python -m trainer.evaluate` all score photos through
`Evaluator.replica`, so a metric means the same thing on every split. For reports, `scores` splits
each batch across the strategy's replicas (every worker reads the same batches and takes its
replicas' shares), scores the shares in parallel and gathers the results in photo order onto every
worker; memory per device is one share's activations, whatever the batch.
"""

import keras
import tensorflow as tf

from pipeline import color
from trainer.evaluation import metrics
from trainer.network import hints

HINT_SEED = 1234


class Evaluator:
    """Scores `net` with `num_hints` points of the true colour revealed per photo (hint-aware networks),
    on `strategy`'s replicas (default: the current strategy).

    With `loss_fn` (a training loss), the scores hold each photo's loss too, computed on the layer the
    loss names (the colour classifier's logits), and the gray baseline's when the loss is on ab.
    """

    def __init__(self, net: keras.Model, *, num_hints: int = 0, loss_fn=None, jit_compile: bool = False,
                 strategy: tf.distribute.Strategy | None = None):
        self.net, self.num_hints, self.loss_fn = net, num_hints, loss_fn
        self.strategy = strategy or tf.distribute.get_strategy()
        self._loss_layer = getattr(loss_fn, "output_layer", None)
        loss_output = [self.loss_output_of(net)] if self._loss_layer else []
        self._outputs = keras.Model(net.inputs, [net.outputs[0], *loss_output])
        self._outputs.input_spec = net.input_spec  # the sizes `net` accepts (`models.accept_any_size`)
        self.replica = tf.function(self._replica, jit_compile=jit_compile)
        self._gathered = tf.function(self._run_and_gather, reduce_retracing=True)

    def _input(self, lightness, ab):
        counts = tf.fill([tf.shape(lightness)[0]], self.num_hints)
        seed = hints.evaluation_seed(HINT_SEED, tf.round(lightness * color.BYTE_MAX))
        return hints.revealed_input(self.net, lightness, ab, counts, seed)

    def _replica(self, lightness, ab, full: bool = True) -> dict:
        """One replica's share, per photo: {"model": metrics [and loss]} and, when `full`, {"predicted": ab,
        "gray": the gray baseline's metrics} too (validation needs only the model's metrics)."""
        outputs = tf.nest.flatten(self._outputs(self._input(lightness, ab), training=False))
        predicted = outputs[0]
        scores = {"model": metrics.per_image(lightness, ab, predicted)}
        if self.loss_fn is not None:
            scores["model"]["loss"] = tf.cast(self.loss_fn(ab, outputs[-1]), tf.float32)
        if full:
            scores["predicted"] = tf.cast(predicted, tf.float32)
            gray = tf.zeros_like(scores["predicted"])
            scores["gray"] = metrics.per_image(lightness, ab, gray)
            if self.loss_fn is not None and not self._loss_layer:
                scores["gray"]["loss"] = self.loss_fn(ab, gray)
        return scores

    def loss_output_of(self, net: keras.Model) -> keras.KerasTensor:
        """The tensor of `net` the loss takes: the layer it names, else the ab."""
        return net.get_layer(self._loss_layer).output if self._loss_layer else net.outputs[0]

    def loss_output(self, inputs, training: bool):
        """What the loss takes (the layer it names, else the ab) for the network's `inputs`: training uses it too."""
        return tf.nest.flatten(self._outputs(inputs, training=training))[-1]

    def _run_and_gather(self, lightness, ab, full: bool):
        # Each tensor gathered on its own: `gather` of the whole dict returns the first replica's share
        # alone under MirroredStrategy (TF 2.16), silently.
        return tf.nest.map_structure(lambda value: self.strategy.gather(value, axis=0),
                                     self.strategy.run(self._on_device, args=(lightness, ab, full)))

    def _on_device(self, lightness, ab, full: bool):
        # The share moves onto this replica's device first: an XLA-compiled step runs where its inputs
        # are, and a share left on the first device would read the other replicas' variables from there.
        return self.replica(tf.identity(lightness), tf.identity(ab), full)

    def scores(self, lightness, ab, full: bool = True) -> dict:
        """The scores of a batch (numpy or tensors, on every worker the same), in photo order; with the
        predicted ab and the gray baseline's scores unless `full` is False.

        The batch is padded with copies of its last photo to a whole share per replica (so every
        replica's step has the same shape), and the copies are dropped after gathering.
        """
        count, replicas = len(lightness), self.strategy.num_replicas_in_sync
        share = -(-count // replicas)
        lightness, ab = (_padded(tf.convert_to_tensor(x, tf.float32), share * replicas) for x in (lightness, ab))
        shares = self.strategy.experimental_distribute_values_from_function(
            lambda context: tuple(x[context.replica_id_in_sync_group * share:][:share] for x in (lightness, ab)))
        gathered = self._gathered(*shares, full)
        return tf.nest.map_structure(lambda value: value[:count], gathered)


def _padded(batch: tf.Tensor, size: int) -> tf.Tensor:
    """`batch` with its last photo repeated up to `size` photos."""
    return tf.concat([batch, tf.repeat(batch[-1:], size - batch.shape[0], axis=0)], axis=0)
