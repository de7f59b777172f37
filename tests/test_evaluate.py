"""Evaluation on photos and on records: numbers equal an independent computation; JSON and table agree."""

import copy
import json
import re
import shutil
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pipeline import dataset
from pipeline.preparation import Preparation
from trainer.evaluation import photo_sets, report_files, scoring, sheets
from trainer.evaluation import run as evaluation
from trainer.evaluation.evaluator import Evaluator
from trainer.network import model_file, models

from tests.conftest import REPO, run_module

SIZE = 32


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    keras.utils.set_random_seed(2)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    models.lowres_unet(SIZE).save(path)
    return path


@pytest.fixture(scope="module")
def photo_dir(made_photos, tmp_path_factory):
    """Three made photos (JPEGs) each of two classes, and a file that is not a photo."""
    folder = tmp_path_factory.mktemp("photos")
    for label in ("cornflower", "marigold"):
        (folder / label).mkdir()
        for path in sorted((made_photos / "garden" / label).glob("*.jpg"))[:3]:
            shutil.copyfile(path, folder / label / path.name)
    (folder / "cornflower" / "notes.txt").write_text("not a photo")
    return folder


def _reference(path, net):
    """Independently: OpenCV prepares the photo, NumPy / scikit-image score it."""
    small = cv2.resize(cv2.imread(str(path)), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    lab8 = cv2.cvtColor(small, cv2.COLOR_BGR2LAB)
    lightness = lab8[..., :1].astype(np.float32) / 255.0
    ab = (lab8[..., 1:].astype(np.float32) - 128.0) / 128.0
    predicted = net(lightness[None]).numpy()[0]

    def rgb(ab_values):
        lab = np.concatenate([lightness * 100.0, ab_values * 128.0], axis=-1)
        return np.round(np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), 0, 1) * 255)

    scores = {}
    for name, candidate in (("model", predicted), ("gray", np.zeros_like(ab))):
        truth, guess = rgb(ab), rgb(candidate)
        scores[name] = {
            "rgb_psnr": min(peak_signal_noise_ratio(truth, guess, data_range=255), 50.0),
            "rgb_ssim": structural_similarity(truth, guess, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                              use_sample_covariance=False, data_range=255),
            "ab_psnr": peak_signal_noise_ratio(ab + 1, candidate + 1, data_range=1.0),
        }
    return scores


@pytest.fixture(scope="module")
def report(model_path, photo_dir, tmp_path_factory):
    output = tmp_path_factory.mktemp("report")
    request = evaluation.Request(str(model_path), str(output), evaluation.Source(images=(str(photo_dir),)),
                                 batch_size=4, sheet_photos=2)
    summary = evaluation.run(request)
    return output, summary


def test_numbers_equal_an_independent_computation(report, model_path, photo_dir):
    _, summary = report
    net = keras.models.load_model(model_path)
    for label in ("cornflower", "marigold"):
        references = [_reference(p, net) for p in sorted((photo_dir / label).glob("*.jpg"))]
        group = summary["per_class"][label]
        assert group["count"] == 3
        for who in ("model", "gray"):
            for name, tolerance in (("rgb_psnr", 0.3), ("rgb_ssim", 0.01), ("ab_psnr", 0.05)):
                expected = np.mean([r[who][name] for r in references])
                assert group[who][name] == pytest.approx(expected, abs=tolerance), (label, who, name)


def test_the_table_says_what_the_json_says(report):
    output, _ = report
    summary = json.loads((output / "metrics.json").read_text())
    rows = [line for line in (output / "metrics.md").read_text().splitlines() if line.startswith("| ")][1:]
    assert [row.split("|")[1].strip() for row in rows] == ["cornflower", "marigold", "all"]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        group = summary["overall"] if cells[0] == "all" else summary["per_class"][cells[0]]
        model_psnr, gray_psnr = (float(x) for x in cells[2].split(" / "))
        assert model_psnr == pytest.approx(group["model"]["rgb_psnr"], abs=1e-4)
        assert gray_psnr == pytest.approx(group["gray"]["rgb_psnr"], abs=1e-4)
        assert int(cells[1]) == (summary["count"] if cells[0] == "all" else group["count"])


def test_unreadable_files_are_listed_and_the_sheet_shows_best_and_worst(report):
    output, summary = report
    assert [(f["path"].rsplit("/", 1)[-1], f["reason"]) for f in summary["failures"]] == [
        ("notes.txt", "not_an_image")]
    sheet = cv2.imread(str(output / "contact_sheet.png"))
    assert sheet.shape == (sheets.BAND + 4 * (sheets.BAND + SIZE), 3 * SIZE, 3)


def test_the_table_says_why_gray_wins_on_ab_ssim_when_it_does(report):
    _, summary = report

    def with_ab_ssim(offset: float) -> dict:
        changed = copy.deepcopy(summary)
        for group in [changed["overall"], *changed["per_class"].values()]:
            group["model"]["ab_ssim"] = group["gray"]["ab_ssim"] + offset
        return changed

    assert report_files.AB_SSIM_NOTE in report_files.markdown(with_ab_ssim(-0.01))
    assert report_files.AB_SSIM_NOTE not in report_files.markdown(with_ab_ssim(+0.01))


def test_the_sheet_photos_are_copies_not_views_of_their_batch(model_path, photo_dir):
    net, prep = model_file.load(str(model_path))
    _, extremes = scoring.score(Evaluator(net), photo_sets.photo_batches([str(photo_dir)], prep, 4, []), 2)
    kept = [plane for _, planes in extremes.ranked() for plane in planes]
    assert len(kept) == 12 and all(plane.base is None and plane.flags.owndata for plane in kept)


def test_the_sheet_captions_name_each_photo_class_and_file(model_path, photo_dir):
    net, prep = model_file.load(str(model_path))
    _, extremes = scoring.score(Evaluator(net), photo_sets.photo_batches([str(photo_dir)], prep, 4, []), 2)
    captions = [caption for caption, _ in extremes.ranked()]
    assert [caption.split(",")[0] for caption in captions] == ["best", "best", "worst", "worst"]
    named = {f"{path.parent.name} ({path.name})" for path in photo_dir.glob("*/*.jpg")}
    assert all(caption.split(": ", 1)[1] in named for caption in captions), captions


def test_the_sheet_captions_of_records_name_the_class(model_path, tiny_records):
    net, prep = model_file.load(str(model_path))
    records = dataset.Records.open(str(tiny_records), "val")
    _, extremes = scoring.score(Evaluator(net), photo_sets.record_batches(records, 4, prep), 1)
    labels = json.loads((tiny_records / "manifest.json").read_text())["splits"]["val"]["by_label"]
    assert all(caption.split(": ", 1)[1] in labels for caption, _ in extremes.ranked())


def test_records_are_evaluated_per_class(model_path, tiny_records, tmp_path):
    done = run_module("trainer.evaluate", f"--model={model_path}", f"--data_dir={tiny_records}", "--split=val",
                      f"--output={tmp_path}")
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "metrics.json").read_text())
    manifest = json.loads((tiny_records / "manifest.json").read_text())
    assert summary["count"] == manifest["splits"]["val"]["examples"]
    assert {k: v["count"] for k, v in summary["per_class"].items()} == manifest["splits"]["val"]["by_label"]
    assert re.search(r"\| all \| \d+ \|", done.stdout)


def test_held_out_classes_are_scored_apart_from_every_split(model_path, tiny_records, tmp_path):
    manifest = json.loads((tiny_records / "manifest.json").read_text())
    label = sorted(manifest["splits"]["train"]["by_label"])[0]
    photos = sum(entry["by_label"].get(label, 0) for entry in manifest["splits"].values())
    held_out = run_module("trainer.evaluate", f"--model={model_path}", f"--data_dir={tiny_records}",
                          "--split=held_out", f"--holdout_labels={label}", f"--output={tmp_path / 'held_out'}")
    seen = run_module("trainer.evaluate", f"--model={model_path}", f"--data_dir={tiny_records}", "--split=val",
                      f"--holdout_labels={label}", f"--output={tmp_path / 'seen'}")
    assert held_out.returncode == 0 and seen.returncode == 0, held_out.stderr[-2000:] + seen.stderr[-2000:]
    held_out_summary = json.loads((tmp_path / "held_out" / "metrics.json").read_text())
    seen_summary = json.loads((tmp_path / "seen" / "metrics.json").read_text())
    assert {k: v["count"] for k, v in held_out_summary["per_class"].items()} == {label: photos}
    assert label not in seen_summary["per_class"]
    assert seen_summary["count"] == manifest["splits"]["val"]["examples"] - manifest["splits"]["val"]["by_label"].get(
        label, 0)
    worst = min(seen_summary["per_class"], key=lambda k: seen_summary["per_class"][k]["model"]["rgb_psnr"]
                - seen_summary["per_class"][k]["gray"]["rgb_psnr"])
    assert f"Worst class: {worst}," in seen.stdout


def test_held_out_split_needs_a_holdout(model_path, tiny_records, tmp_path):
    done = run_module("trainer.evaluate", f"--model={model_path}", f"--data_dir={tiny_records}",
                      "--split=held_out", f"--output={tmp_path}")
    assert done.returncode == 2 and "--split=held_out needs --holdout_labels" in done.stderr


def test_records_prepared_otherwise_than_the_models_are_refused(tmp_path, tiny_records):
    path = tmp_path / "crop.keras"
    model_file.save(models.lowres_unet(SIZE), str(path), Preparation(SIZE, "crop"))
    done = run_module("trainer.evaluate", f"--model={path}", f"--data_dir={tiny_records}", f"--output={tmp_path}")
    assert done.returncode == 2
    assert f"holds {SIZE}x{SIZE} stretch photos, the model was trained on {SIZE}x{SIZE} crop ones" in done.stderr


def test_a_missing_model_is_refused(tmp_path):
    done = run_module("trainer.evaluate", f"--model={tmp_path}", "--images=.", f"--output={tmp_path}")
    assert done.returncode == 2 and "--model: no model at" in done.stderr


# Scores five photos on one device and on a CPU split into two logical devices under MirroredStrategy
# (a batch that does not divide by the replicas, XLA on); prints the largest difference and the photo counts.
_ON_TWO_DEVICES = """
import numpy as np, tensorflow as tf, keras
from trainer.training import distribute, losses
distribute.split_cpu(2)
from trainer.evaluation.evaluator import Evaluator
from trainer.network import models
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
lightness = rng.uniform(0, 1, (5, 32, 32, 1)).astype(np.float32)
ab = rng.uniform(-0.3, 0.3, (5, 32, 32, 2)).astype(np.float32)
net = models.lowres_unet(32)
one = Evaluator(net, loss_fn=losses.mae).scores(lightness, ab)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    copy = models.lowres_unet(32)
copy.set_weights(net.get_weights())
two = Evaluator(copy, loss_fn=losses.mae, strategy=strategy, jit_compile=True).scores(lightness, ab)
difference = max(float(np.max(np.abs(a - b))) for a, b in zip(tf.nest.flatten(one), tf.nest.flatten(two)))
print(difference, len(one["predicted"]), len(two["predicted"]), len(two["model"]["rgb_psnr"]))
"""


def test_two_replicas_score_every_photo_in_order_as_one_device_does():
    done = subprocess.run([sys.executable, "-c", _ON_TWO_DEVICES], capture_output=True, text=True, cwd=REPO,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    difference, *counts = done.stdout.split()
    assert counts == ["5", "5", "5"] and float(difference) < 1e-3
