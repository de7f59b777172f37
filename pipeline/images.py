"""Decoding photo file bytes to RGB arrays, with a reason for every failure.

What is then done to a photo for the network is `pipeline.preparation`.
No TensorFlow here: Beam workers import this module.
"""

import io

import cv2
import numpy as np
from PIL import Image

# Photos above this many pixels are refused before decoding (too_large): a few kB of PNG can
# declare 20000x20000 pixels, which would take gigabytes to decode.
MAX_PIXELS = 50_000_000

# Pillow only reads headers here, for the check above, which replaces its own fixed limit.
Image.MAX_IMAGE_PIXELS = None

# Formats that may carry an alpha channel, which IMREAD_COLOR would silently drop.
_ALPHA_FORMATS = ("png", "webp", "tiff")

_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"GIF8", "gif"),
    (b"\x00\x00\x00\x0cjP  ", "jpeg2000"),
)


class ImageError(ValueError):
    """A photo that cannot be used, with a short machine-readable reason."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def sniff_format(data: bytes) -> str | None:
    """The image format named by the file's first bytes, or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    return None


def _is_truncated(fmt: str, data: bytes) -> bool:
    """True when the file visibly ends early.

    OpenCV decodes a truncated JPEG without error (the missing rows come out
    gray), so it has to be caught here: a complete JPEG has an end-of-image
    marker after its last start-of-scan (entropy-coded data never contains
    either marker). A complete PNG ends with its IEND chunk.
    """
    if fmt == "jpeg":
        end = data.rfind(b"\xff\xd9")
        return end < 0 or end < data.rfind(b"\xff\xda")
    if fmt == "png":
        return b"IEND" not in data[-32:]
    return False


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the file header alone (Pillow's open reads no pixels), or None when Pillow cannot tell."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # noqa: BLE001  anything Pillow cannot parse is left to OpenCV to decode or refuse
        return None


def check_pixels(data: bytes, max_pixels: int) -> None:
    """Refuse a photo whose header declares more than max_pixels pixels, before anything is decoded."""
    size = header_size(data)
    if size and size[0] * size[1] > max_pixels:
        raise ImageError("too_large", f"{size[0]}x{size[1]} pixels, more than the limit of {max_pixels} "
                         "(--max_pixels)")


def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return np.clip(image.astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _composite_on_white(bgra: np.ndarray) -> np.ndarray:
    bgra = _to_uint8(bgra)
    alpha = bgra[..., 3:].astype(np.float32) / 255.0
    bgr = bgra[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    return (bgr + 0.5).astype(np.uint8)


def decode_rgb(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode any still image OpenCV reads to uint8 RGB (H, W, 3).

    Gray, 16-bit and CMYK sources become 8-bit RGB and EXIF orientation is
    applied (OpenCV's IMREAD_COLOR does both). Transparent pixels are laid on
    white rather than on whatever colour they happen to store.

    Raises:
      ImageError: with reason empty_file, not_an_image, truncated, too_large or corrupt.
    """
    if not data:
        raise ImageError("empty_file", "the file has 0 bytes")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError("not_an_image", f"unrecognised file header {data[:8]!r}")
    if _is_truncated(fmt, data):
        raise ImageError("truncated", f"the {fmt} data ends early ({len(data)} bytes)")
    check_pixels(data, max_pixels)
    buffer = np.frombuffer(data, np.uint8)
    bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageError("corrupt", f"OpenCV could not decode this {fmt} file")
    if fmt in _ALPHA_FORMATS:
        unchanged = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
        if unchanged is not None and unchanged.ndim == 3 and unchanged.shape[2] == 4:
            bgr = _composite_on_white(unchanged)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
