"""The original notebook's way of preparing photos, as the baseline: everything in RAM.

    python benchmarks/notebook_loop.py FILE_LIST

Reads each photo with OpenCV, resizes to 200x200, converts to Lab, divides to
float arrays and keeps them all in memory; prints the number of images.
"""

import sys

import cv2
import numpy as np


def load_all(paths: list[str], size: int = 200) -> tuple[np.ndarray, np.ndarray]:
    lightness, ab = [], []
    for path in paths:
        image = cv2.resize(cv2.imread(path), (size, size))
        lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB)
        lightness.append(lab[..., :1] / 255.0)
        ab.append((lab[..., 1:] - 128.0) / 128.0)
    return np.array(lightness, np.float32), np.array(ab, np.float32)


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        files = handle.read().split()
    lightness, ab = load_all(files)
    print(len(lightness), lightness.nbytes + ab.nbytes)
