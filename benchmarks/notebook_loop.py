"""The original notebook's way of preparing photos, as the baseline: everything in RAM.

    python benchmarks/notebook_loop.py FILE_LIST [--discard] [--area]

Reads each photo with OpenCV, resizes to 200x200, converts to Lab, divides to
float arrays and keeps them all in memory; prints the number of images.
With --discard, each photo's arrays are overwritten by the next: the CPU-only ceiling.
With --area, photos are shrunk by area averaging (as the Beam job shrinks them),
not bilinearly (OpenCV's default, the notebook's), which costs more CPU.
"""

import sys

import cv2
import numpy as np


def load_all(paths: list[str], size: int = 200, keep: bool = True,
             interpolation: int = cv2.INTER_LINEAR) -> tuple[np.ndarray, np.ndarray]:
    """The notebook's steps, written to run fast: float32 arrays filled in place."""
    slots = len(paths) if keep else 1
    lightness = np.empty((slots, size, size, 1), np.float32)
    ab = np.empty((slots, size, size, 2), np.float32)
    for i, path in enumerate(paths):
        image = cv2.resize(cv2.imread(path), (size, size), interpolation=interpolation)
        lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(np.float32)
        lightness[i % slots] = lab[..., :1] / 255.0
        ab[i % slots] = (lab[..., 1:] - 128.0) / 128.0
    return lightness, ab


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        files = handle.read().split()
    lightness, ab = load_all(files, keep="--discard" not in sys.argv,
                             interpolation=cv2.INTER_AREA if "--area" in sys.argv else cv2.INTER_LINEAR)
    print(len(files), lightness.nbytes + ab.nbytes)
