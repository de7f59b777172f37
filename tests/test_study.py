"""Studies as commands: every file written, finished trials skipped, CV folds partition the data."""

import json

import pytest
import tensorflow as tf

from tests.conftest import run_module, run_preprocess

# Trials as short as a run gets, of the small regression network: what these tests check (files, skipping,
# folds) is the study's, not the network's, and each trial pays its own start-up, tracing and export.
QUICK = ["--epochs=1", "--steps_per_epoch=2", "--batch_size=8", "--log_images_every=0", "--model=lowres_unet",
         "--loss=mae"]


@pytest.fixture(scope="module")
def search(tiny_records, tmp_path_factory):
    study_dir = tmp_path_factory.mktemp("study")
    done = run_module("trainer.study", "--study=hparams", "--trials=2", f"--data_dir={tiny_records}",
                      f"--study_dir={study_dir}", *QUICK)
    assert done.returncode == 0, done.stderr[-3000:]
    return study_dir, done.stdout


def test_a_search_writes_every_file(search):
    study_dir, stdout = search
    for name in ("results.md", "results.csv", "results.png"):
        assert (study_dir / name).stat().st_size > 0, name
    for trial in ("trial-00", "trial-01"):
        assert json.loads((study_dir / trial / "metrics.json").read_text())["epochs_run"] == 1
    table = (study_dir / "results.md").read_text()
    assert "| trial-00 |" in table and "| gray baseline |" in table and "learning_rate" in table
    assert "Best by validation rgb_psnr: trial-0" in stdout


def _hparams_tags(folder):
    tags = set()
    for path in folder.glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            tags |= {v.tag for v in tf.compat.v1.Event.FromString(record.numpy()).summary.value}
    return tags


def test_every_trial_reaches_the_hparams_dashboard(search):
    study_dir, _ = search
    assert "_hparams_/experiment" in _hparams_tags(study_dir)
    for trial in ("trial-00", "trial-01"):
        assert "_hparams_/session_start_info" in _hparams_tags(study_dir / trial / "logs")


def test_a_rerun_trains_nothing(search, tiny_records):
    study_dir, _ = search
    before = {p: p.stat().st_mtime for p in study_dir.glob("trial-*/metrics.json")}
    done = run_module("trainer.study", "--study=hparams", "--trials=2", f"--data_dir={tiny_records}",
                      f"--study_dir={study_dir}", *QUICK)
    assert done.returncode == 0
    assert done.stdout.count("finished earlier: skipped") == 2 and "training with" not in done.stdout
    assert {p: p.stat().st_mtime for p in study_dir.glob("trial-*/metrics.json")} == before


def test_cross_validation_folds_partition_the_training_split(made_photos, tmp_path):
    records = tmp_path / "records"
    run_preprocess(records, f"--input={made_photos}", "--size=16", "--folds=2")
    done = run_module("trainer.study", "--study=cv", f"--data_dir={records}", f"--study_dir={tmp_path / 'cv'}",
                      *QUICK)
    assert done.returncode == 0, done.stderr[-3000:]
    train = json.loads((records / "manifest.json").read_text())["splits"]["train"]["examples"]
    data = [json.loads((tmp_path / "cv" / f"fold-{k}" / "metrics.json").read_text())["data"] for k in (0, 1)]
    assert all(d["train_examples"] + d["val_examples"] == train for d in data)
    assert sum(d["val_examples"] for d in data) == train
    assert "Mean ± standard deviation over 2 folds" in (tmp_path / "cv" / "results.md").read_text()


@pytest.mark.parametrize("flags,message", [
    (["--study=ablation"], "flag --study=ablation: value should be one of"),
    (["--study=hparams", "--trials=0"], "flag --trials=0: 0 is not a positive integer"),
    (["--study=cv", "--folds=9"], "--folds=9, but the records were split into 5 folds"),
    (["--study=losses", "--rank_by=loss"], "--rank_by=loss cannot rank trials trained with different losses"),
])
def test_bad_requests_are_named(tiny_records, tmp_path, flags, message):
    done = run_module("trainer.study", *flags, f"--data_dir={tiny_records}", f"--study_dir={tmp_path}")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert message in done.stderr
