"""The shipped model: a hint-aware colour classifier whose hints, temperature and SavedModel behave as promised."""

import json

import cv2
import keras
import numpy as np
import pytest

from trainer.network import colour_classes, hints, model_file

from trainer import default_model

from trainer.applying import inference, serving

from tests.conftest import colourful_photos, run_module, write_image

HINT_RGB = (40, 90, 230)  # a saturated blue no flower photo here is near


@pytest.fixture(scope="module")
def photo(shared_data, tmp_path_factory) -> tuple:
    """A real daisy photo enlarged to 640x480, and a point on it."""
    source = cv2.imread(str(colourful_photos(shared_data / "flowers" / "daisy", 1)[0]))
    path = write_image(tmp_path_factory.mktemp("photo") / "daisy.png", cv2.resize(source, (640, 480)))
    return path, (320, 240)


def _ab_near(rgb: np.ndarray, point, radius: int = 12) -> np.ndarray:
    x, y = point
    lab = cv2.cvtColor(rgb[y - radius:y + radius, x - radius:x + radius], cv2.COLOR_RGB2LAB).astype(np.float32)
    return lab[..., 1:].reshape(-1, 2).mean(axis=0) - 128


def _hint_ab() -> np.ndarray:
    return cv2.cvtColor(np.uint8([[HINT_RGB]]), cv2.COLOR_RGB2LAB)[0, 0, 1:].astype(np.float32) - 128


def test_the_shipped_model_is_a_hint_aware_colour_classifier_that_loads_with_keras_alone():
    net = keras.models.load_model(default_model.PATH, compile=False)
    assert hints.is_hint_aware(net) and colour_classes.is_classifier(net)


def test_a_hint_given_on_the_command_line_pulls_the_colour_there_towards_it(photo, tmp_path):
    path, point = photo
    done = run_module("trainer.colorize", str(path), f"--output={tmp_path / 'hinted'}",
                      "--hint={},{},#{:02x}{:02x}{:02x}".format(*point, *HINT_RGB))
    assert done.returncode == 0, done.stderr[-2000:]
    automatic = inference.load(None)([cv2.imread(str(path))[..., ::-1].copy()])[0]
    hinted = cv2.imread(str(tmp_path / "hinted" / "daisy.png"))[..., ::-1]
    target = _hint_ab()
    before = np.linalg.norm(_ab_near(automatic, point) - target)
    after = np.linalg.norm(_ab_near(hinted, point) - target)
    assert after < 0.7 * before, (before, after)


def test_more_vividness_gives_more_colour(photo):
    rgb = cv2.imread(str(photo[0]))[..., ::-1].copy()

    def chroma(vividness):
        out = inference.load(None, vividness=vividness)([rgb])[0]
        lab = cv2.cvtColor(out, cv2.COLOR_RGB2LAB).astype(np.float32)
        return np.hypot(lab[..., 1] - 128, lab[..., 2] - 128).mean()

    assert chroma(1.0) > 1.3 * chroma(0.0)


def test_the_saved_model_agrees_with_the_keras_model_with_hints(photo, tmp_path):
    net = keras.models.load_model(default_model.PATH, compile=False)
    serving.export(net, str(tmp_path / "saved_model"), model_file.preparation(default_model.PATH, net))
    rgb = cv2.imread(str(photo[0]))[..., ::-1].copy()
    given = [[inference.Hint(*photo[1], HINT_RGB)]]
    keras_out = inference.load(None)([rgb], given)[0].astype(int)
    saved_out = inference.load(str(tmp_path / "saved_model"))([rgb], given)[0].astype(int)
    difference = np.abs(keras_out - saved_out)  # OpenCV's 8-bit Lab on one side, TensorFlow's float Lab on the other
    assert difference.mean() < 1.5 and np.percentile(difference, 99) <= 4


def test_ten_hints_given_through_the_command_on_full_size_photos_gain_two_db(shared_data, tmp_path):
    """Ten hints of the true colour (the 5x5 mean at random points, as a colour picker gives it), in a hints file,
    on full-size originals of the test split and of the two species the shipped model never saw."""
    from benchmarks import full_size

    chosen = full_size.test_photos(shared_data, 8) + full_size.held_out_photos(shared_data, 4)
    folder, hinted = tmp_path / "photos", {}
    folder.mkdir()
    for index, photo in enumerate(chosen):
        name = f"{photo.label}-{photo.path.name}"
        (folder / name).symlink_to(photo.path)
        hinted[name] = [{"x": x, "y": y, "color": "#{:02x}{:02x}{:02x}".format(*rgb)}
                        for x, y, rgb in full_size.random_points(photo.read(), 10, seed=index)]
    (tmp_path / "hints.json").write_text(json.dumps(hinted))
    for output, extra in (("plain", []), ("hinted", [f"--hints={tmp_path / 'hints.json'}"])):
        done = run_module("trainer.colorize", str(folder), f"--output={tmp_path / output}", *extra)
        assert done.returncode == 0, done.stderr[-2000:]

    def psnr(output):
        return np.mean([full_size.scores(photo.read(), cv2.imread(str(tmp_path / output / name))[..., ::-1].copy())
                        ["rgb_psnr"] for photo, name in zip(chosen, hinted)])

    assert psnr("hinted") - psnr("plain") >= 2.0
