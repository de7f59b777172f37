"""The learning rate follows the global batch (square root for Adam, linear for SGD), warms up, and stays ReduceLROnPlateau's to change."""

import keras
import numpy as np
import pytest

from trainer.training import callbacks, run
from trainer.training.config import RunConfig


@pytest.mark.parametrize("optimizer,batch_size,expected", [
    ("adam", 16, 1e-3), ("adam", 256, 4e-3), ("adam", 4, 5e-4), ("rmsprop", 64, 2e-3),
    ("sgd", 16, 1e-3), ("sgd", 256, 16e-3), ("sgd", 8, 5e-4)])
def test_the_rate_follows_the_global_batch_as_the_optimizer_needs(optimizer, batch_size, expected):
    config = RunConfig("", "", optimizer=optimizer, learning_rate=1e-3, batch_size=batch_size, lr_schedule="constant")
    optimizer = run._optimizer(config)
    assert float(optimizer.learning_rate) == pytest.approx(expected)


def test_the_cosine_schedule_warms_up_then_decays_to_zero_at_the_last_step():
    config = RunConfig("", "", learning_rate=1e-3, batch_size=32, warmup_steps=10)
    schedule = run._learning_rate(config, total_steps=110)
    rates, peak = [float(schedule(step)) for step in (0, 5, 10, 60, 110)], 2 ** 0.5 * 1e-3  # Adam at 2x the batch
    np.testing.assert_allclose(rates, [peak / 10, peak * 5.5 / 10, peak, peak / 2, 0.0], rtol=0.1, atol=1e-9)
    assert all(float(schedule(s)) >= float(schedule(s + 1)) for s in range(10, 110))


class _Rates(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(self.model.optimizer.learning_rate))


def test_warm_up_rises_to_the_peak_and_reduce_lr_on_plateau_halves_it_afterwards():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    rates = _Rates()
    # min_delta so large that no epoch counts as better than the first: the rate halves after the second.
    plateau = keras.callbacks.ReduceLROnPlateau("loss", factor=0.5, patience=0, min_delta=1e9)
    model.fit(np.ones((16, 2)), np.ones((16, 1)), batch_size=4, epochs=3, verbose=0,
              callbacks=[callbacks.WarmUp(0.1, steps=6, epoch_steps=4), rates, plateau])
    np.testing.assert_allclose(rates.rates, [0.1 / 6 * n for n in range(1, 7)] + [0.1, 0.1] + [0.05] * 4, rtol=1e-6)
