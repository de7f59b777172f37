"""The studies' library: the trials of each study, running them as trainer processes, the results.

The library behind `python -m trainer.study` (see there for what each study compares).
"""

import csv
import dataclasses
import math
import os
import re
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from pipeline import dataset
from pipeline.errors import UsageError
from trainer.evaluation import metrics as quality
from trainer.evaluation import plots, run as evaluation
from trainer.training import losses, run_files
from trainer.training.config import OPTIMIZERS

STUDIES = ("optimizers", "losses", "heads", "hints", "hparams", "cv")
HEAD_TEMPERATURES = (1.0, 0.6, 0.38, 0.2)


@dataclasses.dataclass(frozen=True)
class Plan:
    """One study as the command line asked for it."""

    study: str
    study_dir: str
    data_dir: str
    trainer_flags: dict  # the trainer flags given, handed to every trial
    epochs: int
    batch_size: int
    trials: int = 8
    folds: int | None = None
    search_seed: int = 0
    study_minutes: float | None = None
    rank_by: str = "rgb_psnr"
    command: str = "python -m trainer.study"


# hparams search space, as the original project's: learning rate, batch size, epochs.
LEARNING_RATES = (1e-4, 3e-3)  # log-uniform
BATCH_SIZES = (8, 16, 32)
COLUMNS = ("loss", *quality.SHOWN)


def trials(study: str, epochs: int, count: int, folds: int | None, seed: int) -> list[tuple[str, dict]]:
    """(name, trainer flag overrides) for every trial of a study."""
    if study == "optimizers":
        return [(f"optimizer-{name}", {"optimizer": name}) for name in OPTIMIZERS]
    if study == "losses":
        return [(f"loss-{name}", {"loss": name}) for name in losses.NAMES]
    if study == "heads":
        return [("head-regression", {"loss": "mae"}), ("head-classification", {"loss": "classification"})]
    if study == "hints":
        return [("hints-never", {"train_hints": False}), ("hints-simulated", {"train_hints": True})]
    if study == "cv":
        return [(f"fold-{fold}", {"cv_fold": fold}) for fold in range(folds)]
    rng = np.random.default_rng(seed)
    settings = []
    for index in range(count):
        rate = float(np.exp(rng.uniform(*np.log(LEARNING_RATES))))
        settings.append((f"trial-{index:02d}", {"learning_rate": float(f"{rate:.2g}"),
                                                "batch_size": int(rng.choice(BATCH_SIZES)),
                                                "epochs": int(rng.integers(1, epochs + 1))}))
    return settings


def as_flags(values: dict) -> list[str]:
    out = []
    for name, value in values.items():
        if isinstance(value, bool):
            out.append(f"--{name}" if value else f"--no{name}")
        elif isinstance(value, (list, tuple)):
            out.append(f"--{name}={','.join(map(str, value))}")
        elif value is not None:
            out.append(f"--{name}={value}")
    return out


def with_temperatures(results: dict, plan: Plan) -> dict:
    """The heads study's classifier decoded at each of HEAD_TEMPERATURES, as extra 'trials' (validation metrics)."""
    trained = results.get("head-classification")
    if not trained:
        return results
    decoded = {name: value for name, value in results.items() if name != "head-classification"}
    model_path = f"{plan.study_dir}/head-classification/model.keras"
    for temperature in HEAD_TEMPERATURES:
        print(f"[head-classification] decoding the validation photos at T = {temperature}", flush=True)
        overall = evaluation.overall(model_path, plan.data_dir, "val", plan.batch_size, temperature=temperature)
        decoded[f"head-classification-T{temperature}"] = {**trained, "val": overall}
    return decoded


def run_trial(name: str, overrides: dict, plan: Plan) -> dict | None:
    """Train one trial (resuming it if it was interrupted); return its metrics, or None if it failed."""
    run_dir = f"{plan.study_dir}/{name}"
    print(f"[{name}] training with {' '.join(as_flags(overrides))}", flush=True)
    command = [sys.executable, "-m", "trainer.task", *as_flags({**plan.trainer_flags, **overrides}),
               f"--data_dir={plan.data_dir}", f"--model_dir={run_dir}"]
    if subprocess.run(command).returncode:
        print(f"[{name}] failed", flush=True)
        return None
    return run_files.read_json(f"{run_dir}/metrics.json")


def _write_hparams(study_dir: str, names_and_overrides, results: dict) -> None:
    """HParams dashboard: the experiment at the study root; each trial's setting in its own logs."""
    keys = sorted({key for _, overrides in names_and_overrides for key in overrides})
    with tf.summary.create_file_writer(study_dir).as_default():
        hp.hparams_config(hparams=[hp.HParam(key) for key in keys],
                          metrics=[hp.Metric(f"epoch_{m}", group="validation", display_name=f"validation {m}")
                                   for m in COLUMNS])
    for name, overrides in names_and_overrides:
        if name in results:
            with tf.summary.create_file_writer(f"{study_dir}/{name}/logs").as_default():
                hp.hparams({key: overrides[key] for key in keys if key in overrides}, trial_id=name)


def table_rows(names_and_overrides, results: dict) -> list[dict]:
    """One row per finished trial, then the gray baseline's (averaged over trials: CV folds differ).

    The gray baseline has no loss value when the trials train with different losses (there is no one loss to
    measure it by) or a colour classifier (it predicts no class distribution: the run's metrics.json gives it
    no loss).
    """
    rows = []
    for name, overrides in names_and_overrides:
        if name in results:
            metrics = results[name]
            rows.append({"trial": name, **overrides, "epochs_run": metrics["epochs_run"],
                         "minutes": round(metrics["training_seconds"] / 60, 1),
                         **{c: metrics["val"].get(c) for c in COLUMNS},
                         "test_rgb_psnr": metrics["test"]["rgb_psnr"] if "T" not in name.rsplit("-", 1)[-1] else None})
    if rows:
        grays = [results[r["trial"]]["gray_baseline"] for r in rows]
        values = {c: [quality.set_metrics(g["val"]).get(c) for g in grays] for c in COLUMNS}
        gray = {c: None if None in column else float(np.mean(column)) for c, column in values.items()}
        if any("loss" in overrides for _, overrides in names_and_overrides):
            gray["loss"] = None
        rows.append({"trial": "gray baseline", **gray,
                     "test_rgb_psnr": float(np.mean([g["test"]["rgb_psnr"] for g in grays]))})
    return rows


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-2 else f"{value:.4f}".rstrip("0").rstrip(".")
    return "" if value is None else str(value)


def best_line(rows: list[dict], metric: str) -> str:
    trained = [r for r in rows if r["trial"] != "gray baseline"]
    pick = min if metric in quality.LOWER_IS_BETTER else max
    best = pick(trained, key=lambda r: r[metric])
    return f"Best by validation {metric}: {best['trial']} ({metric} = {best[metric]:.4f})"


def cv_line(rows: list[dict]) -> str:
    folds = [r for r in rows if r["trial"] != "gray baseline"]
    parts = [f"{c} {np.mean([r[c] for r in folds]):.4f} ± {np.std([r[c] for r in folds]):.4f}"
             for c in ("loss", "rgb_psnr", "rgb_ssim", "ab_psnr", "ab_ssim", "colourfulness")]
    return f"Mean ± standard deviation over {len(folds)} folds: " + ", ".join(parts)


def markdown(study: str, rows: list[dict], setup: dict, summary: list[str]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    note = "Validation metrics of each trial's best epoch (test RGB PSNR last); the gray baseline predicts no colour."
    if study in ("losses", "heads"):
        note += " Each trial's loss is measured by its own loss function, so that column does not compare trials."
    if study == "heads":
        note += (" The classifier is trained once and decoded at each temperature T (annealed mean; its loss does"
                 " not depend on T); decoded rows have no test column.")
    lines = [f"# Study: {study}", "", *[f"- {k}: {v}" for k, v in setup.items()], "", note, "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines + ["", *summary, ""])


def _plot(path: str, study: str, rows: list[dict]) -> None:
    trained = [r for r in rows if r["trial"] != "gray baseline"]
    gray = rows[-1]
    if study == "hparams":
        panels = []
        for key, title in (("learning_rate", "log10 learning rate"), ("batch_size", "batch size")):
            order = sorted(trained, key=lambda r: r[key])
            xs = [math.log10(r[key]) if key == "learning_rate" else r[key] for r in order]
            for metric in ("rgb_psnr", "rgb_ssim"):
                panels.append(plots.panel(f"validation {metric}", xs, {"trials": [r[metric] for r in order]},
                                          x_label=title, points_only=True))
    else:
        names = [r["trial"] if study == "cv" else r["trial"].split("-", 1)[1] for r in trained]
        shown = ("rgb_psnr", "colourfulness_ratio", "neutral_false_colour") if study == "heads" else (
            "rgb_psnr", "rgb_ssim", "colourfulness")
        panels = [plots.bars(f"validation {metric} (gray: {gray[metric]:.3f})", names, [r[metric] for r in trained])
                  for metric in shown]
    plots.save_panels(path, panels)


def relative(text: str) -> str:
    """Absolute local paths in text made relative to the working directory: results name no one's machine."""
    return re.sub(r"(?<![\w:/])/[^\s,:]+", lambda match: os.path.relpath(match.group()), text)


def run(plan: Plan) -> tuple[str, bool]:
    """Run (or finish) every trial; write the results; return the summary and whether every trial finished."""
    study, study_dir = plan.study, plan.study_dir.rstrip("/")
    if study in ("losses", "heads") and plan.rank_by == "loss":
        raise UsageError("--rank_by=loss cannot rank trials trained with different losses; rank by a metric")
    if study == "cv":
        folds = dataset.load_manifest(plan.data_dir).split_rule.folds
        if plan.folds and plan.folds > folds:
            raise UsageError(f"--folds={plan.folds}, but the records were split into {folds} folds")
        count = plan.folds or folds
    else:
        count = None
    names_and_overrides = trials(study, plan.epochs, plan.trials, count, plan.search_seed)
    start, results, failed = time.monotonic(), {}, []
    for name, overrides in names_and_overrides:
        metrics = run_files.read_json(f"{study_dir}/{name}/metrics.json")
        if metrics:
            print(f"[{name}] finished earlier: skipped", flush=True)
        elif plan.study_minutes is not None and time.monotonic() - start > plan.study_minutes * 60:
            print(f"[{name}] not started: the study's {plan.study_minutes} minutes are used", flush=True)
            continue
        else:
            metrics = run_trial(name, overrides, plan)
        if metrics:
            results[name] = metrics
        else:
            failed.append(name)
    if not results:
        raise UsageError("no trial finished")
    if study == "heads":
        results = with_temperatures(results, plan)
        names_and_overrides = [("head-regression", {"loss": "mae"})] + [
            (f"head-classification-T{t}", {"loss": "classification", "temperature": t}) for t in HEAD_TEMPERATURES]
    rows = table_rows(names_and_overrides, results)
    first = next(iter(results.values()))
    setup = {"command": relative(plan.command),
             "data": f"{relative(first['data']['data_dir'])}: {first['data']['image_size'][0]}x"
                     f"{first['data']['image_size'][1]}, {first['data']['train_examples']} training examples, "
                     f"validation: {first['data']['validation']} ({first['data']['val_examples']} examples)",
             "model": first["model"], "trials finished": f"{len(results)} of {len(names_and_overrides)}"}
    summary = [cv_line(rows) if study == "cv" else best_line(rows, plan.rank_by)]
    summary += [f"Failed: {', '.join(failed)}"] if failed else []
    tf.io.gfile.makedirs(study_dir)
    with tf.io.gfile.GFile(f"{study_dir}/results.md", "w") as handle:
        handle.write(markdown(study, rows, setup, summary))
    with tf.io.gfile.GFile(f"{study_dir}/results.csv", "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
        writer.writeheader()
        writer.writerows(rows)
    _plot(f"{study_dir}/results.png", study, rows)
    _write_hparams(study_dir, names_and_overrides, results)
    return "\n".join(summary), not failed
