"""The warm-up, stable, decay learning rate (`--lr_schedule=wsd`)."""

import numpy as np

from trainer.training import schedules


def test_the_rate_warms_up_holds_then_falls_linearly_to_zero_over_the_cooldown():
    rate = schedules.WarmupStableDecay(0.01, warmup_steps=10, decay_start=100, decay_steps=20)
    values = {step: float(rate(step)) for step in (0, 4, 9, 50, 100, 110, 119, 120, 200)}
    assert values[0] < values[4] < values[9]
    np.testing.assert_allclose([values[9], values[50], values[100], values[110], values[119], values[120],
                                values[200]], [0.01, 0.01, 0.01, 0.005, 0.0005, 0, 0], atol=1e-8)


def test_without_a_cooldown_the_rate_stays_at_its_peak():
    rate = schedules.WarmupStableDecay(0.01, warmup_steps=0, decay_start=1000, decay_steps=0)
    np.testing.assert_allclose([float(rate(step)) for step in (0, 999, 10**6)], [0.01] * 3, rtol=1e-6)
