"""The one preparation rule: views, windows, blending, its limits, and its TensorFlow twin agreeing with it."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from pipeline import preparation, preparation_tf
from pipeline.preparation import Preparation


def _disc(height: int, width: int) -> np.ndarray:
    """A red disc of radius a third of the shorter side, centred on white: round in the photo."""
    rgb = np.full((height, width, 3), 255, np.uint8)
    cv2.circle(rgb, (width // 2, height // 2), min(height, width) // 3, (220, 30, 40), -1)
    return rgb


def _disc_aspect(square: np.ndarray) -> float:
    """Width over height of the red region."""
    rows, columns = np.nonzero(square[..., 1] < 128)
    return (np.ptp(columns) + 1) / (np.ptp(rows) + 1)


def test_crop_keeps_the_aspect_ratio_and_stretch_squeezes_it():
    wide = _disc(300, 600)
    assert _disc_aspect(Preparation(64, "crop").square(wide)) == pytest.approx(1.0, abs=0.1)
    assert _disc_aspect(Preparation(64, "stretch").square(wide)) == pytest.approx(0.5, abs=0.1)


@pytest.mark.parametrize("height, width", [(300, 600), (517, 333), (200, 200), (40, 90)])
def test_views_have_the_square_size_on_their_shorter_side_and_windows_cover_them(height, width):
    prep = Preparation(64, "crop", min_side=8)
    view_height, view_width = prep.view_shape(height, width)
    assert min(view_height, view_width) == 64
    assert view_width / view_height == pytest.approx(width / height, rel=0.03)
    covered = np.zeros((view_height, view_width), int)
    for top, left in prep.windows(view_height, view_width):
        covered[top:top + 64, left:left + 64] += 1
    assert covered.min() >= 1 and covered.shape == (view_height, view_width)
    assert Preparation(64, "stretch").view_shape(height, width) == (64, 64)


def test_windows_overlap_by_at_least_half_and_stay_inside():
    for length in range(64, 400, 7):
        offsets = preparation.window_offsets(length, 64)
        assert offsets[0] == 0 and offsets[-1] == length - 64
        assert all(0 < b - a <= 32 for a, b in zip(offsets, offsets[1:]))


def test_the_record_square_is_the_central_window_of_the_view():
    rgb = np.random.default_rng(0).integers(0, 256, (300, 700, 3), np.uint8)
    prep = Preparation(50, "crop")
    view = prep.view(rgb)
    left = (view.shape[1] - 50) // 2
    np.testing.assert_array_equal(prep.square(rgb), view[:, left:left + 50])


def test_blending_windows_of_a_smooth_prediction_gives_it_back():
    prep = Preparation(32, "crop")
    truth = np.linspace(-1, 1, 32 * 90, dtype=np.float32).reshape(32, 90, 1).repeat(2, axis=-1)
    pieces = np.stack(preparation.cut(prep, truth))
    assert len(pieces) > 2
    np.testing.assert_allclose(preparation.blend(prep, pieces, 32, 90), truth, atol=1e-6)


def test_a_preparation_survives_json_and_refuses_nonsense():
    prep = Preparation(128, "crop", 16, 1000, 3)
    assert Preparation.from_json(prep.to_json()) == prep
    with pytest.raises(ValueError, match="squash"):
        Preparation(resize="squash")


@pytest.mark.parametrize("height, width", [(517, 333), (90, 150), (20, 300)])
@pytest.mark.parametrize("resize", ["stretch", "crop"])
def test_the_tensorflow_twin_prepares_photos_as_opencv_does(height, width, resize):
    """Shrinking and enlarging, both modes: the same view shape, pixels within a few levels, the same windows."""
    rng = np.random.default_rng(height)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), np.uint8), (0, 0), 3)
    prep = Preparation(64, resize, min_side=8)
    expected = prep.view(rgb)
    view_height, view_width = (int(v) for v in preparation_tf.view_shape(prep, tf.constant(height),
                                                                             tf.constant(width)))
    assert (view_height, view_width) == expected.shape[:2]
    got = preparation_tf.resize(tf.constant(rgb[None], tf.float32), view_height, view_width)[0].numpy()
    difference = np.abs(got - expected)
    assert difference.mean() < 0.5 and difference.max() <= 3
    for length in (view_height, view_width):
        assert preparation_tf.window_offsets(tf.constant(length), 64).numpy().tolist() == (
            preparation.window_offsets(length, 64))


def test_the_tensorflow_twin_blends_windows_as_numpy_does():
    prep = Preparation(32, "crop")
    planes = np.random.default_rng(3).random((1, 32, 100, 1)).astype(np.float32)

    def predict(windows):
        """Any function of a window's content and position in it will do."""
        return tf.concat([windows * 2.0, tf.cumsum(windows, axis=2)], axis=-1)

    pieces = predict(tf.constant(np.stack(preparation.cut(prep, planes[0])))).numpy()
    expected = preparation.blend(prep, pieces, 32, 100)
    got = preparation_tf.in_windows(prep, predict, tf.constant(planes))[0].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
