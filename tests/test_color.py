"""The OpenCV side (Beam job) and the TensorFlow side (model, metrics) share one Lab convention."""

import cv2
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_io as tfio

from pipeline import color, color_tf
from pipeline.preparation import Preparation

from tests.conftest import colourful_photos, psnr


@pytest.fixture(scope="module", params=["made", "real"])
def photos(request, made_photos) -> np.ndarray:
    """20 flower photos at 200x200, uint8 RGB: made ones (two classes), and real ones (../shared/data)."""
    if request.param == "made":
        paths = colourful_photos(made_photos / "garden" / "cornflower", 10)
        paths += colourful_photos(made_photos / "garden" / "marigold", 10)
    else:
        shared_data = request.getfixturevalue("shared_data")
        paths = colourful_photos(shared_data / "flowers" / "rose", 10)
        paths += colourful_photos(shared_data / "flowers" / "sunflower", 10)
    return np.stack([Preparation().square(Preparation().decode(p.read_bytes())) for p in paths])


def test_opencv_float_lab_agrees_with_tensorflow_io(photos):
    ours = np.stack([cv2.cvtColor(p.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB) for p in photos])
    theirs = tfio.experimental.color.rgb_to_lab(photos.astype(np.float32) / 255.0).numpy()
    difference = np.abs(ours - theirs).reshape(-1, 3).max(axis=0)
    assert difference[0] < 0.5 and difference[1] < 1.0 and difference[2] < 1.0, difference


def test_stored_lab8_decodes_to_the_photo_on_the_tensorflow_side(photos):
    lab8 = np.stack([color.rgb_to_lab8(p) for p in photos])
    rgb = color_tf.to_rgb(color_tf.l8_to_input(lab8[..., :1]), color_tf.ab8_to_target(lab8[..., 1:]))
    decoded = np.round(rgb.numpy() * 255.0).astype(np.uint8)
    assert psnr(decoded, photos) > 45.0


def test_stored_lab8_decodes_to_the_photo_on_the_opencv_side(photos):
    decoded = np.stack([color.lab8_to_rgb(color.rgb_to_lab8(p)) for p in photos])
    assert psnr(decoded, photos) > 45.0


def test_tensorflow_side_round_trips(photos):
    rgb = tf.constant(photos[:4], tf.float32) / 255.0
    back = color_tf.to_rgb(*color_tf.to_lab(rgb))
    assert float(tf.reduce_max(tf.abs(back - rgb))) < 1e-3


def test_gray_photo_has_no_chroma(photos):
    gray = np.repeat(cv2.cvtColor(photos[0], cv2.COLOR_RGB2GRAY)[..., None], 3, axis=-1)
    assert color.max_chroma(color.rgb_to_lab8(gray)) == 0
    assert color.max_chroma(color.rgb_to_lab8(photos[0])) > 10
