"""Decoding every common still-image format to 8-bit RGB, and naming what is wrong with the rest."""

import io
import subprocess
import sys
import time
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline import images
from pipeline.preparation import Preparation

from tests import fuzz_corpus
from tests.conftest import REPO, png_declaring

CORPUS = fuzz_corpus.corpus()


def _encode(image: np.ndarray, ext: str, *params) -> bytes:
    ok, buffer = cv2.imencode(ext, image, list(params))
    assert ok
    return buffer.tobytes()


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    """A small colourful test card: gradients in every channel, not square."""
    y, x = np.mgrid[0:48, 0:64]
    return np.stack([x * 4, y * 5, 255 - x * 2], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("ext,params", [
    (".png", ()), (".bmp", ()), (".tiff", ()), (".webp", (cv2.IMWRITE_WEBP_QUALITY, 101)),
])
def test_lossless_formats_decode_to_the_same_rgb(rgb, ext, params):
    data = _encode(rgb[..., ::-1], ext, *params)
    np.testing.assert_array_equal(images.decode_rgb(data), rgb)


def test_jpeg_decodes_like_opencv(rgb):
    data = _encode(rgb[..., ::-1], ".jpg", cv2.IMWRITE_JPEG_QUALITY, 95)
    expected = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    np.testing.assert_array_equal(images.decode_rgb(data), expected)


def test_gray_becomes_three_equal_channels(rgb):
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    decoded = images.decode_rgb(_encode(gray, ".png"))
    assert decoded.shape == (*gray.shape, 3)
    for channel in range(3):
        np.testing.assert_array_equal(decoded[..., channel], gray)


def test_sixteen_bit_is_scaled_to_eight(rgb):
    deep = rgb[..., ::-1].astype(np.uint16) * 257
    np.testing.assert_array_equal(images.decode_rgb(_encode(deep, ".png")), rgb)


def test_transparent_pixels_are_laid_on_white(rgb):
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[:, 32:] = 255
    decoded = images.decode_rgb(_encode(np.dstack([rgb[..., ::-1], alpha]), ".png"))
    np.testing.assert_array_equal(decoded[:, :32], 255)
    np.testing.assert_array_equal(decoded[:, 32:], rgb[:, 32:])


def test_cmyk_jpeg_decodes_to_its_colours(rgb):
    buffer = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(buffer, "JPEG", quality=95)
    decoded = images.decode_rgb(buffer.getvalue())
    reference = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    assert decoded.shape == rgb.shape
    assert np.abs(decoded.astype(int) - reference.astype(int)).mean() < 3


def test_exif_orientation_is_applied(rgb):
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; display rotated 90 degrees clockwise
    Image.fromarray(rgb).save(buffer, "JPEG", quality=95, exif=exif)
    decoded = images.decode_rgb(buffer.getvalue())
    assert decoded.shape == (64, 48, 3)
    upright = np.rot90(rgb, k=-1)
    assert np.abs(decoded.astype(int) - upright.astype(int)).mean() < 4


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_transparent_photo_is_turned_as_an_opaque_one_is(rgb, fmt, orientation):
    """OpenCV turns photos by their EXIF orientation when it decodes colour, not always when it keeps alpha."""
    def saved(image: Image.Image) -> bytes:
        buffer, exif = io.BytesIO(), Image.Exif()
        exif[0x0112] = orientation
        image.save(buffer, fmt, exif=exif)
        return buffer.getvalue()

    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[0, 0, 3] = 0  # one transparent pixel: the photo goes through the alpha path
    opaque, transparent = images.decode_rgb(saved(Image.fromarray(rgb))), images.decode_rgb(saved(Image.fromarray(rgba)))
    assert transparent.shape == opaque.shape
    assert np.abs(transparent.astype(int) - opaque.astype(int)).mean() < 1
    if orientation in (5, 6, 7, 8):
        assert opaque.shape == (64, 48, 3)


def test_a_png_pillow_cannot_read_is_measured_from_its_own_header_and_refused_before_decoding():
    """The CRC bomb: 20000x20000 gray pixels behind a damaged text chunk, which Pillow refuses to parse."""
    bomb = fuzz_corpus.crc_bomb()
    with pytest.raises(Exception):
        Image.open(io.BytesIO(bomb)).size  # noqa: B018  Pillow cannot tell its size
    start = time.perf_counter()
    with pytest.raises(images.ImageError) as raised:
        Preparation().decode(bomb)
    assert raised.value.reason == "too_large" and "20000x20000" in raised.value.detail
    assert time.perf_counter() - start < 1.0  # decoding it takes seconds and 1.2 GB: it never starts


def test_a_file_whose_size_no_header_gives_is_refused_as_corrupt_without_decoding():
    fake = b"\xff\xd8\xff" + b"\x00" * 500 + b"\xff\xda\xff\xd9"  # JPEG magic, then nothing Pillow can parse
    with pytest.raises(images.ImageError) as raised:
        images.decode_rgb(fake)
    assert raised.value.reason == "corrupt" and "how many pixels" in raised.value.detail


@pytest.mark.parametrize("name,data,allowed", CORPUS, ids=[entry[0] for entry in CORPUS])
def test_every_hostile_file_is_refused_with_a_reason_or_decoded_within_the_limit(name, data, allowed):
    try:
        decoded = Preparation(min_side=8).decode(data, max_pixels=1_000_000)
    except images.ImageError as error:
        assert error.reason in allowed, (name, error)
        return
    assert "ok" in allowed and decoded.shape[0] * decoded.shape[1] <= 1_000_000, name


@pytest.mark.parametrize("make,reason", [
    (lambda jpeg, png: b"", "empty_file"),
    (lambda jpeg, png: b"these are my holiday notes\n", "not_an_image"),
    (lambda jpeg, png: jpeg[: len(jpeg) // 2], "truncated"),
    (lambda jpeg, png: png[: len(png) - 20], "truncated"),
    (lambda jpeg, png: jpeg[:200] + b"\x00" * 400 + b"\xff\xda" + b"\x00" * 50 + b"\xff\xd9", "corrupt"),
])
def test_unusable_files_are_named_by_reason(rgb, make, reason):
    jpeg = _encode(rgb[..., ::-1], ".jpg")
    png = _encode(rgb[..., ::-1], ".png")
    with pytest.raises(images.ImageError) as raised:
        images.decode_rgb(make(jpeg, png))
    assert raised.value.reason == reason


def test_a_png_with_bytes_after_its_end_decodes_as_browsers_show_it(rgb):
    """Some tools append data after IEND (browsers and libpng ignore it); a PNG cut inside IEND is truncated."""
    png = _encode(rgb[..., ::-1], ".png")
    np.testing.assert_array_equal(images.decode_rgb(png + b"appended by a tool, not part of the image " * 20), rgb)
    with pytest.raises(images.ImageError) as raised:
        images.decode_rgb(png[:-2])
    assert raised.value.reason == "truncated"


def test_too_small_is_refused():
    one_pixel = _encode(np.full((1, 1, 3), 200, np.uint8), ".png")
    with pytest.raises(images.ImageError) as raised:
        Preparation(min_side=32).decode(one_pixel)
    assert raised.value.reason == "too_small"
    assert "1x1" in raised.value.detail


def test_a_huge_declared_size_is_refused_from_the_header_before_decoding():
    data = png_declaring(20000, 20000)
    assert len(data) < 200
    start = time.perf_counter()
    with pytest.raises(images.ImageError) as raised:
        Preparation().decode(data)
    # Decoding would fail as corrupt (its pixel data is 64 bytes) after allocating 1.2 GB: it never starts.
    assert raised.value.reason == "too_large" and "20000x20000" in raised.value.detail
    assert time.perf_counter() - start < 1.0


def test_the_pixel_limit_can_be_raised_and_lowered(rgb):
    data = _encode(rgb[..., ::-1], ".jpg")
    with pytest.raises(images.ImageError) as raised:
        images.decode_rgb(data, max_pixels=64 * 48 - 1)
    assert raised.value.reason == "too_large" and "64x48" in raised.value.detail
    assert images.decode_rgb(data, max_pixels=64 * 48).shape == (48, 64, 3)
    huge = png_declaring(12000, 12000)
    with pytest.raises(images.ImageError) as raised:
        images.decode_rgb(huge, max_pixels=12000 * 12000)
    assert raised.value.reason == "corrupt"  # allowed through the limit, so OpenCV tried (and refused) it


def test_a_limit_above_the_decoders_own_is_held_to_it():
    with pytest.raises(images.ImageError) as raised:
        images.decode_rgb(png_declaring(20000, 20000), max_pixels=20000 * 20000)
    assert raised.value.reason == "too_large" and "the decoder's own" in raised.value.detail


def test_opencv_has_the_decoders_limit_in_a_process_that_decodes_through_this_module():
    """OpenCV reads OPENCV_IO_MAX_IMAGE_PIXELS when it is loaded: a fresh process that imports the page's module
    (which imports cv2 before anything of pipeline's) and asks OpenCV itself for more pixels than that is
    refused by OpenCV's own check."""
    script = ("from trainer.applying import web_app\nimport numpy, cv2\nfrom tests.conftest import png_declaring\n"
              "try:\n    cv2.imdecode(numpy.frombuffer(png_declaring(15000, 15000), numpy.uint8), 1)\n"
              "except cv2.error as error:\n    print(error)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pixels <= CV_IO_MAX_IMAGE_PIXELS" in done.stdout, done.stdout + done.stderr[-2000:]


def test_a_tiff_naming_two_sizes_is_refused_by_the_larger_or_as_corrupt():
    """libtiff reads the first size, Pillow the last (64x64): every one is checked, and they must agree."""
    with pytest.raises(images.ImageError) as raised:
        images.decode_rgb(fuzz_corpus.tiff_twice(8000))
    assert raised.value.reason == "too_large" and "8000x8000" in raised.value.detail
    with pytest.raises(images.ImageError) as raised:
        images.decode_rgb(fuzz_corpus.tiff_twice(1000))
    assert raised.value.reason == "corrupt" and "1000x1000, 64x64" in raised.value.detail
    with pytest.raises(images.ImageError) as raised:
        images.decode_rgb(fuzz_corpus.tiff_twice(0, 2_000_000, 1))
    assert raised.value.reason == "too_large" and "2000000x1" in raised.value.detail


def test_a_tiff_is_refused_by_the_size_of_its_tiles():
    with pytest.raises(images.ImageError) as raised:
        images.decode_rgb(fuzz_corpus.tiff_huge_tile(16_000))
    assert raised.value.reason == "too_large" and "a tile of 16000x16000" in raised.value.detail
    small = fuzz_corpus.tiff([(256, 64), (257, 48), (322, 64), (323, 48)], zlib.compress(bytes(64 * 48)))
    assert images.decode_rgb(small).shape == (48, 64, 3)  # the helper makes TIFFs libtiff decodes


def test_a_progressive_jpeg_is_refused_by_its_number_of_scans():
    with pytest.raises(images.ImageError) as raised:
        images.decode_rgb(fuzz_corpus.jpeg_scans(2000, side=64))
    assert raised.value.reason == "too_many_scans" and "2006 scans" in raised.value.detail
    assert images.decode_rgb(fuzz_corpus.jpeg_scans(0, side=64)).shape == (64, 64, 3)


def test_decoding_memory_is_counted_by_channels_and_bit_depth(rgb):
    def cost(data: bytes) -> int:
        return images.decode_bytes(images.inspect(data))

    rgba8, rgba16 = fuzz_corpus.rgba_png(2000, 1000, 8), fuzz_corpus.rgba_png(2000, 1000, 16)
    rgb8 = _encode(cv2.resize(rgb, (2000, 1000)), ".png")
    assert cost(rgb8) < cost(rgba8) < cost(rgba16)
    assert cost(rgba16) - cost(rgba8) == 2000 * 1000 * 4  # four more bytes a pixel at 16 bits


def test_colorize_reports_a_dangling_link_and_a_huge_photo_with_their_reasons(rgb, tmp_path):
    from trainer.applying import photos

    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "good.png").write_bytes(_encode(rgb[..., ::-1], ".png"))
    (folder / "huge.png").write_bytes(png_declaring(20000, 20000))
    (folder / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    found = {p.relative: p for p in photos.find([str(folder)])}
    assert sorted(found) == ["gone.jpg", "good.png", "huge.png"]
    prep = Preparation(min_side=8)
    assert photos.read_rgb(found["good.png"], prep).shape == (48, 64, 3)
    assert photos.read_rgb(found["gone.jpg"], prep).reason == "unreadable"
    assert photos.read_rgb(found["huge.png"], prep).reason == "too_large"
    assert photos.read_rgb(found["good.png"], prep, max_pixels=100).reason == "too_large"
    assert photos.read_rgb(found["good.png"], Preparation(min_side=49)).reason == "too_small"
