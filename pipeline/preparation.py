"""How a photo becomes what the network sees: the one preparation rule, NumPy/OpenCV side.

A `Preparation` is recorded in the manifest by the Beam job and carried by every
model trained on those records, so the Beam job, `trainer.evaluate`,
`trainer.colorize`, the web page and the SavedModel all prepare a photo the same
way. Its TensorFlow twin, for the SavedModel's graph, is `pipeline.preparation_tf`;
a test keeps the two in agreement.

The rule, in two steps:

1. The *view*: the photo resized for the network. `stretch` squeezes it to
   size x size (aspect ratio lost); `crop` keeps the aspect ratio and brings
   the shorter side to `size`.
2. The *windows*: size x size squares of the view. A record holds the central
   one. Colourizing covers the whole view with overlapping windows and blends
   the network's colour across them, so that a model trained on cropped
   records sees photos at the same scale and shape as in training.

Resizing uses area averaging when the result is no larger than the source on
either side, else bilinear (`interpolation`). No TensorFlow here: Beam workers
import this module.
"""

import dataclasses
import math

import cv2
import numpy as np

from pipeline import color, images

RESIZE_MODES = ("stretch", "crop")
INTERPOLATION = "area when neither side grows, else bilinear"


def shrinks(height: int, width: int, to_height: int, to_width: int) -> bool:
    """True when neither side grows: area averaging then, bilinear otherwise."""
    return to_height <= height and to_width <= width


def resize(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 RGB to height x width by the project's interpolation rule."""
    method = cv2.INTER_AREA if shrinks(*rgb.shape[:2], height, width) else cv2.INTER_LINEAR
    return cv2.resize(rgb, (width, height), interpolation=method)


def window_offsets(length: int, size: int) -> list[int]:
    """Starts of size-long windows covering `length`, overlapping by at least half, spread evenly."""
    if length <= size:
        return [0]
    count = math.ceil((length - size) / (size // 2)) + 1
    return [round(i * (length - size) / (count - 1)) for i in range(count)]


@dataclasses.dataclass(frozen=True)
class Preparation:
    """The network's square size and how a photo is brought to it; with the limits photos must meet."""

    size: int = 200
    resize: str = "stretch"
    min_side: int = 32  # photos with a shorter side are refused (too_small)
    max_pixels: int = images.MAX_PIXELS  # photos declaring more are refused before decoding (too_large)
    gray_tolerance: int = 2  # a photo whose |a| and |b| never exceed this has no colour

    def __post_init__(self):
        """Refuse what cannot work; each message starts with the field's name (the Beam job's flag)."""
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {self.resize!r}")
        for name, least in (("size", 8), ("min_side", 1), ("max_pixels", 1), ("gray_tolerance", 0)):
            if getattr(self, name) < least:
                raise ValueError(f"{name} must be at least {least}, got {getattr(self, name)}")

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "interpolation": INTERPOLATION}

    @classmethod
    def from_json(cls, value: dict) -> "Preparation":
        return cls(**{field.name: value[field.name] for field in dataclasses.fields(cls) if field.name in value})

    def decode(self, data: bytes, max_pixels: int | None = None) -> np.ndarray:
        """File bytes -> uint8 RGB at the photo's own size, refused (ImageError) when too large or too small."""
        rgb = images.decode_rgb(data, max_pixels or self.max_pixels)
        self.check_size(rgb)
        return rgb

    def check_size(self, rgb: np.ndarray) -> None:
        """Refuse images too small to carry colour detail worth learning or predicting."""
        height, width = rgb.shape[:2]
        if min(height, width) < self.min_side:
            raise images.ImageError("too_small", f"{width}x{height} pixels, the shorter side is below {self.min_side}")

    def view_shape(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of the network's view of a photo this size (step 1 of the module's rule)."""
        if self.resize == "stretch":
            return self.size, self.size
        scale = self.size / min(height, width)
        return max(self.size, round(height * scale)), max(self.size, round(width * scale))

    def view(self, rgb: np.ndarray) -> np.ndarray:
        return resize(rgb, *self.view_shape(*rgb.shape[:2]))

    def windows(self, height: int, width: int) -> list[tuple[int, int]]:
        """(top, left) of the size x size windows covering a view this size."""
        return [(top, left) for top in window_offsets(height, self.size) for left in window_offsets(width, self.size)]

    def square(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 RGB (size, size, 3): the view's central window, as a record holds it."""
        view = self.view(rgb)
        top, left = (view.shape[0] - self.size) // 2, (view.shape[1] - self.size) // 2
        return view[top:top + self.size, left:left + self.size]

    def has_colour(self, rgb: np.ndarray) -> bool:
        return color.max_chroma(color.rgb_to_lab8(rgb)) > self.gray_tolerance


def blend_weights(size: int) -> np.ndarray:
    """(size, size) weights for blending overlapping windows: highest at the centre, small but positive at edges.

    Windows meet without seams: where two overlap, each fades out towards its own edge.
    """
    ramp = np.minimum(np.arange(size) + 0.5, size - np.arange(size) - 0.5) / (size / 2)
    return np.outer(ramp, ramp).astype(np.float32)


def cut(prep: Preparation, planes: np.ndarray) -> list[np.ndarray]:
    """A view's planes (h, w, c) -> its windows (size, size, c), in `Preparation.windows` order."""
    size = prep.size
    return [planes[top:top + size, left:left + size] for top, left in prep.windows(*planes.shape[:2])]


def blend(prep: Preparation, pieces: np.ndarray, height: int, width: int) -> np.ndarray:
    """The network's output on each window of a height x width view (n, size, size, k) -> one (height, width, k)."""
    size, weights = prep.size, blend_weights(prep.size)[..., None]
    total = np.zeros((height, width, pieces.shape[-1]), np.float32)
    weight = np.zeros((height, width, 1), np.float32)
    for (top, left), piece in zip(prep.windows(height, width), pieces):
        total[top:top + size, left:left + size] += piece * weights
        weight[top:top + size, left:left + size] += weights
    return total / weight
