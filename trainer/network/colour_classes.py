"""Colourization as classification over quantized ab colours (Zhang, Isola and Efros 2016).

A regression loss is minimized by the average of a region's plausible colours,
and the average of red, yellow and pink is brownish gray. Predicting a
distribution over ab bins instead keeps every plausible colour, and class
rebalancing stops the common dull colours from drowning the rare vivid ones:

- bins: the 10-Lab-unit grid of `pipeline.ab_bins`, keeping those that occur
  in the training split (counted by the Beam job, read from the manifest);
- targets: each true ab soft-encoded over its `NEIGHBOURS` nearest bins with a
  Gaussian of `SOFT_SIGMA` Lab units;
- loss: per-pixel cross-entropy weighted by w ~ 1 / ((1 - lambda) p~ + lambda / Q),
  p~ the prior smoothed with `PRIOR_SIGMA`, normalized to average 1 over the
  training pixels (lambda = 1: no rebalancing; 0: inverse frequency);
- decoding: the annealed mean, softmax(log p / T) then the expectation of the
  bin centres (T = 1: the mean; T -> 0: the mode). `vividness` below 1 divides
  the rebalancing weights back out of p first (0: the plain posterior), which
  moves the output from vivid towards faithful neutrals.

The decoding is made of built-in Keras layers inside the network (see
`trainer.network.models`), so a saved model colours photos with Keras alone.
"""

import dataclasses

import cv2
import numpy as np
import tensorflow as tf
from keras import layers

from pipeline import ab_bins, color_tf
from pipeline.errors import UsageError

NEIGHBOURS = 5
SOFT_SIGMA = 5.0  # Lab units
PRIOR_SIGMA = 5.0  # Lab units
LOGITS_LAYER = "colour_logits"
REBALANCED_LAYER = "rebalanced_logits"  # logits - log w: fixed
RAW_SCALE_LAYER = "annealing_raw"  # vividness / T
REBALANCED_SCALE_LAYER = "annealing_rebalanced"  # (1 - vividness) / T
CENTRES_LAYER = "bin_centres"


@dataclasses.dataclass(frozen=True)
class ColourBins:
    """The in-gamut bins of a training split and how often each occurs there."""

    indices: np.ndarray  # flat grid indices (Q,)
    frequency: np.ndarray  # fraction of training pixels in each bin (Q,), sums to 1
    prior: np.ndarray  # the frequency smoothed over the grid by PRIOR_SIGMA (Q,), sums to 1

    @classmethod
    def from_histogram(cls, counts) -> "ColourBins":
        """From the manifest's pixel counts over the whole grid (ab_bins.COUNT,)."""
        counts = np.asarray(counts, np.float64)
        if counts.shape != (ab_bins.COUNT,) or counts.sum() <= 0:
            raise ValueError(f"an ab histogram needs {ab_bins.COUNT} counts with some pixels")
        grid = (counts / counts.sum()).reshape(ab_bins.SIDE, ab_bins.SIDE)
        smoothed = cv2.GaussianBlur(grid, (0, 0), PRIOR_SIGMA / ab_bins.STEP, borderType=cv2.BORDER_CONSTANT)
        indices = np.flatnonzero(counts > 0)
        prior = smoothed.ravel()[indices]
        return cls(indices, grid.ravel()[indices], prior / prior.sum())

    @property
    def size(self) -> int:
        return self.indices.size

    @property
    def centres(self) -> np.ndarray:
        """Bin centres in model-scale ab (Q, 2)."""
        return (ab_bins.centres(self.indices) / color_tf.AB_SCALE).astype(np.float32)

    def weights(self, rebalancing: float) -> np.ndarray:
        """Class-rebalancing weight per bin, averaging 1 over the training pixels."""
        weights = 1.0 / ((1.0 - rebalancing) * self.prior + rebalancing / self.size)
        return (weights / np.sum(self.frequency * weights)).astype(np.float32)


SEARCH = 4  # grid cells along a and b around a colour among which its nearest bins are sought


def soft_encode(ab: tf.Tensor, bins: ColourBins) -> tuple[tf.Tensor, tf.Tensor]:
    """Model-scale ab (..., 2) -> the NEIGHBOURS nearest bins (..., k) and their Gaussian weights, summing to 1.

    The bins lie on a regular grid, so a colour's nearest ones are among the SEARCH x SEARCH grid
    cells around it: 16 distances and a top-k over them instead of over every bin (a third of
    a training step's time on a CPU when searched over all 254). Cells with no bin (out of gamut,
    or never seen in training) are skipped.
    """
    lookup = np.full(ab_bins.COUNT, -1, np.int32)
    lookup[bins.indices] = np.arange(bins.size, dtype=np.int32)
    offsets = np.stack(np.meshgrid(np.arange(SEARCH), np.arange(SEARCH), indexing="ij"), -1).reshape(-1, 2)
    lab = ab * color_tf.AB_SCALE
    corner = tf.floor((lab - ab_bins.AXIS[0]) / ab_bins.STEP) - (SEARCH // 2 - 1)
    cells = corner[..., None, :] + offsets.astype(np.float32)  # (..., SEARCH**2, 2) grid coordinates
    inside = tf.reduce_all((cells >= 0) & (cells < ab_bins.SIDE), axis=-1)
    grid = tf.clip_by_value(tf.cast(cells, tf.int32), 0, ab_bins.SIDE - 1)
    candidates = tf.gather(tf.constant(lookup), grid[..., 0] * ab_bins.SIDE + grid[..., 1])
    distance2 = tf.reduce_sum(tf.square(lab[..., None, :] - (ab_bins.AXIS[0] + cells * ab_bins.STEP)), axis=-1)
    distance2 = tf.where(inside & (candidates >= 0), distance2, 1e9)
    negative, order = tf.math.top_k(-distance2, k=NEIGHBOURS)
    nearest = tf.maximum(tf.gather(candidates, order, batch_dims=len(order.shape) - 1), 0)
    return nearest, tf.nn.softmax(negative / (2.0 * SOFT_SIGMA**2), axis=-1)


def rebalanced_cross_entropy(bins: ColourBins, rebalancing: float):
    """Loss on (true ab at full size, logits at the network's colour resolution), one value per image.

    The cross-entropy -sum_k soft_k log softmax(logits)[nearest_k] is computed as
    logsumexp(logits) - sum_k soft_k logits[nearest_k] (the soft weights sum to 1): no
    log-probabilities over every bin are made, nor their gradient, which is then softmax(logits)
    minus the soft targets: the loss and its gradient take a fifth less time on a CPU.
    """
    pixel_weight = tf.constant(bins.weights(rebalancing))

    def loss(ab_true, logits):
        factor = ab_true.shape[1] // logits.shape[1]
        ab_small = tf.nn.avg_pool2d(ab_true, factor, factor, "VALID") if factor > 1 else ab_true
        nearest, soft = soft_encode(ab_small, bins)
        picked = tf.gather(logits, nearest, axis=-1, batch_dims=3)
        cross_entropy = tf.reduce_logsumexp(logits, axis=-1) - tf.reduce_sum(soft * picked, axis=-1)
        return tf.reduce_mean(tf.gather(pixel_weight, nearest[..., 0]) * cross_entropy, axis=[1, 2])

    loss.output_layer = LOGITS_LAYER
    return loss


def decoding_head(logits, bins: ColourBins, rebalancing: float, temperature: float, vividness: float,
                  dtype: str = "float32"):
    """Logits -> ab at the logits' resolution, by the annealed mean; built-in layers only, computing in `dtype`.

    (v * logits + (1 - v) * (logits - log w)) / T, softmax, expectation of the bin centres: the
    two scales hold T and v, so `set_decoding` changes both without touching the network.
    """
    q = bins.size
    fixed = {name: layers.DepthwiseConv2D(1, use_bias=name == REBALANCED_LAYER, name=name, trainable=False,
                                          dtype=dtype)
             for name in (REBALANCED_LAYER, RAW_SCALE_LAYER, REBALANCED_SCALE_LAYER)}
    fixed[CENTRES_LAYER] = layers.Conv2D(2, 1, use_bias=False, name=CENTRES_LAYER, trainable=False, dtype=dtype)
    ab = _decode(fixed, logits, dtype)
    return ab, {REBALANCED_LAYER: [np.ones((1, 1, q, 1), np.float32), -np.log(bins.weights(rebalancing))],
                CENTRES_LAYER: [bins.centres.reshape(1, 1, q, 2)],
                **_scales(q, temperature, vividness)}


def _annealed(fixed: dict, logits, dtype: str, rescale: float = 1.0, name: str | None = None):
    """The distribution over the bins the decoding takes the expectation of (see `decoding_head`); `rescale`
    multiplies what enters the softmax (the decoding's temperature divided by another). `name` prefixes the new
    layers' names: in one model with a loaded network, Keras's generated names may repeat the network's own."""
    def named(kind: str) -> dict:
        return {"name": f"{name}_{kind}"} if name else {}

    rebalanced = fixed[REBALANCED_LAYER](logits)
    summed = layers.Add(dtype=dtype, **named("add"))([fixed[RAW_SCALE_LAYER](logits),
                                                      fixed[REBALANCED_SCALE_LAYER](rebalanced)])
    if rescale != 1.0:
        summed = layers.Rescaling(rescale, dtype=dtype, **named("rescaling"))(summed)
    return layers.Softmax(axis=-1, dtype=dtype, **named("softmax"))(summed)


def _decode(fixed: dict, logits, dtype: str):
    """The decoding's arithmetic, on the fixed layers by name (see `decoding_head`)."""
    return fixed[CENTRES_LAYER](_annealed(fixed, logits, dtype))


def _fixed_layers(net) -> dict:
    names = (REBALANCED_LAYER, RAW_SCALE_LAYER, REBALANCED_SCALE_LAYER, CENTRES_LAYER)
    return {name: net.get_layer(name) for name in names}


def decode(net, logits):
    """`net`'s own decoding (its temperature, vividness and bins) applied to other logits, e.g. averaged ones."""
    return _decode(_fixed_layers(net), logits, net.get_layer(CENTRES_LAYER).dtype_policy)


def distribution(net, logits, temperature: float | None = None):
    """The distribution over `net`'s bins with its decoding's vividness, at `temperature` (None: the decoding's
    own, the distribution its output averages), for logits."""
    rescale = 1.0 if temperature is None else decoding(net)[0] / temperature
    return _annealed(_fixed_layers(net), logits, net.get_layer(CENTRES_LAYER).dtype_policy, rescale, "distribution")


def centres_of(net) -> np.ndarray:
    """A classifier's bin centres in model-scale ab (Q, 2), from its decoding layer."""
    return net.get_layer(CENTRES_LAYER).get_weights()[0].reshape(-1, 2)


def _scales(q: int, temperature: float, vividness: float) -> dict[str, list[np.ndarray]]:
    if temperature <= 0:
        raise ValueError(f"the temperature must be positive, got {temperature}")
    if not 0.0 <= vividness <= 1.0:
        raise ValueError(f"the vividness must be between 0 and 1, got {vividness}")
    return {RAW_SCALE_LAYER: [np.full((1, 1, q, 1), vividness / temperature, np.float32)],
            REBALANCED_SCALE_LAYER: [np.full((1, 1, q, 1), (1.0 - vividness) / temperature, np.float32)]}


def is_classifier(net) -> bool:
    return any(layer.name == REBALANCED_LAYER for layer in net.layers)


def decoding(net) -> tuple[float, float]:
    """(temperature, vividness) a classification network decodes with."""
    raw = float(net.get_layer(RAW_SCALE_LAYER).get_weights()[0].flat[0])
    rebalanced = float(net.get_layer(REBALANCED_SCALE_LAYER).get_weights()[0].flat[0])
    temperature = 1.0 / (raw + rebalanced)
    return temperature, raw * temperature


def override_decoding(net, temperature: float | None, vividness: float | None, name: str) -> None:
    """Decode as a person asked (None keeps the model's own); a model that regresses ab cannot."""
    if temperature is None and vividness is None:
        return
    if not is_classifier(net):
        raise UsageError(f"--temperature and --vividness need a colour-classification model; {name} regresses ab")
    set_decoding(net, temperature, vividness)


def set_decoding(net, temperature: float | None = None, vividness: float | None = None) -> None:
    """Change how a classification network decodes; None keeps the current value."""
    current_temperature, current_vividness = decoding(net)
    q = net.get_layer(REBALANCED_LAYER).get_weights()[1].size
    scales = _scales(q, current_temperature if temperature is None else temperature,
                     current_vividness if vividness is None else vividness)
    for name, value in scales.items():
        net.get_layer(name).set_weights(value)
