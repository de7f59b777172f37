"""What a person's interaction buys, scored on record photos: the gain of true-colour hints, and how often the
true colour is among the first suggested colours at a point.

Both in the records' own form (200x200, hints as training simulates them: random points, patches 1x1 to
9x9), so that a learning curve can score them after every cool-down in seconds; the full-size measures
through `trainer.colorize`'s own code are `benchmarks/hints_benchmark.py` and
`benchmarks/suggestions_benchmark.py`.
"""

import numpy as np
import tensorflow as tf

from pipeline import color, color_tf
from pipeline.preparation import Preparation
from trainer.evaluation import scoring
from trainer.evaluation.evaluator import Evaluator
from trainer.network import colour_classes, suggestions

HINTS = 10
SUGGESTION_RADIUS = 15.0  # Lab units of ab: a suggestion this near the truth is a hit (as the benchmark's)
FIRST = 3


def hint_gain(net, batches, count: int = HINTS) -> float:
    """RGB PSNR with `count` true-colour hints per photo, minus without (dB), over (L8, ab8) batches."""
    with_hints = scoring.means(Evaluator(net, num_hints=count), batches)["rgb_psnr"]
    return with_hints - scoring.means(Evaluator(net), batches)["rgb_psnr"]


def suggestion_hits(net, prep: Preparation, batches, points: int = 10, seed: int = 0) -> float:
    """Share of random points (`points` per photo, fixed seed) where the true colour (the 5x5 mean ab there)
    lies within SUGGESTION_RADIUS of one of the FIRST suggested colours; nan for a net that regresses ab."""
    if not colour_classes.is_classifier(net):
        return float("nan")
    distribution = suggestions.distribution_model(net)
    indices = suggestions.bin_indices(net)
    random, hits = np.random.default_rng(seed), []
    for l8, ab8 in batches:
        lightness, ab = color_tf.l8_to_input(l8), color_tf.ab8_to_target(ab8)
        rgb = color_tf.to_rgb(lightness, ab)
        batch, height, width = l8.shape[0], l8.shape[1], l8.shape[2]
        xy = np.stack([random.integers(0, width, (batch, points)), random.integers(0, height, (batch, points))], -1)
        found = suggestions.suggest(distribution, prep, indices, rgb, tf.constant(xy, tf.float32))
        truth = _mean_ab(ab, xy)
        distance = np.linalg.norm((found["ab"].numpy()[:, :, :FIRST] - truth[:, :, None]) * color.AB_SCALE, axis=-1)
        offered = found["probabilities"].numpy()[:, :, :FIRST] > 0
        hits += np.any((distance <= SUGGESTION_RADIUS) & offered, axis=-1).ravel().tolist()
    return float(np.mean(hits))


def _mean_ab(ab: tf.Tensor, xy: np.ndarray, half: int = 2) -> np.ndarray:
    """Model-scale ab (b, k, 2) averaged over the (2 half + 1)^2 pixels around each point (x, y), clipped."""
    pooled = tf.nn.avg_pool2d(tf.pad(ab, [[0, 0], [half, half], [half, half], [0, 0]], mode="SYMMETRIC"),
                              2 * half + 1, 1, "VALID").numpy()
    rows = np.arange(len(xy))[:, None]
    return pooled[rows, xy[..., 1], xy[..., 0]]
