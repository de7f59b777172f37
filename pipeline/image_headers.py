"""What a photo file's header declares, read from the same fields the decoder will use, before any pixel.

Pillow's header reader and OpenCV's decoders (libpng, libjpeg, libtiff, libwebp) do not always read
the same fields: a TIFF may name its width twice (Pillow takes the first, libtiff the last), or declare
a small image made of one huge tile. So each format's header is parsed here as its decoder reads it,
and every occurrence of a size field is kept, so that none can hide a larger one.

Only formats without a parser here (GIF, JPEG 2000) fall back to Pillow's header reader.
"""

import dataclasses
import io
import re
import struct

from PIL import Image

# Pillow only reads headers here; the callers' own limits replace its fixed one.
Image.MAX_IMAGE_PIXELS = None


class HeaderError(ValueError):
    """A header that does not say, or contradicts itself about, how large the image is."""


@dataclasses.dataclass(frozen=True)
class Header:
    """What decoding this file will hold in memory, as its header declares it.

    channels and sample_bytes are of the decoder's output with nothing dropped (alpha kept, 16 bits
    kept); work_bytes is the decoder's own working memory beyond that (a TIFF tile or strip, a
    progressive JPEG's coefficients). sizes holds every declared (width, height), the largest first;
    tile, the (width, height) of a TIFF's tiles, which the decoder allocates whatever the image's size.
    """

    fmt: str
    width: int
    height: int
    channels: int = 3
    sample_bytes: int = 1
    work_bytes: int = 0
    scans: int = 1
    sizes: tuple[tuple[int, int], ...] = ()
    tile: tuple[int, int] | None = None

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read(fmt: str, data: bytes) -> Header:
    """The header of a file of this (sniffed) format; raises HeaderError when it cannot be told."""
    try:
        return _PARSERS.get(fmt, _pillow)(data)
    except (struct.error, IndexError):
        raise HeaderError(f"the {fmt} header ends early") from None


# --- PNG: the IHDR chunk, which must come first; CRCs are not checked (OpenCV's libpng decodes through a
# damaged ancillary chunk that Pillow refuses).

_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
# Channels OpenCV's IMREAD_UNCHANGED gives per colour type (gray with alpha becomes BGRA), without tRNS.
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 4, 6: 4}


def _png(data: bytes) -> Header:
    if data[12:16] != b"IHDR":
        raise HeaderError("the PNG does not start with its IHDR chunk")
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    if depth not in _PNG_DEPTHS.get(colour, ()):
        raise HeaderError(f"the PNG declares bit depth {depth} with colour type {colour}")
    idat = data.find(b"IDAT")
    channels = 4 if b"tRNS" in data[:idat if idat > 0 else len(data)] else _PNG_CHANNELS[colour]
    return Header("png", width, height, channels, 2 if depth == 16 else 1, sizes=((width, height),))


# --- JPEG: the frame header (SOF) and the number of scans (SOS), counted by walking the markers.

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}
# The next marker after entropy-coded data: 0xFF followed by neither 0x00 (a stuffed byte), a restart
# marker nor another 0xFF (fill).
_NEXT_MARKER = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")


def _jpeg(data: bytes) -> Header:
    frame, scans, position = None, 0, 2
    while position < len(data) - 1:
        if data[position] != 0xFF:
            raise HeaderError(f"the JPEG has no marker at byte {position}")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0xD9:
            break
        if marker in _STANDALONE:
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2:position + 4])
        if marker in _SOF and frame is None:
            frame = (marker, *struct.unpack(">BHHB", data[position + 4:position + 10]))
        position += 2 + length
        if marker == 0xDA:
            scans += 1
            found = _NEXT_MARKER.search(data, position)
            position = found.start() if found else len(data)
        elif marker == 0x00 or length < 2:
            raise HeaderError(f"the JPEG has an invalid marker 0x{marker:02x}")
    if frame is None:
        raise HeaderError("the JPEG has no frame header")
    marker, precision, height, width, components = frame
    coefficients = width * height * components * 2 if marker in _PROGRESSIVE else 0  # 64 int16 per 8x8 block
    return Header("jpeg", width, height, 3, 2 if precision > 8 else 1, coefficients, scans, ((width, height),))


# --- TIFF: the first image directory, as libtiff reads it; OpenCV decodes that page only.

_WIDTH, _HEIGHT, _BITS, _SAMPLES, _ROWS_PER_STRIP, _TILE_WIDTH, _TILE_HEIGHT = 256, 257, 258, 277, 278, 322, 323
_TIFF_TYPES = {3: ("H", 2), 4: ("I", 4), 16: ("Q", 8)}  # SHORT, LONG, LONG8: the types size fields use


def _tiff_values(data: bytes, order: str, entry: int) -> list[int]:
    kind, count, inline = struct.unpack(order + "HI4s", data[entry + 2:entry + 12])
    code, size = _TIFF_TYPES.get(kind, (None, 0))
    if code is None or count == 0:
        return []
    if count * size <= 4:
        raw = inline
    else:
        (offset,) = struct.unpack(order + "I", inline)
        raw = data[offset:offset + min(count, 16) * size]
    return list(struct.unpack(f"{order}{len(raw) // size}{code}", raw[:len(raw) // size * size]))


def _tiff_tags(data: bytes) -> dict[int, list[list[int]]]:
    """{tag: [values of each occurrence]} of the first directory, duplicates kept."""
    order = "<" if data[:2] == b"II" else ">"
    (directory,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[directory:directory + 2])
    tags: dict[int, list[list[int]]] = {}
    for index in range(count):
        entry = directory + 2 + 12 * index
        (tag,) = struct.unpack(order + "H", data[entry:entry + 2])
        tags.setdefault(tag, []).append(_tiff_values(data, order, entry))
    return tags


def _every(tags: dict, tag: int, default: int) -> list[int]:
    """Every value a tag is given (each occurrence's first), or [default] when it is absent."""
    return [values[0] for values in tags.get(tag, []) if values] or [default]


def _tiff(data: bytes) -> Header:
    tags = _tiff_tags(data)
    widths, heights = _every(tags, _WIDTH, 0), _every(tags, _HEIGHT, 0)
    count = max(len(widths), len(heights))  # the n-th width with the n-th height, the last one repeated
    pairs = {(widths[min(i, len(widths) - 1)], heights[min(i, len(heights) - 1)]) for i in range(count)}
    sizes = tuple(sorted(pairs, key=lambda size: -size[0] * size[1]))
    width, height = sizes[0]
    channels = max(_every(tags, _SAMPLES, 1))
    sample_bytes = max(1, -(-max(_every(tags, _BITS, 8)) // 8))
    if _TILE_WIDTH in tags or _TILE_HEIGHT in tags:
        tile = (max(_every(tags, _TILE_WIDTH, 0)), max(_every(tags, _TILE_HEIGHT, 0)))
    else:
        tile = None
    block = tile[0] * tile[1] if tile else width * min(max(_every(tags, _ROWS_PER_STRIP, height)), height)
    # libtiff reads a tile (or strip) into its own buffer and OpenCV converts it through another; OpenCV may
    # also read the whole page as 8-bit RGBA (TIFFReadRGBAImage) for layouts it does not decode itself.
    work = 2 * block * channels * sample_bytes + width * height * 4
    return Header("tiff", width, height, channels, sample_bytes, work, sizes=sizes, tile=tile)


# --- WebP: the first chunk, VP8 (lossy), VP8L (lossless) or VP8X (extended, with the canvas size).

def _webp(data: bytes) -> Header:
    kind = data[12:16]
    if kind == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise HeaderError("the WebP's VP8 frame has no start code")
        width, height = (value & 0x3FFF for value in struct.unpack("<HH", data[26:30]))
        channels = 3
    elif kind == b"VP8L":
        (bits,) = struct.unpack("<I", data[21:25])
        width, height, channels = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 4 if bits >> 28 & 1 else 3
    elif kind == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        channels = 4 if data[20] & 0x10 else 3
    else:
        raise HeaderError(f"the WebP starts with an unknown chunk {kind!r}")
    return Header("webp", width, height, channels, sizes=((width, height),))


# --- BMP: the DIB header, the OS/2 one (12 bytes) or the Windows ones.

def _bmp(data: bytes) -> Header:
    (size,) = struct.unpack("<I", data[14:18])
    if size == 12:
        width, height, _, bits = struct.unpack("<HHHH", data[18:26])
    else:
        width, height, _, bits = struct.unpack("<iiHH", data[18:30])
    width, height = width, abs(height)  # a negative height means rows stored top-down
    if width <= 0:
        raise HeaderError(f"the BMP declares a width of {width}")
    return Header("bmp", width, height, 3, sizes=((width, height),))


def _pillow(data: bytes) -> Header:
    """Formats parsed by Pillow only (GIF, JPEG 2000): counted as 4 channels of 16 bits, the most they hold."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            fmt = (image.format or "image").lower()
    except Exception:  # noqa: BLE001  whatever Pillow cannot parse says nothing about the size
        raise HeaderError("its header cannot be parsed") from None
    return Header(fmt, width, height, 4, 2, sizes=((width, height),))


_PARSERS = {"png": _png, "jpeg": _jpeg, "tiff": _tiff, "webp": _webp, "bmp": _bmp}
