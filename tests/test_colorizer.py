"""The training step: every optimizer and loss trains; losses behave as losses; hints and classes train."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline import ab_bins
from trainer.training import colorizer, loop, losses, run
from trainer.training.config import RunConfig
from trainer.network import colour_classes, models
from trainer.evaluation import metrics, scoring

RNG = np.random.default_rng(3)
L8 = RNG.integers(0, 256, (8, 16, 16, 1), dtype=np.uint8)
AB8 = RNG.integers(90, 166, (8, 16, 16, 2), dtype=np.uint8)
AB = (AB8.astype(np.float32) - 128) / 128
BINS = colour_classes.ColourBins.from_histogram(ab_bins.histogram(AB8))


def train(model, l8, ab8, calls: int) -> list[float]:
    """`calls` training steps on the whole batch (split over the strategy's replicas) through the trainer's loop,
    in the current strategy; each step's mean loss."""
    strategy = tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    data = tf.data.Dataset.from_tensor_slices((l8, ab8)).batch(len(l8) // replicas).batch(replicas).repeat()
    steps, result = loop.Loop(strategy, model, data), []
    for _ in range(calls):
        steps.reset()
        steps.run(1)
        total, count = steps.global_sums()
        result.append(total / count)
    return result


def _one_step(optimizer: str, loss: str, jit: bool = False):
    keras.utils.set_random_seed(0)
    model = colorizer.Colorizer(models.lowres_unet(16), losses.LOSSES[loss], jit_compile=jit)
    model.compile(optimizer=run._optimizer(RunConfig("", "", optimizer=optimizer)), jit_compile=False)
    model.build_all(16)
    before = [w.numpy().copy() for w in model.net.trainable_weights]
    first = train(model, L8, AB8, 1)[0]
    after = [w.numpy() for w in model.net.trainable_weights]
    return first, before, after


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd"])
def test_each_optimizer_takes_a_step(optimizer):
    loss, before, after = _one_step(optimizer, "mae")
    assert np.isfinite(loss)
    assert any(not np.allclose(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("loss_name", sorted(losses.LOSSES))
def test_each_loss_takes_a_step(loss_name):
    loss, before, after = _one_step("adam", loss_name)
    assert np.isfinite(loss) and loss > 0
    assert any(not np.allclose(a, b) for a, b in zip(before, after))


def test_xla_step_gives_the_same_loss_as_the_plain_step():
    plain, _, plain_weights = _one_step("adam", "mse", jit=False)
    compiled, _, compiled_weights = _one_step("adam", "mse", jit=True)
    assert compiled == pytest.approx(plain, rel=1e-5)
    for a, b in zip(plain_weights, compiled_weights):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("loss_name", sorted(losses.LOSSES))
def test_losses_are_zero_only_for_a_perfect_prediction(loss_name):
    loss = losses.LOSSES[loss_name]
    assert np.allclose(loss(AB, AB), 0.0, atol=1e-6)
    assert np.all(loss(AB, AB + 0.1) > 0)
    assert loss(AB, AB).shape == (8,)


def _colourless(size: int) -> keras.Model:
    """A network that predicts no colour: its loss and metrics are known in closed form."""
    inputs = keras.Input((size, size, 1))
    return keras.Model(inputs, keras.layers.Lambda(lambda x: keras.ops.concatenate([x * 0, x * 0], axis=-1))(inputs))


def test_evaluation_reports_every_metric():
    model = colorizer.Colorizer(_colourless(16), losses.mae, jit_compile=False)
    result = scoring.means(model.evaluator, tf.data.Dataset.from_tensor_slices((L8, AB8)).batch(4))
    assert set(result) == {"loss", *metrics.NAMES, *metrics.SET_NAMES}
    assert result["loss"] == pytest.approx(np.abs(AB).mean(), rel=1e-5)
    assert result["colourfulness"] == pytest.approx(0.0, abs=0.1)


def _fit(net, loss_fn, epochs):
    keras.utils.set_random_seed(0)
    model = colorizer.Colorizer(net, loss_fn, jit_compile=False)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False)
    model.build_all(16)
    return model, train(model, L8, AB8, epochs)


def test_the_hint_aware_colour_classifier_trains_on_logits():
    net = models.context_unet(16, width=8, bins=BINS)
    model, history = _fit(net, losses.build("classification", BINS), epochs=8)
    assert history[-1] < history[0]
    result = scoring.means(model.evaluator, tf.data.Dataset.from_tensor_slices((L8, AB8)).batch(8))
    assert np.isfinite(result["rgb_psnr"]) and result["loss"] > 0


def test_rebalanced_mae_weights_rare_colours_up():
    weights = BINS.weights(0.0)
    loss = losses.rebalanced_mae(weights, BINS.indices)
    common = np.argmax(BINS.frequency)
    rare = np.argmin(BINS.frequency)
    centres = ab_bins.centres(BINS.indices[[common, rare]]) / 128.0
    truth = np.broadcast_to(centres[:, None, None, :], (2, 4, 4, 2)).astype(np.float32)
    per_image = loss(truth, truth + 0.1).numpy()
    np.testing.assert_allclose(per_image, 0.1 * weights[[common, rare]], rtol=1e-5)
