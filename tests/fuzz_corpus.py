"""Hostile photo files, made at test time: what an attacker or a damaged disk hands the decoders.

Every entry is (name, bytes, the reasons it may be refused with). The test modules of the Beam job,
colorize and the web page send the same files, so each door refuses the same inputs the same way.
"""

import functools
import struct
import zlib

import cv2
import numpy as np

BOMB_SIDE = 20_000
# Reasons a damaged photo may get: which one depends on where the damage fell.
DAMAGED = ("truncated", "corrupt", "not_an_image", "too_large", "too_small")


def chunk(kind: bytes, body: bytes, crc: int | None = None) -> bytes:
    """One PNG chunk; a crc other than the right one makes it damaged."""
    right = zlib.crc32(kind + body)
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", right if crc is None else crc)


def crc_bomb(side: int = BOMB_SIDE) -> bytes:
    """A real side x side gray PNG of zeros (about 400 KB at 20000) that Pillow cannot read the header of.

    A tEXt chunk with a wrong CRC sits before the pixels: Pillow refuses the file while OpenCV, which does
    not check ancillary chunks, would decode all side^2 pixels (3 bytes each as colour).
    """
    squeeze = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte, then the row's pixels
    pixels = b"".join(squeeze.compress(row * 1000) for _ in range(side // 1000)) + squeeze.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"tEXt", b"Comment\x00hello", crc=0) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))


def _deflated_zeros(size: int) -> bytes:
    """zlib data of `size` zero bytes, made a megabyte at a time."""
    squeeze, block = zlib.compressobj(9), b"\x00" * (1 << 20)
    whole, rest = divmod(size, len(block))
    return b"".join(squeeze.compress(block) for _ in range(whole)) + squeeze.compress(block[:rest]) + squeeze.flush()


# TIFF field types: the sizes a TIFF may give its width and height in, signed ones included (libtiff reads those).
SHORT, LONG, SSHORT, SLONG = 3, 4, 8, 9


def tiff(entries: list[tuple[int, ...]], pixels: bytes) -> bytes:
    """A little-endian gray 8-bit TIFF with these (tag, value) LONG or (tag, value, type) entries, in this order
    (duplicates kept), and deflated pixel data as its one strip or tile; offsets and byte counts are filled in
    here."""
    common = [(258, 8), (259, 8), (262, 1), (277, 1)]  # 8 bits, deflate, black is zero, one sample
    tiled = any(entry[0] == 322 for entry in entries)
    place = [(324, 0), (325, len(pixels))] if tiled else [(273, 0), (279, len(pixels))]
    listed = [(*entry, LONG)[:3] for entry in entries + common + place]
    data_at = 8 + 2 + 12 * len(listed) + 4
    ifd = b"".join(struct.pack("<HHI", tag, kind, 1)
                   + struct.pack({SHORT: "<Hxx", SSHORT: "<hxx", LONG: "<I", SLONG: "<i"}[kind],
                                 data_at if tag in (273, 324) else value)
                   for tag, value, kind in listed)
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(listed)) + ifd + b"\x00" * 4 + pixels


def tiff_twice(side: int, width: int | None = None, height: int = 0) -> bytes:
    """A TIFF that names its size twice: width x height first, whose pixels (zeros) it holds, which libtiff reads
    (it ignores a repeated tag), then 64x64, which Pillow reads (the last one wins there)."""
    width, height = width or side, height or side
    return tiff([(256, width), (257, height), (256, 64), (257, 64), (278, height)], _deflated_zeros(width * height))


@functools.lru_cache(maxsize=2)
def tiff_signed_size(side: int = 14_000, small: int = 100) -> bytes:
    """A TIFF whose first width and height are SSHORT side x side, which libtiff decodes, followed by LONG
    copies saying small x small, which a reader of unsigned size types alone takes for its size."""
    return tiff([(256, side, SSHORT), (257, side, SSHORT), (256, small), (257, small), (278, side)],
                _deflated_zeros(side * side))


def tiff_huge_tile(side: int = 16_000) -> bytes:
    """A 64x64 TIFF made of one side x side tile: libtiff allocates the tile, whatever the image's size."""
    return tiff([(256, 64), (257, 64), (322, side), (323, side)], _deflated_zeros(side * side))


def jpeg_scans(scans: int = 20_000, side: int = 6000) -> bytes:
    """A progressive side x side JPEG followed by `scans` empty scans: libjpeg decodes every one."""
    ok, encoded = cv2.imencode(".jpg", np.full((side, side), 128, np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok
    data = encoded.tobytes()
    last = data.rfind(b"\xff\xda")
    (length,) = struct.unpack(">H", data[last + 2:last + 4])
    return data[:-2] + data[last:last + 2 + length] * scans + data[-2:]


def rgba_png(width: int, height: int, depth: int) -> bytes:
    """A transparent RGBA PNG of width x height at this bit depth, a few hundred kB at 40 megapixels."""
    squeeze, row = zlib.compressobj(9), b"\x00" * (1 + width * 4 * depth // 8)
    pixels = b"".join(squeeze.compress(row * 100) for _ in range(height // 100)) + squeeze.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, 6, 0, 0, 0))
            + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))


def _photo(height: int = 96, width: int = 128) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 2 % 256, y * 2 % 256, (x + y) % 256], axis=-1).astype(np.uint8)


def _encoded(ext: str) -> bytes:
    return cv2.imencode(ext, _photo())[1].tobytes()


def _bit_flips(name: str, data: bytes, count: int, seed: int) -> list[tuple[str, bytes, tuple]]:
    """`count` copies of data, each with 8 random bits flipped past the format's magic."""
    rng = np.random.default_rng(seed)
    flipped = []
    for index in range(count):
        damaged = bytearray(data)
        for position in rng.integers(8, len(data), 8):
            damaged[position] ^= 1 << int(rng.integers(0, 8))
        flipped.append((f"{name}_flip{index}", bytes(damaged), DAMAGED + ("ok",)))
    return flipped


def _absurd_pngs() -> list[tuple[str, bytes, tuple]]:
    def declaring(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
        header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                + chunk(b"IEND", b""))

    return [("png_2e31_square", declaring(2**31 - 1, 2**31 - 1), ("too_large", "corrupt")),
            ("png_one_by_billion", declaring(1, 10**9), ("too_large", "corrupt")),
            ("png_zero_by_zero", declaring(0, 0), ("corrupt",)),
            ("png_depth_99", declaring(64, 64, depth=99), ("corrupt",))]


def _decoder_lies() -> list[tuple[str, bytes, tuple]]:
    """Files whose header says one thing to a header reader and another to the decoder, or costs the decoder
    far more than their pixels."""
    return [("tiff_size_twice_8000", tiff_twice(8000), ("too_large", "corrupt")),
            ("tiff_size_twice_2000000x1", tiff_twice(0, 2_000_000, 1), ("too_large", "corrupt")),
            ("tiff_huge_tile", tiff_huge_tile(), ("too_large",)),
            ("tiff_signed_size", tiff_signed_size(), ("too_large",)),
            ("jpeg_20000_scans", jpeg_scans(), ("too_many_scans", "too_large"))]


def _tiff_lies() -> list[tuple[str, bytes, tuple]]:
    """TIFFs whose size fields disagree with each other or with the data: every size type, signed ones negative,
    duplicated tags in either order, strips and tiles larger than the image, a second page, BigTIFF."""
    small = _deflated_zeros(64 * 64)
    lies = [
        ("tiff_sshort_negative", tiff([(256, -64, SSHORT), (257, -64, SSHORT)], small), ("corrupt", "too_large")),
        ("tiff_slong_negative", tiff([(256, -1, SLONG), (257, 64)], small), ("corrupt", "too_large")),
        ("tiff_slong_huge", tiff([(256, 2**31 - 1, SLONG), (257, 2**31 - 1, SLONG), (256, 64), (257, 64)], small),
         ("corrupt", "too_large")),
        ("tiff_short_then_long", tiff([(256, 64, SHORT), (257, 64, SHORT), (256, 30_000), (257, 30_000)], small),
         ("corrupt", "too_large")),
        ("tiff_width_only_twice", tiff([(256, 64), (257, 64), (256, 64, SSHORT)], small), ("ok", "corrupt")),
        ("tiff_strip_rows_huge", tiff([(256, 64), (257, 64), (278, 2**32 - 1)], small), ("ok", "corrupt")),
        ("tiff_strip_bytes_huge", tiff([(256, 64), (257, 64)], small).replace(
            struct.pack("<HHII", 279, LONG, 1, len(small)), struct.pack("<HHII", 279, LONG, 1, 2**31 - 1)),
         ("ok", "corrupt")),
        ("tiff_tile_beyond_image", tiff([(256, 64), (257, 64), (322, 4096), (323, 4096)], _deflated_zeros(4096**2)),
         ("ok", "corrupt", "too_large")),
    ]
    one = tiff([(256, 64), (257, 64)], small)
    (count,) = struct.unpack("<H", one[8:10])
    next_at = 8 + 2 + 12 * count  # the first page's link to a second one: a 30000x30000 page after it
    second = tiff([(256, 30_000), (257, 30_000)], small)
    linked = one[:next_at] + struct.pack("<I", len(one)) + one[next_at + 4:]
    lies.append(("tiff_second_page_huge", linked + second[8:], ("ok", "corrupt")))
    lies.append(("bigtiff", b"II+\x00\x08\x00\x00\x00" + struct.pack("<Q", 16) + one[8:], ("not_an_image", "corrupt")))
    return lies


def _jpeg_dnl(height: int) -> bytes:
    """A baseline JPEG whose frame header gives `height` rows (0: "see the DNL marker"), followed after its scan
    by a DNL marker saying 60000 rows."""
    data = bytearray(_encoded(".jpg"))
    frame = data.find(b"\xff\xc0")
    data[frame + 5:frame + 7] = struct.pack(">H", height)
    end = data.rfind(b"\xff\xd9")
    return bytes(data[:end]) + b"\xff\xdc\x00\x04" + struct.pack(">H", 60_000) + b"\xff\xd9"


def _apng(frame_side: int) -> bytes:
    """A 128x96 PNG declaring itself animated, with a first frame (fcTL) of frame_side x frame_side."""
    png = _encoded(".png")
    actl = chunk(b"acTL", struct.pack(">II", 1, 0))
    fctl = chunk(b"fcTL", struct.pack(">IIIIIHHBB", 0, frame_side, frame_side, 0, 0, 1, 1, 0, 0))
    return png[:33] + actl + fctl + png[33:]


def _webp_canvas(width: int, height: int) -> bytes:
    """The 128x96 lossy WebP inside a VP8X container whose canvas says width x height."""
    frame = _encoded(".webp")[12:]  # the VP8 chunk
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + frame
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _bmp_height(height: int, width: int | None = None) -> bytes:
    data = bytearray(_encoded(".bmp"))
    data[18:26] = struct.pack("<ii", width or 128, height)
    return bytes(data)


def header_lies() -> list[tuple[str, bytes, tuple]]:
    """Headers that contradict themselves or the data, one lie each, in every format the decoders read."""
    return [
        *_tiff_lies(),
        ("jpeg_dnl_height_zero", _jpeg_dnl(0), ("corrupt", "too_large")),
        ("jpeg_dnl_after_height", _jpeg_dnl(96), ("ok", "corrupt")),
        ("apng_frame_larger", _apng(30_000), ("ok", "corrupt", "too_large")),
        ("apng_frame_smaller", _apng(16), ("ok", "corrupt")),
        ("webp_canvas_larger", _webp_canvas(16_000, 16_000), ("corrupt", "too_large")),
        ("webp_canvas_smaller", _webp_canvas(16, 16), ("corrupt", "ok", "too_small")),
        ("bmp_top_down", _bmp_height(-96), ("ok",)),
        ("bmp_height_most_negative", _bmp_height(-2**31), ("corrupt", "too_large", "truncated")),
        ("bmp_width_negative", _bmp_height(96, -128), ("corrupt", "truncated")),
    ]


@functools.lru_cache(maxsize=1)
def corpus() -> list[tuple[str, bytes, tuple]]:
    """(name, bytes, allowed reasons) of every hostile file; 'ok' among the reasons means it may also decode."""
    jpeg, png, webp = _encoded(".jpg"), _encoded(".png"), _encoded(".webp")
    bmp_huge = bytearray(_encoded(".bmp"))
    bmp_huge[18:26] = struct.pack("<ii", 100_000, 100_000)  # a BMP whose header claims 10^10 pixels
    entries = [
        ("crc_bomb", crc_bomb(), ("too_large", "corrupt")),
        ("bmp_huge", bytes(bmp_huge), ("too_large", "corrupt", "truncated")),
        ("png_magic_then_text", b"\x89PNG\r\n\x1a\n" + b"not a png at all" * 4 + b"IEND\xaeB`\x82", ("corrupt",)),
        ("jpeg_magic_then_zeros", b"\xff\xd8\xff" + b"\x00" * 500 + b"\xff\xda\xff\xd9", ("corrupt",)),
        ("gif_magic_only", b"GIF89a", ("corrupt", "truncated")),
        ("riff_not_webp", b"RIFF\x10\x00\x00\x00WEBX" + b"\x00" * 32, ("not_an_image",)),
        ("text", b"<html>not a photo</html>", ("not_an_image",)),
        ("empty", b"", ("empty_file",)),
        ("jpeg_half", jpeg[: len(jpeg) // 2], ("truncated",)),
        ("png_half", png[: len(png) // 2], ("truncated",)),
        ("webp_half", webp[: len(webp) // 2], ("truncated", "corrupt")),
        *_absurd_pngs(),
        *_decoder_lies(),
        *header_lies(),
        *_bit_flips("jpeg", jpeg, 6, 1),
        *_bit_flips("png", png, 6, 2),
    ]
    return entries


def good_photo(ext: str = ".png") -> bytes:
    """A small colourful photo every door accepts."""
    return _encoded(ext)
