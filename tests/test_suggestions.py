"""Suggested colours: the distinct modes of a classifier's colour distribution at a point, through the colorize
command, the Keras path and the exported SavedModel."""

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline import ab_bins, color
from pipeline.preparation import Preparation
from trainer.applying import inference, serving
from trainer.network import colour_classes, model_file, models, suggestions

from tests.conftest import run_module, write_image

YELLOW, BLUE, GRAY = (0, 70), (10, -50), (0, 0)  # ab, Lab units: the painter's three bins
SIZE = 32


def grid_index(a: float, b: float) -> int:
    return int(np.rint((a - ab_bins.AXIS[0]) / ab_bins.STEP) * ab_bins.SIDE + np.rint((b - ab_bins.AXIS[0])
                                                                                      / ab_bins.STEP))


def lightness_painter() -> keras.Model:
    """A classifier over three bins whose choice follows lightness: yellow where the photo is bright, blue where
    it is dark, all three equally likely at mid-gray. Its suggestions are known at every point."""
    counts = np.zeros(ab_bins.COUNT)
    counts[[grid_index(*ab) for ab in (YELLOW, BLUE, GRAY)]] = 1
    bins = colour_classes.ColourBins.from_histogram(counts)
    order = [ab_bins.centres(bins.indices).tolist().index(list(ab)) for ab in (YELLOW, BLUE, GRAY)]
    inputs = keras.Input((SIZE, SIZE, 4))
    quarter = keras.layers.AveragePooling2D(4)(inputs)
    logits = keras.layers.Conv2D(bins.size, 1, name=colour_classes.LOGITS_LAYER)(quarter)
    ab, fixed = colour_classes.decoding_head(logits, bins, 0.5, temperature=1.0, vividness=1.0)
    net = keras.Model(inputs, keras.layers.UpSampling2D(4, interpolation="bilinear")(ab))
    for name, weights in fixed.items():
        net.get_layer(name).set_weights(weights)
    kernel, bias = np.zeros((1, 1, 4, bins.size), np.float32), np.zeros(bins.size, np.float32)
    kernel[0, 0, 0, order[0]], bias[order[0]] = 40.0, -20.0  # yellow: 40 (L - 0.5)
    kernel[0, 0, 0, order[1]], bias[order[1]] = -40.0, 20.0  # blue: -40 (L - 0.5)
    net.get_layer(colour_classes.LOGITS_LAYER).set_weights([kernel, bias])
    return net


@pytest.fixture(scope="module")
def painter(tmp_path_factory):
    """The painter as .keras and as an exported SavedModel, stretching photos to 32x32."""
    folder = tmp_path_factory.mktemp("painter")
    net, prep = lightness_painter(), Preparation(size=SIZE, min_side=8)
    model_file.save(net, str(folder / "painter.keras"), prep)
    serving.export(net, str(folder / "saved_model"), prep)
    return folder / "painter.keras", folder / "saved_model"


def three_bands(width: int = 640, height: int = 480) -> np.ndarray:
    """A gray photo (RGB): bright left third, mid-gray middle, dark right third."""
    rgb = np.empty((height, width, 3), np.uint8)
    for third, level in enumerate((235, 119, 25)):
        rgb[:, third * width // 3:(third + 1) * width // 3] = level
    return rgb


def hue(rgb) -> float:
    lab = cv2.cvtColor(np.asarray(rgb, np.uint8).reshape(1, 1, 3), cv2.COLOR_RGB2LAB)[0, 0].astype(float)
    return float(np.degrees(np.arctan2(lab[2] - 128, lab[1] - 128)))


def lightness(rgb) -> float:
    return float(cv2.cvtColor(np.asarray(rgb, np.uint8).reshape(1, 1, 3), cv2.COLOR_RGB2LAB)[0, 0, 0])


def bumps(*centres_and_masses) -> np.ndarray:
    """A distribution over the whole ab grid (1, COUNT): each bump a mass spread over a bin and its 8 neighbours."""
    grid = np.zeros((ab_bins.SIDE, ab_bins.SIDE), np.float32)
    for (a, b), mass in centres_and_masses:
        index = grid_index(a, b)
        row, column = divmod(index, ab_bins.SIDE)
        spread = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32)
        grid[row - 1:row + 2, column - 1:column + 2] += mass * spread / spread.sum()
    return grid.reshape(1, -1)


def test_neighbouring_bins_of_one_colour_are_one_suggestion_and_the_heavier_colour_comes_first():
    probabilities = bumps(((40, 40), 0.3), ((-30, 60), 0.7))
    ab, probability = suggestions.modes(probabilities, np.arange(ab_bins.COUNT), count=4)
    assert np.allclose(probability[0], [0.7, 0.3, 0, 0], atol=1e-5)
    assert np.allclose(ab[0, :2] * color.AB_SCALE, [(-30, 60), (40, 40)], atol=1e-3)


def test_one_broad_colour_is_one_suggestion_and_no_two_suggestions_are_near():
    probabilities = bumps(((40, 40), 0.5), ((60, 40), 0.45), ((-60, -60), 0.05))
    ab, probability = suggestions.modes(probabilities, np.arange(ab_bins.COUNT))
    assert probability[0, 0] > 0.8 and 40 <= ab[0, 0, 0] * color.AB_SCALE <= 60
    offered = ab[0][probability[0] > 0].numpy() * color.AB_SCALE
    distances = np.linalg.norm(offered[:, None] - offered[None], axis=-1)[np.triu_indices(len(offered), 1)]
    assert distances.min() > suggestions.SEPARATION - ab_bins.STEP  # each colour is its peak's 3x3 mean


def test_colours_outside_srgb_at_a_lightness_keep_their_hue_and_lose_chroma():
    ab = tf.constant([[[-10.0, -100.0], [20.0, 20.0]]]) / color.AB_SCALE  # a deep blue, a mild orange
    bright = suggestions.render(tf.constant([[0.95]]), ab)[0].numpy()
    assert abs(hue(bright[0]) - np.degrees(np.arctan2(-100, -10))) < 6  # still blue, at L 95
    assert abs(lightness(bright[0]) * 100 / 255 - 95) < 2
    mid = suggestions.render(tf.constant([[0.6]]), ab)[0].numpy()
    lab = cv2.cvtColor(mid[1:2].reshape(1, 1, 3), cv2.COLOR_RGB2LAB)[0, 0].astype(float) - [0, 128, 128]
    assert np.allclose(lab[1:], [20, 20], atol=2)  # in gamut: unchanged


def test_points_in_a_full_size_photo_get_the_colours_the_model_predicts_there(painter):
    colourizer = inference.load(str(painter[0]))
    found = colourizer.suggest(three_bands(), [(50, 400), (320, 10), (630, 240)])
    assert found[0][0].probability > 0.99 and len(found[0]) == 1
    assert 80 < hue(found[0][0].rgb) < 100  # the yellow bin: b 70, a 0
    assert abs(lightness(found[0][0].rgb) - lightness([235] * 3)) <= 2  # at the photo's lightness there
    assert len(found[1]) == 3 and all(0.25 < s.probability < 0.42 for s in found[1])  # three distinct colours
    assert found[2][0].probability > 0.99 and -90 < hue(found[2][0].rgb) < -70  # the blue bin: a 10, b -50


def test_a_model_that_regresses_colour_cannot_suggest_and_says_so(tmp_path):
    keras.utils.set_random_seed(1)
    model_file.save(models.lowres_unet(SIZE), str(tmp_path / "regressor.keras"), Preparation(size=SIZE, min_side=8))
    photo = write_image(tmp_path / "bands.png", three_bands()[..., ::-1])
    done = run_module("trainer.colorize", str(photo), "--suggest=5,5", f"--model={tmp_path / 'regressor.keras'}")
    assert done.returncode == 2 and "colour-classification" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_saved_model_suggests_what_the_keras_model_does(painter):
    module = tf.saved_model.load(str(painter[1]))
    assert {"suggest", "suggest_with_hints"} <= set(module.signatures)
    rgb = three_bands(300, 200)
    points = [(10.0, 150.0), (150.0, 100.0), (290.0, 5.0)]
    output = module.signatures["suggest"](images=tf.constant(rgb[None]), points=tf.constant([points]))
    assert output["colors"].shape == (1, 3, suggestions.MAX_SUGGESTIONS, 3)
    expected = inference.load(str(painter[0])).suggest(rgb, points)
    for point_colours, point_probabilities, wanted in zip(output["colors"][0].numpy(),
                                                          output["probabilities"][0].numpy(), expected):
        offered = point_probabilities > 0
        assert offered.sum() == len(wanted)
        assert np.allclose(point_probabilities[offered], [s.probability for s in wanted], atol=1e-4)
        assert np.abs(point_colours[offered].astype(int) - [s.rgb for s in wanted]).max() <= 2


def test_a_wide_photo_seen_in_windows_gets_each_windows_colours(tmp_path):
    """A crop-prepared model sees a wide photo as several windows: each end keeps its own colour."""
    net, prep = lightness_painter(), Preparation(size=SIZE, resize="crop", min_side=8)
    model_file.save(net, str(tmp_path / "crop.keras"), prep)
    rgb = np.concatenate([np.full((100, 200, 3), 235, np.uint8), np.full((100, 200, 3), 25, np.uint8)], axis=1)
    found = inference.load(str(tmp_path / "crop.keras")).suggest(rgb, [(5, 50), (395, 50)])
    assert 80 < hue(found[0][0].rgb) < 100 and -90 < hue(found[1][0].rgb) < -70


def test_suggest_prints_each_points_colours_through_the_command(painter, tmp_path):
    photo = write_image(tmp_path / "bands.png", three_bands()[..., ::-1])
    done = run_module("trainer.colorize", str(photo), "--suggest", "50,400", "--suggest=630,240",
                      f"--model={painter[0]}")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("50,400 #") and lines[1].startswith("630,240 #")
    assert lines[0].endswith("(1.00)") and not list(tmp_path.glob("*/"))  # nothing written without --output


@pytest.mark.parametrize("value, message", [("12", "expected X,Y"), ("a,b", "expected X,Y"),
                                            ("700,10", "is outside")])
def test_a_bad_suggest_value_is_named_in_one_line(painter, tmp_path, value, message):
    photo = write_image(tmp_path / "bands.png", three_bands()[..., ::-1])
    done = run_module("trainer.colorize", str(photo), f"--suggest={value}", f"--model={painter[0]}")
    assert done.returncode == 2 and message in done.stderr and value.split(",")[0] in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_help_lists_suggest():
    done = run_module("trainer.colorize", "--help")
    assert done.returncode == 0 and "--suggest" in done.stdout


def test_the_shipped_model_suggests_a_yellow_on_a_sunflowers_petals(shared_data):
    """A real photo through the real command: a point on the petals has a yellow among its first 3."""
    photo = shared_data / "flowers" / "sunflower" / "1008566138_6927679c8a.jpg"
    done = run_module("trainer.colorize", str(photo), "--suggest=190,65", "--suggest=135,180")  # truth: b 78, 76
    assert done.returncode == 0, done.stderr
    for line in done.stdout.strip().splitlines():
        colours = [word for word in line.split() if word.startswith("#")][:3]
        rgbs = [[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colours]
        labs = [cv2.cvtColor(np.uint8([[rgb]]), cv2.COLOR_RGB2LAB)[0, 0].astype(int) - [0, 128, 128] for rgb in rgbs]
        assert any(b > 30 and abs(a) < b / 2 for _, a, b in labs), line


def test_a_warmed_up_colourizer_suggests_on_every_photo_size_points_and_hints_without_tracing_again(painter):
    """The page's first suggestion on a photo of a new size, or with more hints, must not wait for a new trace."""
    colourizer = inference.load(str(painter[0]), warm=True)
    for width, height, points, given in ((640, 480, [(5.0, 5.0)], []), (333, 517, [(9.0, 3.0), (300.0, 500.0)], []),
                                         (1000, 90, [(900.0, 45.0)], [inference.Hint(10, 10, (200, 40, 40))] * 3)):
        (found, *_) = colourizer.suggest(three_bands(width, height), points, given)
        assert found
    assert colourizer._suggest.experimental_get_tracing_count() == 1
