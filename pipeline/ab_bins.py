"""The grid of quantized ab colours (Zhang, Isola and Efros 2016): bins of 10 Lab units.

The Beam job counts every written pixel into this grid, per split, and records
the counts in the manifest; the colour-classification head keeps the bins
that occur in the training split (the in-gamut bins) and weights them by how
rare they are. NumPy only: Beam workers use it.
"""

import numpy as np

from pipeline import color

STEP = 10  # Lab units between bin centres along a and b
AXIS = np.arange(-120, 121, STEP, dtype=np.float32)  # bin centres along one axis: -120 ... 120
SIDE = AXIS.size
COUNT = SIDE * SIDE  # bins on the full grid; only the in-gamut ones are ever used


def index_of(ab8: np.ndarray) -> np.ndarray:
    """8-bit ab (..., 2) -> flat grid index (...) of the nearest bin centre."""
    ab = ab8.astype(np.float32) - color.AB_OFFSET
    axis = np.clip(np.rint((ab - AXIS[0]) / STEP), 0, SIDE - 1).astype(np.int32)
    return axis[..., 0] * SIDE + axis[..., 1]


def histogram(ab8: np.ndarray) -> np.ndarray:
    """Pixel counts per grid bin (COUNT,) of an 8-bit ab image."""
    return np.bincount(index_of(ab8).ravel(), minlength=COUNT).astype(np.int64)


def centres(indices) -> np.ndarray:
    """Flat grid indices -> their (a, b) centres in Lab units, (n, 2)."""
    indices = np.asarray(indices)
    return np.stack([AXIS[indices // SIDE], AXIS[indices % SIDE]], axis=-1)
