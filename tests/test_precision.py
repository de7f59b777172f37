"""Mixed precision: both Keras mixed policies train, float16's loss scaling is applied exactly once, exports are float32."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline import ab_bins
from trainer.training import colorizer, epochs, losses, run
from trainer.training.config import RunConfig
from trainer.network import colour_classes, models
from tests.conftest import REPO
from tests.test_colorizer import train

RNG = np.random.default_rng(11)
L8 = RNG.integers(0, 256, (8, 16, 16, 1), dtype=np.uint8)
AB8 = RNG.integers(90, 166, (8, 16, 16, 2), dtype=np.uint8)
BINS = colour_classes.ColourBins.from_histogram(ab_bins.histogram(AB8))


def _classifier(precision: str, optimizer: str, learning_rate: float, model_class=colorizer.Colorizer):
    """The hint-aware colour classifier and its training model, built under `precision` as the trainer builds them."""
    keras.utils.set_random_seed(0)
    config = RunConfig("", "", optimizer=optimizer, learning_rate=learning_rate, precision=precision)
    with run._dtype_policy(precision):
        net = models.context_unet(16, width=8, bins=BINS)
        model = model_class(net, losses.build("classification", BINS), jit_compile=False)
        model.compile(optimizer=run._optimizer(config), jit_compile=False)
    model.build_all(16)
    return model


def _fit(model, epochs: int) -> list[float]:
    return train(model, L8, AB8, epochs)


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_each_mixed_policy_trains(precision):
    model = _classifier(precision, "adam", 3e-3)
    assert model.net.get_layer(index=1).compute_dtype == precision.removeprefix("mixed_")
    history = _fit(model, epochs=4)
    assert np.all(np.isfinite(history)) and history[-1] < history[0]


def _first_update(precision: str):
    """The model, and how far one plain SGD step moved its weights (Adam would hide a wrongly scaled gradient)."""
    model = _classifier(precision, "sgd", 0.01)
    before = [w.numpy().astype(np.float64) for w in model.net.trainable_weights]
    _fit(model, epochs=1)
    after = [w.numpy().astype(np.float64) for w in model.net.trainable_weights]
    return model, float(np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(after, before))))


def test_float16_scales_the_loss_once_and_unscales_the_gradients_once():
    """Keras wraps the optimizer for mixed_float16; the step scales the loss, `apply` divides it back out.

    The initial scale is 2**15: a gradient left scaled, or unscaled twice, moves the weights
    thousands of times too far or too little, far outside a factor of 2 of float32's step.
    """
    scaled, update = _first_update("mixed_float16")
    assert isinstance(scaled.optimizer, keras.optimizers.LossScaleOptimizer)
    assert float(scaled.optimizer.dynamic_scale.numpy()) > 1000  # the first step did not overflow and halve it
    plain, reference = _first_update("float32")
    assert not isinstance(plain.optimizer, keras.optimizers.LossScaleOptimizer)
    assert reference > 0 and 0.5 < update / reference < 2.0


# Two replicas on two logical CPUs (set before TensorFlow starts, hence a process of its own) train under
# mixed_float16; replica 1's gradients of the first step are made infinite, replica 0's stay finite.
# The trainer's loop runs one step per call here.
_ONE_REPLICA_OVERFLOWS = """
import json
import numpy as np
import tensorflow as tf
from trainer.training import distribute
distribute.split_cpu(2)
import keras
from tests.test_precision import L8, AB8, _classifier
from tests.test_colorizer import train
from trainer.training.colorizer import Colorizer

class Overflowing(Colorizer):
    def _loss_and_gradients(self, l8, ab8, step, photo_species=None):
        per_image, gradients = super()._loss_and_gradients(l8, ab8, step, photo_species)
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        # Until the first overflow halves the scale (a skipped step does not advance `step`).
        blow = tf.logical_and(tf.equal(replica, 1), tf.equal(self.optimizer.dynamic_scale, 2.0 ** 15))
        return per_image, [tf.where(blow, tf.constant(float("inf"), g.dtype), g) for g in gradients]

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = _classifier("mixed_float16", "sgd", 0.01, model_class=Overflowing)
def copies():  # every replica's copy of every weight
    return [[c.numpy() for c in w.value.values] for w in model.net.trainable_weights]
def state():
    return {"scale": float(model.optimizer.dynamic_scale.numpy()),
            "finite": all(np.isfinite(c).all() for w in copies() for c in w),
            "replicas_equal": all(np.array_equal(w[0], c) for w in copies() for c in w[1:]),
            "weights": [float(np.sum(w[0], dtype=np.float64)) for w in copies()]}
states = [state()]
for _ in range(2):
    with strategy.scope():
        train(model, L8, AB8, 1)
    states.append(state())
print(json.dumps(states))
"""


def test_an_overflow_on_one_replica_only_skips_the_step_on_every_replica_and_lowers_the_scale():
    done = subprocess.run([sys.executable, "-c", _ONE_REPLICA_OVERFLOWS], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    start, overflowed, then = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(s["finite"] and s["replicas_equal"] for s in (start, overflowed, then))
    assert overflowed["weights"] == start["weights"]  # the step was skipped, on both replicas
    assert overflowed["scale"] == start["scale"] / 2
    assert then["weights"] != overflowed["weights"] and then["scale"] == overflowed["scale"]  # the next one applies


def test_a_network_trained_in_mixed_precision_is_saved_in_float32():
    net = _classifier("mixed_bfloat16", "adam", 1e-3).net
    assert {w.dtype for w in net.weights} == {"float32"}  # variables are float32 under mixed policies
    saved = models.detached(net)
    assert {layer.dtype_policy.name for layer in saved.layers} == {"float32"}
    lightness = tf.random.stateless_uniform((2, 16, 16, net.input_shape[-1]), (1, 2))
    assert saved(lightness).dtype == tf.float32


def test_under_bfloat16_the_classification_loss_is_taken_in_float32():
    """The body computes in bfloat16; the logits the loss reads, and the loss, must stay float32."""
    model = _classifier("mixed_bfloat16", "adam", 1e-3)
    assert model.net.get_layer(colour_classes.LOGITS_LAYER).compute_dtype == "float32"
    per_image, _ = model._loss_and_gradients(tf.constant(L8), tf.constant(AB8), tf.constant(0, tf.int64))
    assert per_image.dtype == tf.float32 and np.all(np.isfinite(per_image))


@pytest.mark.parametrize("precision", ["float32", "mixed_float16"])
def test_the_weights_average_is_put_in_under_every_precision(precision):
    """Validation, the best checkpoint and the export read the network inside `averaged_weights`."""
    keras.utils.set_random_seed(0)
    config = RunConfig("", "", learning_rate=3e-3, precision=precision, ema_momentum=0.5)
    with run._dtype_policy(precision):
        model = colorizer.Colorizer(models.context_unet(16, width=8, bins=BINS), losses.build("classification", BINS),
                                    jit_compile=False)
        model.compile(optimizer=run._optimizer(config), jit_compile=False)
    model.build_all(16)
    _fit(model, epochs=3)
    trained = [w.copy() for w in model.net.get_weights()]
    with epochs.averaged_weights(model):
        inside = model.net.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(inside, trained))
    assert all(np.array_equal(a, b) for a, b in zip(model.net.get_weights(), trained))  # taken out again
