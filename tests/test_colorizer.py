"""The training step: every optimizer and loss trains; losses behave as losses."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from trainer import colorizer, losses, models, training

RNG = np.random.default_rng(3)
LIGHTNESS = RNG.random((8, 16, 16, 1), np.float32)
AB = (RNG.random((8, 16, 16, 2), np.float32) - 0.5) * 0.6


def _one_step(optimizer: str, loss: str, jit: bool = False):
    keras.utils.set_random_seed(0)
    model = colorizer.Colorizer(models.lowres_unet(16), losses.LOSSES[loss], jit_compile=jit)
    config = {"optimizer": optimizer, "learning_rate": 1e-3, "momentum": 0.9}
    model.compile(optimizer=training._optimizer(config), jit_compile=False)
    before = [w.numpy().copy() for w in model.net.trainable_weights]
    history = model.fit(tf.data.Dataset.from_tensor_slices((LIGHTNESS, AB)).batch(8), epochs=1, verbose=0)
    after = [w.numpy() for w in model.net.trainable_weights]
    return history.history["loss"][0], before, after


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


def test_evaluation_reports_every_metric():
    model = colorizer.Colorizer(models.gray(16), losses.mae, jit_compile=False)
    model.compile(jit_compile=False)
    result = model.evaluate(LIGHTNESS, AB, batch_size=4, return_dict=True, verbose=0)
    assert set(result) == {"loss", "ab_psnr", "ab_ssim", "rgb_psnr", "rgb_ssim", "colourfulness",
                           "colourfulness_true", "colourfulness_gap"}
    assert result["loss"] == pytest.approx(np.abs(AB).mean(), rel=1e-5)
    assert result["colourfulness"] == pytest.approx(0.0, abs=0.1)
