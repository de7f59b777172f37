"""Fine-tuning (--init_model) a colour classifier on records whose colour bins differ from its own.

A classifier's head scores the in-gamut colour bins of the photos it was trained on
(`trainer.network.colour_classes`); other photos (anyone's own) have other bins. Training
its logits against the new records' classes without mapping them would teach the wrong
colours, silently. Here the head is rebuilt over the new bins: a bin both sets share keeps
its logit's weights, a new bin starts as a copy of its nearest shared one, and the
decoding (bin centres, rebalancing weights) is the new bins'; the body is the model's.
"""

import keras
import numpy as np

from pipeline import ab_bins, color_tf
from trainer.network import colour_classes, models


def model_bins(net: keras.Model) -> np.ndarray:
    """The flat grid indices of the bins a classifier decodes over, read from its bin centres."""
    lab = net.get_layer(colour_classes.CENTRES_LAYER).get_weights()[0].reshape(-1, 2) * color_tf.AB_SCALE
    axis = np.rint((lab - ab_bins.AXIS[0]) / ab_bins.STEP).astype(np.int64)
    return axis[:, 0] * ab_bins.SIDE + axis[:, 1]


def _nearest(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """For each new bin, the position in `old` of the nearest old bin (itself when shared)."""
    distances = np.sum((ab_bins.centres(new)[:, None, :] - ab_bins.centres(old)[None, :, :]) ** 2, axis=-1)
    return np.argmin(distances, axis=1)


def onto_bins(net: keras.Model, bins: colour_classes.ColourBins, rebalancing: float) -> keras.Model:
    """`net` with its colour head mapped onto `bins` (itself when they are its own), decoding as it did."""
    old = model_bins(net)
    if np.array_equal(old, bins.indices):
        return net
    logits_layer = net.get_layer(colour_classes.LOGITS_LAYER)
    kernel, bias = logits_layer.get_weights()
    source = _nearest(old, bins.indices)
    print(f"--init_model decodes over {old.size} colour bins, the records have {bins.size} "
          f"({np.isin(bins.indices, old).sum()} shared): its colour head is mapped onto the records' bins", flush=True)
    logits = keras.layers.Conv2D(bins.size, 1, name=colour_classes.LOGITS_LAYER, dtype=models.OUTPUT_DTYPE)(
        logits_layer.input)
    temperature, vividness = colour_classes.decoding(net)
    ab, fixed = colour_classes.decoding_head(logits, bins, rebalancing, temperature, vividness, models.OUTPUT_DTYPE)
    after = net.layers[[layer.name for layer in net.layers].index(colour_classes.CENTRES_LAYER) + 1:]
    for layer in after:  # what follows the decoding (the upsampling to full size): shared, it has no weights
        ab = layer(ab)
    mapped = keras.Model(net.inputs, ab, name=net.name)
    mapped.get_layer(colour_classes.LOGITS_LAYER).set_weights([kernel[..., source], bias[source]])
    for name, weights in fixed.items():
        mapped.get_layer(name).set_weights(weights)
    return mapped
