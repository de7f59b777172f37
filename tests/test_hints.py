"""Colour hints: simulated hints reveal the truth, a person's hints land where they point, parsing and errors."""

import json

import numpy as np
import pytest
import tensorflow as tf

from pipeline.errors import UsageError
from trainer.applying import hint_input, photos

from trainer.network import hints
from trainer.applying.inference import Hint

RNG = np.random.default_rng(5)
AB = tf.constant(RNG.uniform(-0.5, 0.5, (4, 40, 40, 2)), tf.float32)


def test_no_hints_reveal_nothing():
    planes = hints.reveal(AB, tf.zeros([4], tf.int32), tf.constant([1, 2], tf.int64))
    assert not np.any(planes.numpy())


def test_revealed_patches_hold_the_mean_true_colour_of_their_patch():
    counts = tf.constant([1, 3, 0, 32])
    planes = hints.reveal(AB, counts, tf.constant([3, 4], tf.int64)).numpy()
    mask = planes[..., 2]
    assert mask[2].sum() == 0 and mask[0].sum() >= 1 and mask[3].sum() > mask[0].sum()
    single = np.argwhere(mask[0] > 0)  # one patch: a square, its colour the truth's mean over it
    top, left = single.min(axis=0)
    bottom, right = single.max(axis=0) + 1
    assert bottom - top <= 2 * hints.MAX_HALF_SIZE + 1
    expected = AB.numpy()[0, top:bottom, left:right].mean(axis=(0, 1))
    np.testing.assert_allclose(planes[0, top, left, :2], expected, atol=1e-5)
    np.testing.assert_allclose(planes[0, top:bottom, left:right, :2], np.broadcast_to(expected, (
        bottom - top, right - left, 2)), atol=1e-5)


def test_training_counts_include_photos_without_hints_and_stay_below_the_cap():
    counts = hints.Simulated().counts(4000, tf.constant([9, 9], tf.int64)).numpy()
    assert 0.2 < np.mean(counts == 0) < 0.3  # NO_HINTS_SHARE
    assert counts.max() <= hints.MAX_POINTS and np.mean(counts[counts > 0]) > 4


@pytest.mark.parametrize("p", [0.5, 0.125, 0.05])
def test_training_counts_follow_the_geometric_distribution_asked_for(p):
    counts = hints.Simulated(geometric_p=p).counts(20000, tf.constant([3, 4], tf.int64)).numpy()
    given = counts[counts > 0] - 1  # 1 + geometric(p), failures before the first success
    capped = np.minimum(np.random.default_rng(0).geometric(p, 200000) - 1, hints.MAX_POINTS - 1)
    assert abs(np.mean(given) - np.mean(capped)) < 0.05 * np.mean(capped) + 0.05
    assert abs(np.mean(given == 0) - p) < 0.02  # P(no extra point) = p


def test_larger_simulated_patches_reveal_more_of_the_photo():
    ab = tf.random.stateless_uniform((8, 64, 64, 2), (1, 2), -1.0, 1.0)
    counts, seed = tf.fill([8], 6), tf.constant([5, 6], tf.int64)
    small = hints.reveal(ab, counts, seed, max_half=0)[..., 2].numpy()
    large = hints.reveal(ab, counts, seed, max_half=7)[..., 2].numpy()
    assert np.all(small.sum(axis=(1, 2)) <= 6) and large.sum() > 10 * small.sum()


def test_simulated_hints_are_a_function_of_the_seed():
    seed = tf.constant([7, 8], tf.int64)
    counts = tf.constant([5, 5, 5, 5])
    np.testing.assert_array_equal(hints.reveal(AB, counts, seed), hints.reveal(AB, counts, seed))


@pytest.mark.parametrize("height, width", [(200, 200), (768, 1024), (1500, 333)])
def test_a_persons_hint_lands_at_the_scaled_point_with_the_colours_chroma(height, width):
    xy = np.array([[[width * 0.75, height * 0.25]]], np.float32)
    planes = hints.user_planes(xy, np.array([[[220, 30, 40]]], np.uint8), height, width, 64, 64).numpy()[0]
    marked = np.argwhere(planes[..., 2] > 0)
    centre = marked.mean(axis=0)
    np.testing.assert_allclose(centre, [16, 48], atol=1.0)
    assert len(marked) == (2 * hints.USER_HALF_SIZE + 1) ** 2
    a, b = planes[16, 48, :2] * 128
    assert a > 40 and b > 20  # red: strongly positive a, positive b
    assert not np.any(planes[..., :2][planes[..., 2] == 0])


def test_hint_arguments_parse():
    assert hint_input.parse_hint("120,45,#d02030") == Hint(120.0, 45.0, (0xD0, 0x20, 0x30))
    assert hint_input.parse_colour("00ff7F") == (0, 255, 127)


@pytest.mark.parametrize("text, message", [
    ("120,45", "expected X,Y,#RRGGBB"), ("a,45,#d02030", "must be numbers"), ("1,2,#d0203", "#RRGGBB"),
    ("1,2,red", "#RRGGBB")])
def test_malformed_hints_are_named(text, message):
    with pytest.raises(UsageError, match=message):
        hint_input.parse_hint(text)


def _found():
    return [photos.Photo("/in/roses/a.jpg", "roses/a.jpg"), photos.Photo("/in/tulips/b.png", "tulips/b.png")]


def test_hints_file_keys_match_relative_paths_or_file_names(tmp_path):
    path = tmp_path / "hints.json"
    path.write_text(json.dumps({"roses/a.jpg": [{"x": 1, "y": 2, "color": "#ff0000"}],
                                "b.png": [{"x": 3, "y": 4, "color": "#00ff00"}]}))
    assigned = hint_input.assign(_found(), [], hint_input.read_hints_file(str(path)))
    assert assigned == {"/in/roses/a.jpg": [Hint(1, 2, (255, 0, 0))], "/in/tulips/b.png": [Hint(3, 4, (0, 255, 0))]}


def test_hints_file_errors_are_named(tmp_path):
    path = tmp_path / "hints.json"
    path.write_text(json.dumps({"nothing.jpg": [{"x": 1, "y": 2, "color": "#ff0000"}]}))
    with pytest.raises(UsageError, match="'nothing.jpg' matches no photo"):
        hint_input.assign(_found(), [], hint_input.read_hints_file(str(path)))
    path.write_text(json.dumps({"a.jpg": [{"x": 1, "color": "#ff0000"}]}))
    with pytest.raises(UsageError, match="'a.jpg': each hint needs x, y and color"):
        hint_input.read_hints_file(str(path))
    path.write_text("{not json")
    with pytest.raises(UsageError, match="--hints"):
        hint_input.read_hints_file(str(path))


def test_single_hints_need_exactly_one_photo_and_must_lie_inside_it():
    with pytest.raises(UsageError, match="one photo"):
        hint_input.assign(_found(), [Hint(1, 1, (0, 0, 0))], {})
    with pytest.raises(UsageError, match=r"outside /in/roses/a.jpg \(100x50\)"):
        hint_input.check_inside(_found()[0], [Hint(100, 10, (0, 0, 0))], 50, 100)
