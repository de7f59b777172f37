"""The grid of quantized ab colours (Zhang, Isola and Efros 2016): bins of 10 Lab units.

The Beam job counts every written pixel into this grid, per split, and records
the counts in the manifest; the colour-classification head keeps the bins
that occur in the training split (the in-gamut bins) and weights them by how
rare they are. NumPy only: Beam workers use it.
"""

import cv2
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


# The grid's axis position of each 8-bit a (or b) value: `index_of` along one axis, looked up.
_AXIS_OF_BYTE = (index_of(np.repeat(np.arange(256, dtype=np.uint8)[:, None], 2, axis=1)) // SIDE).astype(np.uint8)
_EXACT = 1 << 24  # OpenCV counts in float32: exact up to this many pixels at a time


def histogram(ab8: np.ndarray) -> np.ndarray:
    """Pixel counts per grid bin (COUNT,) of an 8-bit ab image.

    The Beam job counts every pixel it writes: each value's axis position is
    looked up and OpenCV counts the pairs, about 3 times faster than working
    out each pixel's bin in floating point with NumPy (same counts).
    """
    pairs = np.asarray(ab8, np.uint8).reshape(-1, 1, 2)
    return sum((_counts(pairs[start:start + _EXACT]) for start in range(0, len(pairs), _EXACT)),
               np.zeros(COUNT, np.int64))


def _counts(pairs: np.ndarray) -> np.ndarray:
    axes = cv2.LUT(pairs, _AXIS_OF_BYTE)
    return cv2.calcHist([axes], [0, 1], None, [SIDE, SIDE], [0, SIDE, 0, SIDE]).ravel().astype(np.int64)


def centres(indices) -> np.ndarray:
    """Flat grid indices -> their (a, b) centres in Lab units, (n, 2)."""
    indices = np.asarray(indices)
    return np.stack([AXIS[indices // SIDE], AXIS[indices % SIDE]], axis=-1)
