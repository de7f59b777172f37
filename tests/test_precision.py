"""Mixed precision: both Keras mixed policies train, float16's loss scaling is applied exactly once, exports are float32."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline import ab_bins
from trainer.training import colorizer, losses, run
from trainer.training.config import RunConfig
from trainer.network import colour_classes, models

RNG = np.random.default_rng(11)
L8 = RNG.integers(0, 256, (8, 16, 16, 1), dtype=np.uint8)
AB8 = RNG.integers(90, 166, (8, 16, 16, 2), dtype=np.uint8)
BINS = colour_classes.ColourBins.from_histogram(ab_bins.histogram(AB8))


def _classifier(precision: str, optimizer: str, learning_rate: float):
    """The hint-aware colour classifier and its training model, built under `precision` as the trainer builds them."""
    keras.utils.set_random_seed(0)
    config = RunConfig("", "", optimizer=optimizer, learning_rate=learning_rate, precision=precision)
    with run._dtype_policy(precision):
        net = models.context_unet(16, width=8, bins=BINS)
        model = colorizer.Colorizer(net, losses.build("classification", BINS), jit_compile=False)
        model.compile(optimizer=run._optimizer(config), jit_compile=False)
    model.build_all(16)
    return model


def _fit(model, epochs: int) -> list[float]:
    data = tf.data.Dataset.from_tensor_slices((L8, AB8)).batch(8)
    return model.fit(data, epochs=epochs, verbose=0).history["loss"]


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
