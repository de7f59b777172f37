"""Learning-rate schedules of the trainer's own beyond Keras's (`--lr_schedule`)."""

import keras
import tensorflow as tf


class WarmupStableDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Warm-up, stable, decay (Hu et al. 2024, MiniCPM; Hagele et al. 2024): linearly up to `peak` over
    `warmup_steps`, constant, then linearly down to 0 over the `decay_steps` that start at `decay_start`.

    A constant rate can be cooled down at any of its checkpoints: one run at the stable rate, with a
    short decay branched off at each budget, gives a whole learning curve and matches a cosine run of
    each length (Hagele et al.); the stable run itself goes on.
    """

    def __init__(self, peak: float, warmup_steps: int, decay_start: int, decay_steps: int):
        self.peak, self.warmup_steps = peak, warmup_steps
        self.decay_start, self.decay_steps = decay_start, decay_steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = tf.minimum(1.0, (step + 1.0) / max(self.warmup_steps, 1))
        decay = tf.clip_by_value((self.decay_start + self.decay_steps - step) / max(self.decay_steps, 1), 0.0, 1.0)
        return self.peak * warm * (decay if self.decay_steps else 1.0)

    def get_config(self) -> dict:
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "decay_start": self.decay_start,
                "decay_steps": self.decay_steps}
