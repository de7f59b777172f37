"""The project's single colour convention, NumPy/OpenCV side.

Every stored pixel is CIE L*a*b* (D65 white) in OpenCV's 8-bit encoding:
L8 = L * 255 / 100, a8 = a + 128, b8 = b + 128. That is a quarter of the
bytes of float32 and measured lossless for our purposes (about 50 dB RGB PSNR
on a round trip). The TensorFlow side of the same convention is
`pipeline.color_tf`; a test keeps the two in agreement.

This module deliberately imports no TensorFlow: Beam workers use it.
"""

import cv2
import numpy as np

# The convention's numbers, spelled here only; pipeline.color_tf and the trainer use these names.
BYTE_MAX = 255.0  # 8-bit channels, RGB and L8 alike
L_MAX = 100.0  # L of L*a*b* runs 0-100
AB_OFFSET = 128  # a8 = a + 128, b8 = b + 128
AB_SCALE = 128.0  # the model's ab = a / 128, b / 128

CONVENTION = {
    "space": "CIE L*a*b*, D65 white",
    "storage": "uint8, OpenCV encoding: L8 = L*255/100, a8 = a+128, b8 = b+128",
    "model_input": "L8 / 255, in [0, 1]",
    "model_target": "(ab8 - 128) / 128, in [-1, 1)",
}


def rgb_to_lab8(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> uint8 Lab8 (H, W, 3)."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)


def lab8_to_rgb(lab8: np.ndarray) -> np.ndarray:
    """uint8 Lab8 (H, W, 3) -> uint8 RGB (H, W, 3)."""
    return cv2.cvtColor(lab8, cv2.COLOR_LAB2RGB)


def ab8(ab: np.ndarray) -> np.ndarray:
    """The model's ab (float, about [-1, 1]) -> uint8 a8, b8."""
    return np.clip(np.round(ab * AB_SCALE + AB_OFFSET), 0, 255).astype(np.uint8)


def planes(lab8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lab8 (H, W, 3) -> contiguous L8 (H, W) and interleaved ab8 (H, W, 2).

    OpenCV's split and merge are about 20 times faster here than NumPy's
    strided copies, which were a tenth of the Beam job's time.
    """
    lightness, a, b = cv2.split(lab8)
    return lightness, cv2.merge([a, b])


def max_chroma(lab8: np.ndarray) -> int:
    """Largest |a| or |b| over the image, in 8-bit Lab units.

    Zero means a photo with no colour at all (a grayscale source): such pairs
    only teach the model to predict "no colour". From each plane's extremes,
    found by OpenCV: NumPy's reductions over the strided planes were a tenth
    of the Beam job's time per photo.
    """
    if not lab8.size:
        return 0
    extremes = [cv2.minMaxLoc(plane)[:2] for plane in cv2.split(lab8)[1:]]
    return int(max(max(AB_OFFSET - low, high - AB_OFFSET) for low, high in extremes))
