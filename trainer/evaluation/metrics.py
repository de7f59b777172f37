"""Quality metrics, defined once and computed in the graph, per image.

Two scales:
- seed scale, to compare with the original report: ab in 8-bit units over 128
  (values around 1.0), PSNR and SSIM (as `tf.image.psnr`/`tf.image.ssim`) with
  max_val=1 on the two ab channels;
- standard scale, what the colourization literature reports: RGB rebuilt from
  the true L and the predicted ab, as 0-255 integers; PSNR capped at
  `PSNR_CAP_DB` (an exact match would be infinite); SSIM with an 11x11
  Gaussian window, sigma 1.5; colourfulness of Hasler and Suesstrunk (2003),
  and its gap to the truth's (positive: duller than the truth);
- colour error, as Zhang, Isola and Efros (2016) report it: the AuC of the
  cumulative curve of per-pixel ab error (Euclidean, Lab units) over
  thresholds 0-150, in [0, 1];
- neutral false colour: the mean predicted chroma (Lab units) over pixels
  whose true chroma is under `NEUTRAL_CHROMA`: tinted whites and grays,
  blotches on white backgrounds. Pixel-weighted over a set (`WEIGHTS`).

Over a set, one more (`set_metrics`): colourfulness as a ratio to the truth's.
The colourfulness gap averaged over a set is the mean CF of the truths minus
that of the predictions: DDColor's delta-CF with its sign kept (positive:
duller than the truth), so it is reported once, under one name.

Every function takes model-scale tensors: L (b, h, w, 1) in [0, 1] and ab
(b, h, w, 2) in [-1, 1], and returns one value per image.
"""

import numpy as np
import tensorflow as tf

from pipeline import color, color_tf

PSNR_CAP_DB = 50.0
NEUTRAL_CHROMA = 5.0  # Lab units: a true colour this close to gray is neutral
AUC_THRESHOLDS = np.arange(0, 151, dtype=np.float32)  # Lab units
NAMES = ("ab_psnr", "ab_ssim", "rgb_psnr", "rgb_ssim", "colourfulness", "colourfulness_true",
         "colourfulness_gap", "ab_error_auc", "neutral_false_colour", "neutral_share")
WEIGHTS = {"neutral_false_colour": "neutral_share"}  # averaged over images weighted by this
SET_NAMES = ("colourfulness_ratio",)
# What a set's results show, in this order, and each one's title in tables.
TITLES = {"rgb_psnr": "RGB PSNR (dB)", "rgb_ssim": "RGB SSIM", "ab_psnr": "ab PSNR, seed scale",
          "ab_ssim": "ab SSIM, seed scale", "colourfulness": "colourfulness",
          "colourfulness_gap": "colourfulness gap", "colourfulness_ratio": "colourfulness / truth",
          "ab_error_auc": "ab error AuC",
          "neutral_false_colour": "neutral false colour"}
SHOWN = tuple(TITLES)
LOWER_IS_BETTER = ("loss", "colourfulness_gap", "neutral_false_colour")


def _seed_scale(ab: tf.Tensor) -> tf.Tensor:
    """Model ab -> the original project's ab8 / 128."""
    return ab + 1.0


def rgb255(lightness: tf.Tensor, ab: tf.Tensor) -> tf.Tensor:
    """RGB as the integers 0-255 a saved photo would hold (float32 dtype)."""
    return tf.round(color_tf.to_rgb(lightness, ab) * color.BYTE_MAX)


def colourfulness(rgb: tf.Tensor) -> tf.Tensor:
    """Hasler and Suesstrunk's colourfulness of 0-255 RGB images."""
    red, green, blue = tf.unstack(rgb, axis=-1)
    rg = red - green
    yb = 0.5 * (red + green) - blue
    mean_rg, var_rg = tf.nn.moments(rg, axes=[1, 2])
    mean_yb, var_yb = tf.nn.moments(yb, axes=[1, 2])
    return tf.sqrt(var_rg + var_yb) + 0.3 * tf.sqrt(tf.square(mean_rg) + tf.square(mean_yb))


def _gaussian_band(length: int, size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """(length, length - size + 1) matrix whose product with a row is its 'valid' Gaussian blur."""
    taps = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / sigma) ** 2)
    band = np.zeros((length, length - size + 1), np.float32)
    for column in range(length - size + 1):
        band[column:column + size, column] = taps / taps.sum()
    return band


def ssim(a: tf.Tensor, b: tf.Tensor, max_val: float) -> tf.Tensor:
    """SSIM per image (b, h, w, c), as `tf.image.ssim`: 11x11 Gaussian window, sigma 1.5, mean over channels.

    The window is applied as two banded matrix products rather than
    `tf.image.ssim`'s depthwise convolutions: 5 instead of 60 ms per 200x200
    RGB image on this CPU, which made validation ten times slower than training.
    """
    rows = tf.constant(_gaussian_band(a.shape[1]))
    columns = tf.constant(_gaussian_band(a.shape[2]))

    def blur(x):
        return tf.einsum("bhwc,hu,wv->bcuv", x, rows, columns)

    c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
    mean_a, mean_b = blur(a), blur(b)
    var_a = blur(a * a) - mean_a * mean_a
    var_b = blur(b * b) - mean_b * mean_b
    covariance = blur(a * b) - mean_a * mean_b
    index = ((2 * mean_a * mean_b + c1) * (2 * covariance + c2)) / (
        (mean_a * mean_a + mean_b * mean_b + c1) * (var_a + var_b + c2))
    return tf.reduce_mean(index, axis=[1, 2, 3])


def rgb_psnr(rgb_true: tf.Tensor, rgb_pred: tf.Tensor) -> tf.Tensor:
    return tf.minimum(tf.image.psnr(rgb_true, rgb_pred, max_val=color.BYTE_MAX), PSNR_CAP_DB)


def rgb_ssim(rgb_true: tf.Tensor, rgb_pred: tf.Tensor) -> tf.Tensor:
    return ssim(rgb_true, rgb_pred, max_val=color.BYTE_MAX)


def per_image(lightness: tf.Tensor, ab_true: tf.Tensor, ab_pred: tf.Tensor) -> dict[str, tf.Tensor]:
    """Every metric of `NAMES`, one value per image."""
    ab_true, ab_pred = tf.cast(ab_true, tf.float32), tf.cast(ab_pred, tf.float32)
    rgb_true, rgb_pred = rgb255(lightness, ab_true), rgb255(lightness, ab_pred)
    colour_true, colour_pred = colourfulness(rgb_true), colourfulness(rgb_pred)
    return {
        "ab_psnr": tf.image.psnr(_seed_scale(ab_true), _seed_scale(ab_pred), max_val=1.0),
        "ab_ssim": ssim(_seed_scale(ab_true), _seed_scale(ab_pred), max_val=1.0),
        "rgb_psnr": rgb_psnr(rgb_true, rgb_pred),
        "rgb_ssim": rgb_ssim(rgb_true, rgb_pred),
        "colourfulness": colour_pred,
        "colourfulness_true": colour_true,
        "colourfulness_gap": colour_true - colour_pred,
        **colour_errors(ab_true, ab_pred),
    }


def colour_errors(ab_true: tf.Tensor, ab_pred: tf.Tensor) -> dict[str, tf.Tensor]:
    """ab_error_auc, neutral_false_colour and neutral_share per image (see the module docstring)."""
    lab_units = color.AB_SCALE
    error = tf.norm((ab_true - ab_pred) * lab_units, axis=-1)
    # The share of the integer thresholds 0-150 that a pixel's error stays within, in closed form:
    # no (b, h, w, 151) tensor of comparisons.
    thresholds = float(AUC_THRESHOLDS.size)
    within = tf.clip_by_value(thresholds - tf.math.ceil(error), 0.0, thresholds) / thresholds
    neutral = tf.cast(tf.norm(ab_true * lab_units, axis=-1) < NEUTRAL_CHROMA, tf.float32)
    pixels = tf.reduce_sum(neutral, axis=[1, 2])
    chroma = tf.norm(ab_pred * lab_units, axis=-1)
    return {
        "ab_error_auc": tf.reduce_mean(within, axis=[1, 2]),
        "neutral_false_colour": tf.reduce_sum(chroma * neutral, axis=[1, 2]) / tf.maximum(pixels, 1.0),
        "neutral_share": pixels / tf.cast(tf.shape(neutral)[1] * tf.shape(neutral)[2], tf.float32),
    }


def mean(values: dict[str, list[float]]) -> dict[str, float]:
    """Per-image values of `NAMES` (and of any other per-image score, the loss) -> their means over the set
    (weighted as `WEIGHTS` says), plus `set_metrics`."""
    result = {}
    for name in values:
        weights = values[WEIGHTS[name]] if name in WEIGHTS else None
        result[name] = float(np.average(values[name], weights=weights)) if np.sum(
            weights if weights is not None else [1]) > 0 else float("nan")
    return set_metrics(result)


def set_metrics(result: dict[str, float]) -> dict[str, float]:
    """Add the set-level metrics to means over a set."""
    truth = result["colourfulness_true"]
    return {**result, "colourfulness_ratio": result["colourfulness"] / truth if truth else float("nan")}
