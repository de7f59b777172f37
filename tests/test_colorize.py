"""Colourizing photos of any size: size and lightness kept, gray and colour in, failures reported."""

import cv2
import keras
import numpy as np
import pytest

from pipeline.errors import UsageError
from pipeline.preparation import Preparation
from trainer.applying import inference, serving
from trainer.evaluation import sheets
from trainer.network import model_file, models

from tests.conftest import draw_photo, run_module, write_image


def _exported(folder, prep: Preparation):
    """An untrained (seeded) network as .keras and as a SavedModel: the plumbing does not care how good it is."""
    keras.utils.set_random_seed(1)
    net = models.lowres_unet(prep.size)
    model_file.save(net, str(folder / "model.keras"), prep)
    serving.export(net, str(folder / "saved_model"), prep)
    return folder / "model.keras", folder / "saved_model"


@pytest.fixture(scope="module")
def model_paths(tmp_path_factory):
    return _exported(tmp_path_factory.mktemp("model"), Preparation(size=32, min_side=8))


@pytest.fixture(scope="module")
def crop_model_paths(tmp_path_factory):
    """A model that says it was trained on crop records: it colourizes aspect-kept windows."""
    return _exported(tmp_path_factory.mktemp("crop_model"), Preparation(size=32, resize="crop", min_side=8))


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    """Odd sizes of a drawn flower photo, a gray photo, a one-pixel image and a corrupt file, in nested folders."""
    folder = tmp_path_factory.mktemp("photos")
    source = draw_photo("poppy", 0, 240, 320)
    write_image(folder / "odd" / "tall.png", cv2.resize(source, (333, 517), interpolation=cv2.INTER_AREA))
    write_image(folder / "big.jpg", cv2.resize(source, (2000, 1500)), cv2.IMWRITE_JPEG_QUALITY, 95)
    write_image(folder / "odd" / "gray.png", cv2.cvtColor(cv2.resize(source, (150, 90)), cv2.COLOR_BGR2GRAY))
    write_image(folder / "dot.png", source[:1, :1])
    (folder / "odd" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def _lightness(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2LAB)[..., 0].astype(np.int16)


def test_every_photo_keeps_its_size_name_and_lightness(model_paths, photo_dir, tmp_path):
    written, failures = inference.run([str(photo_dir)], str(tmp_path), str(model_paths[0]), batch_size=3)
    assert written == 3
    for name in ("odd/tall.png", "big.jpg", "odd/gray.png"):
        source = cv2.imread(str(photo_dir / name), cv2.IMREAD_COLOR)
        result = cv2.imread(str(tmp_path / name), cv2.IMREAD_COLOR)
        assert result.shape == source.shape, name
        difference = np.abs(_lightness(result) - _lightness(source))
        # Out-of-gamut colours move L a little when clipped to RGB, and JPEG moves it a little more.
        assert difference.mean() < 1.5 and np.percentile(difference, 99) <= 6, name
    assert np.abs(cv2.imread(str(tmp_path / "odd/gray.png")).astype(int).std(axis=-1)).mean() > 0.5


def test_failures_are_reported_with_reasons_and_the_rest_written(model_paths, photo_dir, tmp_path):
    written, failures = inference.run([str(photo_dir)], str(tmp_path), str(model_paths[0]), batch_size=16)
    reasons = {f.path.rsplit("/", 1)[-1]: f.reason for f in failures}
    assert reasons == {"dot.png": "too_small", "broken.jpg": "truncated"}
    assert written == 3 and not (tmp_path / "dot.png").exists()


def test_command_exit_code_says_whether_anything_failed(model_paths, photo_dir, tmp_path):
    done = run_module("trainer.colorize", str(photo_dir / "odd" / "*.png"), f"--output={tmp_path / 'a'}",
                      f"--model={model_paths[0]}")
    assert done.returncode == 0 and "2 photos colourized" in done.stdout
    assert f"colourizing 2 files with {model_paths[0]}\n" in done.stdout  # which model, first
    assert (tmp_path / "a" / "tall.png").exists() and (tmp_path / "a" / "gray.png").exists()
    done = run_module("trainer.colorize", str(photo_dir), f"--output={tmp_path / 'b'}", f"--model={model_paths[0]}")
    assert done.returncode == 1
    assert "broken.jpg: truncated" in done.stdout and "dot.png: too_small" in done.stdout


def test_inputs_are_never_overwritten(model_paths, photo_dir):
    before = {p: p.read_bytes() for p in photo_dir.rglob("*") if p.is_file()}
    with pytest.raises(UsageError, match="would overwrite input photos"):
        inference.run([str(photo_dir)], str(photo_dir), str(model_paths[0]), batch_size=4)
    assert {p: p.read_bytes() for p in photo_dir.rglob("*") if p.is_file()} == before


def test_compare_sheets_show_the_original_only_for_colour_photos(model_paths, photo_dir, tmp_path):
    inference.run([str(photo_dir / "odd")], str(tmp_path), str(model_paths[0]), batch_size=4, compare=True)
    assert cv2.imread(str(tmp_path / "compare" / "tall.jpg")).shape == (sheets.BAND + 517, 3 * 333, 3)
    assert cv2.imread(str(tmp_path / "compare" / "gray.jpg")).shape == (sheets.BAND + 90, 2 * 150, 3)


@pytest.mark.parametrize("paths", ["model_paths", "crop_model_paths"])
def test_saved_model_and_keras_model_give_the_same_colours(paths, photo_dir, tmp_path, request):
    keras_path, saved_model = request.getfixturevalue(paths)
    inference.run([str(photo_dir / "odd")], str(tmp_path / "k"), str(keras_path), batch_size=4)
    inference.run([str(photo_dir / "odd")], str(tmp_path / "s"), str(saved_model), batch_size=4)
    for name in ("tall.png", "gray.png"):
        a = cv2.imread(str(tmp_path / "k" / name)).astype(int)
        b = cv2.imread(str(tmp_path / "s" / name)).astype(int)
        difference = np.abs(a - b)  # OpenCV's 8-bit Lab on one side, TensorFlow's float Lab on the other
        assert difference.mean() < 1 and np.percentile(difference, 99) <= 2, name


def test_missing_model_is_a_usage_error(photo_dir, tmp_path):
    with pytest.raises(UsageError, match="--model: no model at"):
        inference.run([str(photo_dir)], str(tmp_path), str(tmp_path / "nothing"), batch_size=4)


def test_the_shipped_model_works_without_a_model_flag(photo_dir, tmp_path, capsys):
    written, failures = inference.run([str(photo_dir / "odd" / "tall.png")], str(tmp_path), None, batch_size=1)
    assert written == 1 and not failures
    assert "default_model/model.keras (the model shipped with the project" in capsys.readouterr().out
    result = cv2.imread(str(tmp_path / "tall.png"))
    assert result.shape == (517, 333, 3)
    assert np.abs(result.astype(int) - result.mean(axis=-1, keepdims=True)).mean() > 1  # it added colour


def _window_mean_painter(size: int) -> keras.Model:
    """ab = mean L of the window it is shown, minus one half: the colour tells which window the network saw."""
    inputs = keras.Input((size, size, 1))
    mean = keras.layers.GlobalAveragePooling2D(keepdims=True)(inputs)
    shifted = keras.layers.Rescaling(1.0, offset=-0.5)(keras.layers.UpSampling2D(size)(mean))
    return keras.Model(inputs, keras.layers.Concatenate()([shifted, shifted]))


@pytest.mark.parametrize("resize", ["stretch", "crop"])
def test_a_crop_trained_model_sees_the_photo_in_windows_at_its_training_scale(resize, tmp_path):
    """A wide gray photo, dark on the left and light on the right: stretched, the network sees all of it at once
    (one mean, one colour); crop-trained, it sees square windows of it (a colour per side)."""
    path = tmp_path / f"{resize}.keras"
    model_file.save(_window_mean_painter(32), str(path), Preparation(size=32, resize=resize, min_side=8))
    photo = np.full((64, 256), 60, np.uint8)
    photo[:, 128:] = 190
    write_image(tmp_path / "in" / "wide.png", photo)
    inference.run([str(tmp_path / "in")], str(tmp_path / resize), str(path), batch_size=1)
    a = cv2.cvtColor(cv2.imread(str(tmp_path / resize / "wide.png")), cv2.COLOR_BGR2LAB)[..., 1].astype(float) - 128
    left, right = a[:, :48].mean(), a[:, -48:].mean()
    if resize == "stretch":
        assert abs(right - left) < 4
    else:
        assert left < 0 < right and right - left > 15
