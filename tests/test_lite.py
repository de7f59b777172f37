"""The shipped model exported to TensorFlow Lite, checked through the user's own paths on real photos.

`python -m trainer.export` writes the files; `python -m trainer.colorize --model FILE.tflite` colourizes
with them through the interpreter; the Keras model's output is the reference (RGB PSNR, 8-bit).
"""

import os

import cv2
import numpy as np
import pytest

from pipeline.errors import UsageError
from trainer import default_model
from trainer.applying import inference, lite, lite_export
from trainer.network import model_file

from tests.conftest import colourful_photos, psnr, run_module, write_image

# Least RGB PSNR (dB) to the Keras model's output, per --quantize: dynamic-range weights are kept only while they
# hold 30 dB (measured in docs/benchmarks.md).
LEAST_PSNR = {"none": 40.0, "float16": 35.0, "dynamic": 30.0}
HINT_RGB = (40, 90, 230)  # a saturated blue no flower photo here is near


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, str]:
    """The shipped model as a TensorFlow Lite file per --quantize, written by the export command."""
    folder = tmp_path_factory.mktemp("lite")
    files = {}
    for quantize in LEAST_PSNR:
        files[quantize] = str(folder / f"colorizer_{quantize}.tflite")
        done = run_module("trainer.export", "--format=tflite", f"--output={files[quantize]}",
                          f"--quantize={quantize}")
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip().endswith(f"exported as tflite to {files[quantize]}")
    return files


@pytest.fixture(scope="module")
def real_photos(shared_data) -> list[str]:
    """One real photo of each flower class, read in place."""
    return [str(colourful_photos(folder, 1)[0]) for folder in sorted((shared_data / "flowers").iterdir())]


def _colorize(photos: list[str], output, *flags: str) -> dict[str, np.ndarray]:
    done = run_module("trainer.colorize", *photos, f"--output={output}", *flags)
    assert done.returncode == 0, done.stderr[-2000:]
    return {os.path.basename(p): cv2.imread(str(output / os.path.basename(p))) for p in photos}


def test_the_exported_files_colour_real_photos_as_the_keras_model_does(exported, real_photos, tmp_path):
    reference = _colorize(real_photos, tmp_path / "keras")
    for quantize, least in LEAST_PSNR.items():
        colourized = _colorize(real_photos, tmp_path / quantize, f"--model={exported[quantize]}")
        worst = min(psnr(reference[name], colourized[name]) for name in reference)
        assert worst >= least, (quantize, worst)


def test_the_file_carries_the_models_preparation_and_names_its_tensors(exported):
    with open(exported["none"], "rb") as handle:
        carried = lite.preparation(handle.read(), exported["none"])
    _, prep = model_file.load(default_model.PATH)
    assert carried == prep
    network = lite.LiteNetwork(exported["none"])
    inputs, outputs = network._run.get_input_details(), network._run.get_output_details()
    assert {name: tuple(detail["shape"]) for name, detail in inputs.items()} == {
        lite.LIGHTNESS: (1, prep.size, prep.size, 1), lite.HINTS: (1, prep.size, prep.size, 3)}
    assert {name: tuple(detail["shape"]) for name, detail in outputs.items()} == {
        lite.OUTPUT: (1, prep.size, prep.size, 2)}


def _ab_near(rgb: np.ndarray, point, radius: int = 12) -> np.ndarray:
    x, y = point
    lab = cv2.cvtColor(rgb[y - radius:y + radius, x - radius:x + radius], cv2.COLOR_RGB2LAB).astype(np.float32)
    return lab[..., 1:].reshape(-1, 2).mean(axis=0) - 128


def test_a_hint_pulls_the_colour_in_the_exported_model_as_in_the_keras_one(exported, real_photos, tmp_path):
    path = write_image(tmp_path / "photo.png", cv2.resize(cv2.imread(real_photos[0]), (640, 480)))
    rgb, point = cv2.imread(str(path))[..., ::-1].copy(), (320, 240)
    target = cv2.cvtColor(np.uint8([[HINT_RGB]]), cv2.COLOR_RGB2LAB)[0, 0, 1:].astype(np.float32) - 128
    given = [[inference.Hint(*point, HINT_RGB)]]
    hinted = {}
    for name, model in (("keras", None), ("lite", exported["none"])):
        colourizer = inference.load(model)
        automatic, hinted[name] = colourizer([rgb])[0], colourizer([rgb], given)[0]
        before = np.linalg.norm(_ab_near(automatic, point) - target)
        after = np.linalg.norm(_ab_near(hinted[name], point) - target)
        assert after < 0.7 * before, (name, before, after)
    assert psnr(hinted["keras"], hinted["lite"]) >= LEAST_PSNR["none"]


def test_suggestions_and_decoding_flags_need_the_keras_model_in_one_line(exported, real_photos, tmp_path):
    for flags in (["--suggest=10,10"], [f"--output={tmp_path}", "--temperature=0.5"]):
        done = run_module("trainer.colorize", real_photos[0], f"--model={exported['none']}", *flags)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-2000:]


def test_a_file_without_the_preparation_is_refused(exported, tmp_path):
    """A file converted elsewhere carries no preparation, so how to see a photo is unknown."""
    bare = tmp_path / "bare.tflite"
    with open(exported["dynamic"], "rb") as source, open(bare, "wb") as target:
        data = bytearray(source.read())
        target.write(data.replace(lite.METADATA_NAME.encode(), b"x" * len(lite.METADATA_NAME)))
    with pytest.raises(UsageError, match=f"carries no {lite.METADATA_NAME}"):
        inference.load(str(bare))


def _abort() -> None:
    os.write(2, b"LLVM ERROR: Failed to infer result type(s).\n")
    os.abort()


def test_a_converter_that_aborts_ends_its_child_only_and_says_why_in_one_line():
    with pytest.raises(UsageError) as raised:
        lite_export.in_child(_abort)
    message = str(raised.value)
    assert "\n" not in message and "signal 6" in message and "LLVM ERROR: Failed to infer" in message, message
