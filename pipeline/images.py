"""Decoding photo file bytes to RGB arrays, with a reason for every failure.

What is then done to a photo for the network is `pipeline.preparation`.
No TensorFlow here: Beam workers import this module.
"""

import io

import cv2
import numpy as np
from PIL import Image

from pipeline import decoders, image_headers, opencv_limits

# Photos above this many pixels are refused before decoding (too_large): a few kB of PNG can
# declare 20000x20000 pixels, which would take gigabytes to decode. A limit above OpenCV's own
# (opencv_limits.MAX_PIXELS) is held to it.
MAX_PIXELS = 50_000_000
# OpenCV refuses (with an exception) a side longer than this whatever the pixel count.
MAX_SIDE = 1 << 20
# libjpeg decodes every scan of a progressive JPEG, with no limit: 20,000 empty scans in 341 KB cost
# 45 s of CPU on a loaded 2-core machine. Encoders write about 10; a few hundred is generous.
MAX_SCANS = 300
# Pixels composited at a time, so that the float temporaries of a 40-megapixel photo stay small.
_BAND_PIXELS = 1 << 20
# What a decode may use beyond what its header says it costs (decode_bytes): the decoder's tables and
# threads, Python's own allocations. A file that makes the decoder allocate more than that was lying.
DECODE_SLACK_BYTES = 256 << 20
# CPU time a decode may take: a fixed part and a part per megapixel, several times what OpenCV's
# decoders need (about 0.02 s a megapixel for a baseline JPEG, 0.7 s for 300 scans of 36 megapixels).
DECODE_CPU_SECONDS = 2.0
DECODE_CPU_SECONDS_PER_MEGAPIXEL = 0.1

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

    def __reduce__(self):  # raised in a decoder process, raised again in its caller
        return type(self), (self.reason, self.detail)


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
    either marker). A complete PNG's chunks reach its IEND chunk; bytes after
    it are ignored, as browsers and libpng ignore them.
    """
    if fmt == "jpeg":
        end = data.rfind(b"\xff\xd9")
        return end < 0 or end < data.rfind(b"\xff\xda")
    if fmt == "png":  # one that does not start with IHDR is corrupt, which its header reader says
        return data[12:16] == b"IHDR" and not _png_reaches_iend(data)
    return False


def _png_reaches_iend(data: bytes) -> bool:
    """True when the PNG's chunks, each its length, type, data and CRC, lead whole to an IEND chunk."""
    position = 8
    while position + 12 <= len(data):
        length, kind = int.from_bytes(data[position:position + 4], "big"), data[position + 4:position + 8]
        position += 12 + length
        if kind == b"IEND":
            return position <= len(data)
    return False


def _refuse_above(width: int, height: int, max_pixels: int, what: str = "") -> None:
    limit = min(max_pixels, opencv_limits.MAX_PIXELS)
    if width * height > limit:
        raise ImageError("too_large", f"{what}{width}x{height} pixels, more than the limit of {limit} "
                         + ("(--max_pixels)" if limit == max_pixels else "(the decoder's own)"))
    if max(width, height) > MAX_SIDE:
        raise ImageError("too_large", f"{what}{width}x{height} pixels, a side longer than the decoder's "
                         f"limit of {MAX_SIDE}")


def inspect(data: bytes, max_pixels: int = MAX_PIXELS) -> image_headers.Header:
    """The file's header, refused (ImageError) before any pixel is decoded when it cannot be used.

    Every size the header declares is checked (a TIFF may name two, and Pillow and libtiff read
    different ones), as is a TIFF's tile, which the decoder allocates whatever the image's size;
    sizes that disagree, or a header that does not say how large the image is, are corrupt: a
    decoder asked to read an unknown
    size may allocate gigabytes.

    Raises:
      ImageError: with reason empty_file, not_an_image, truncated, too_large, too_many_scans or corrupt.
    """
    if not data:
        raise ImageError("empty_file", "the file has 0 bytes")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError("not_an_image", f"unrecognised file header {data[:8]!r}")
    if _is_truncated(fmt, data):
        raise ImageError("truncated", f"the {fmt} data ends early ({len(data)} bytes)")
    try:
        header = image_headers.read(fmt, data)
    except image_headers.HeaderError as error:
        raise ImageError("corrupt", f"its header does not say how many pixels it has ({error})") from None
    for width, height in header.sizes or ((header.width, header.height),):
        _refuse_above(width, height, max_pixels)
    if len(header.sizes) > 1:
        raise ImageError("corrupt", f"the {fmt} header declares {len(header.sizes)} different sizes: "
                         + ", ".join(f"{w}x{h}" for w, h in header.sizes))
    if header.pixels == 0:
        raise ImageError("corrupt", f"the {fmt} header declares {header.width}x{header.height} pixels")
    if header.tile:
        _refuse_above(*header.tile, max_pixels, what="a tile of ")
    if header.scans > MAX_SCANS:
        raise ImageError("too_many_scans", f"the {fmt} has {header.scans} scans, more than the limit of {MAX_SCANS}")
    return header


def decode_bytes(header: image_headers.Header) -> int:
    """The most memory decode_rgb holds at once for this photo: by channels and bit depth, not pixels alone.

    A colour decode (3 bytes a pixel), the copy with alpha at full depth for the formats that may have
    it, the result and its RGB copy, and the decoder's own working memory.
    """
    alpha = header.pixels * header.channels * header.sample_bytes if header.fmt in _ALPHA_FORMATS else 0
    return header.pixels * 9 + alpha + header.work_bytes + _BAND_PIXELS * 64



def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return np.clip(image.astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _composite_on_white(bgra: np.ndarray) -> np.ndarray:
    """BGR of the pixels laid on white, computed a band of rows at a time: the float temporaries of a
    whole 16-bit 40-megapixel photo would take over a gigabyte."""
    out = np.empty((*bgra.shape[:2], 3), np.uint8)
    rows = max(1, _BAND_PIXELS // max(1, bgra.shape[1]))
    for top in range(0, bgra.shape[0], rows):
        band = _to_uint8(bgra[top:top + rows])
        alpha = band[..., 3:].astype(np.float32) / 255.0
        out[top:top + rows] = band[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha) + 0.5
    return out


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
    """Decode any still image OpenCV reads to uint8 RGB (H, W, 3), in a decoder process the OS bounds.

    Gray, 16-bit and CMYK sources become 8-bit RGB and EXIF orientation is
    applied (OpenCV's IMREAD_COLOR does both). Transparent pixels are laid on
    white rather than on whatever colour they happen to store, and the photo
    is turned as an opaque one is. The pixel limit is checked on the header
    before decoding and on the decoded photo again; the decode itself runs in
    a `pipeline.decoders` process held to the memory and CPU time its header
    says it needs, whatever the rest of the file says.

    Raises:
      ImageError: with reason empty_file, not_an_image, truncated, too_large, too_many_scans, too_slow or
        corrupt.
    """
    header = inspect(data, max_pixels)
    try:
        return decoders.run(_decode_here, data, header.fmt, max_pixels,
                            memory_bytes=decode_bytes(header) + DECODE_SLACK_BYTES,
                            cpu_seconds=DECODE_CPU_SECONDS + DECODE_CPU_SECONDS_PER_MEGAPIXEL * header.pixels / 1e6)
    except decoders.LimitExceeded as error:
        raise ImageError(error.reason, f"{error.detail}; its header declares {header.width}x{header.height} "
                                       "pixels") from None


def _decode_here(data: bytes, fmt: str, max_pixels: int) -> np.ndarray:
    """decode_rgb's decode, in this process: run in a decoder process only."""
    buffer = np.frombuffer(data, np.uint8)
    bgr = _imdecode(buffer, cv2.IMREAD_COLOR, fmt)
    if bgr is None:
        raise ImageError("corrupt", f"OpenCV could not decode this {fmt} file")
    if fmt in _ALPHA_FORMATS:
        unchanged = _imdecode(buffer, cv2.IMREAD_UNCHANGED, fmt)
        if unchanged is not None and unchanged.ndim == 3 and unchanged.shape[2] == 4:
            bgr = _composite_on_white(_as_oriented(unchanged, bgr, _exif_orientation(data)))
    _refuse_above(bgr.shape[1], bgr.shape[0], max_pixels)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _imdecode(buffer: np.ndarray, flags: int, fmt: str) -> np.ndarray | None:
    """cv2.imdecode, whose own refusals (its pixel and side limits, a tile too large) are exceptions; an
    allocation it could not make (the decoder process's memory limit) is too_large."""
    try:
        return cv2.imdecode(buffer, flags)
    except cv2.error as error:
        if error.code == cv2.Error.StsNoMem:
            raise ImageError("too_large", "decoding it needs more memory than its header declares") from None
        raise ImageError("corrupt", f"OpenCV refused this {fmt} file: {str(error).strip().splitlines()[-1]}") from None
