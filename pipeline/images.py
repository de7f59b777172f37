"""Decoding photo file bytes to RGB arrays, with a reason for every failure.

What is then done to a photo for the network is `pipeline.preparation`.
No TensorFlow here: Beam workers import this module.
"""

import io
import struct

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

_ORIENTATION = 0x0112  # the EXIF tag
# EXIF orientation -> the steps that turn the stored pixels upright, in order.
_ORIENTATION_STEPS = {
    2: (np.fliplr,), 3: (lambda i: np.rot90(i, 2),), 4: (np.flipud,), 5: (lambda i: np.rot90(i, -1), np.fliplr),
    6: (lambda i: np.rot90(i, -1),), 7: (lambda i: np.rot90(i, 1), np.fliplr), 8: (lambda i: np.rot90(i, 1),),
}

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


def _png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, which must come first, without checking any CRC.

    Pillow refuses a PNG with a damaged ancillary chunk (a wrong CRC) before the pixels, which
    OpenCV decodes all the same: the size has to be known without Pillow's help.
    """
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the file header alone (no pixels are read), or None when it cannot be told."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # noqa: BLE001  whatever Pillow cannot parse, only the PNG header is read by hand
        return _png_size(data) if sniff_format(data) == "png" else None


def _refuse_above(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageError("too_large", f"{width}x{height} pixels, more than the limit of {max_pixels} "
                         "(--max_pixels)")


def check_pixels(data: bytes, max_pixels: int) -> None:
    """Refuse a photo whose header declares more than max_pixels pixels, or whose size cannot be read from
    its header, before anything is decoded: a decoder asked to read an unknown size may allocate gigabytes."""
    size = header_size(data)
    if size is None:
        raise ImageError("corrupt", "its header does not say how many pixels it has")
    _refuse_above(*size, max_pixels)


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


def _exif_orientation(data: bytes) -> int:
    """The EXIF orientation tag (1: upright), from the header alone."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return int(image.getexif().get(_ORIENTATION, 1))
    except Exception:  # noqa: BLE001  no readable EXIF: the photo is taken as upright
        return 1


def _orient(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn and mirror an image as its EXIF orientation (2-8) says it is displayed."""
    for step in _ORIENTATION_STEPS.get(orientation, ()):
        image = step(image)
    return image


def _as_oriented(image: np.ndarray, reference: np.ndarray, orientation: int) -> np.ndarray:
    """image, or image turned by its EXIF orientation, whichever matches reference, the IMREAD_COLOR decode.

    OpenCV applies EXIF orientation under IMREAD_COLOR, but under IMREAD_UNCHANGED only for some
    formats (TIFF yes, PNG no): a transparent photo must come out turned as an opaque one does.
    """
    if orientation == 1:
        return image
    candidates = [c for c in (image, _orient(image, orientation)) if c.shape[:2] == reference.shape[:2]]
    return min(candidates, key=lambda c: np.abs(_to_uint8(c[..., :3]).astype(np.int16) - reference).mean(),
               default=image)


def decode_rgb(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode any still image OpenCV reads to uint8 RGB (H, W, 3).

    Gray, 16-bit and CMYK sources become 8-bit RGB and EXIF orientation is
    applied (OpenCV's IMREAD_COLOR does both). Transparent pixels are laid on
    white rather than on whatever colour they happen to store, and the photo
    is turned as an opaque one is. The pixel limit is checked on the header
    before decoding and on the decoded photo again.

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
            bgr = _composite_on_white(_as_oriented(unchanged, bgr, _exif_orientation(data)))
    _refuse_above(bgr.shape[1], bgr.shape[0], max_pixels)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
