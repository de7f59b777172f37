"""The learning-curve study as a command, at toy budgets on tiny records: it runs, keeps what it measured, extends."""

import csv
import json

import pytest

from tests.conftest import run_module

# A few seconds of training per budget: what these tests check is the study's bookkeeping, not the colour.
QUICK = ["--batch_size=8", "--holdout_labels=poppy", "--warmup_steps=2", "--log_every_steps=5"]


def _study(records, study_dir, budgets: str, recipes: str):
    done = run_module("trainer.study", "--study=curve", f"--data_dir={records}", f"--study_dir={study_dir}",
                      f"--budgets_minutes={budgets}", f"--recipes={recipes}", *QUICK)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def _rows(study_dir) -> list[dict]:
    with open(study_dir / "results.csv") as handle:
        return list(csv.DictReader(handle))


def _stable_step(study_dir, recipe: str) -> int:
    state = json.loads((study_dir / recipe / "stable" / "backup" / "training_metadata.json").read_text())
    return state["step"]


@pytest.fixture(scope="module")
def curve(tiny_records, tmp_path_factory):
    study_dir = tmp_path_factory.mktemp("curve")
    stdout = _study(tiny_records, study_dir, "0.04", "windows,views")
    return study_dir, stdout


def test_a_curve_writes_a_row_per_recipe_and_budget_with_its_metrics(curve):
    study_dir, _ = curve
    rows = _rows(study_dir)
    assert [(r["recipe"], r["budget_minutes"]) for r in rows] == [("views", "0.04"), ("windows", "0.04")]
    for row in rows:
        for column in ("minutes", "cpu_minutes", "seen_psnr_over_gray", "seen_colourfulness_ratio",
                       "neutral_false_colour", "unseen_psnr_over_gray", "unseen_colourfulness_ratio", "hint_gain_10",
                       "suggestion_top3"):
            assert row[column] != "", column
        assert 0 <= float(row["suggestion_top3"]) <= 1 and float(row["minutes"]) >= 0.04
    assert "| windows |" in (study_dir / "results.md").read_text()
    assert (study_dir / "results.png").stat().st_size > 0


def test_each_budget_is_a_cooldown_branched_off_a_paused_stable_run(curve):
    study_dir, stdout = curve
    assert "Paused after step" in stdout
    for recipe in ("windows", "views"):
        assert not (study_dir / recipe / "stable" / "metrics.json").exists()  # paused, not finished
        config = json.loads((study_dir / recipe / "cooldown-0.04" / "run_config.json").read_text())
        assert config["init_checkpoint"].endswith(f"{recipe}/stable") and config["lr_schedule"] == "wsd"
    views = json.loads((study_dir / "views" / "cooldown-0.04" / "run_config.json").read_text())
    stable = json.loads((study_dir / "views" / "stable" / "run_config.json").read_text())
    assert (stable["view_size"], stable["train_crop"]) == (16, 0)  # small whole views of the 32-pixel records ...
    assert (views["view_size"], views["train_crop"]) == (0, 24)  # ... and the cool-down at the photos' own scale


def test_a_longer_list_keeps_the_rows_and_continues_the_stable_run(curve, tiny_records):
    study_dir, _ = curve
    first = _rows(study_dir)
    step = _stable_step(study_dir, "windows")
    stdout = _study(tiny_records, study_dir, "0.04,0.3", "windows")
    assert "[windows] 0.04 minutes: measured earlier, kept" in stdout
    rows = _rows(study_dir)
    assert rows[0] == next(r for r in first if r["recipe"] == "windows")
    assert [r["budget_minutes"] for r in rows] == ["0.04", "0.3"]
    assert _stable_step(study_dir, "windows") > step  # trained on from where it paused, not from the start
    assert int(rows[1]["steps"]) > int(rows[0]["steps"])


def test_bad_curve_requests_are_named(tiny_records, tmp_path):
    for flags, message in ((["--budgets_minutes=4,2"], "--budgets_minutes must increase: 4,2"),
                           (["--recipes=bigger"], "--recipes: unknown bigger")):
        done = run_module("trainer.study", "--study=curve", *flags, f"--data_dir={tiny_records}",
                          f"--study_dir={tmp_path}")
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
        assert message in done.stderr
