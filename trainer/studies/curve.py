"""The learning-curve study: what each training recipe reaches at each budget of wall-clock training.

    python -m trainer.study --study=curve --data_dir RECORDS --study_dir STUDY --budgets_minutes 5,10,20 \
        [--recipes windows,species,views] --holdout_labels=windflower,pansy [trainer flags]

One stable run per recipe (STUDY/<recipe>/stable: warm-up, then a constant learning rate,
`--lr_schedule=wsd`) trains until the next budget and pauses (`--budget_ends=pause`); a short
cool-down (STUDY/<recipe>/cooldown-<minutes>: the rate decayed linearly to 0 over COOLDOWN_SHARE of
the stable run's steps so far, at the recipe's final resolution) branches off its checkpoint and is
scored. A longer budget continues the stable run instead of starting again (Hagele et al. 2024: a
cool-down taken from a stable run matches a cosine run of the same length), so a re-run with a longer
list keeps the rows already measured and costs only the extra minutes.

Budgets go in the outer loop, recipes in the inner one: every recipe reaches the small budgets first.
"""

import csv
import dataclasses
import resource
import subprocess
import sys

import numpy as np
import tensorflow as tf

from pipeline import dataset
from pipeline.errors import UsageError
from trainer.evaluation import interaction, plots
from trainer.network import model_file
from trainer.studies import runner
from trainer.training import backup, run_files

COOLDOWN_SHARE = 0.15  # of the stable run's steps so far
STABLE_EPOCH_STEPS = 1_000_000  # one endless epoch: the stable run never validates, the budget stops it
SCORED_PHOTOS = 256  # of the test split, for the hint gain and suggestions (whole batches of them)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Trainer flags for the stable run, and those the cool-down changes (the final resolution)."""

    stable: dict
    final: dict = dataclasses.field(default_factory=dict)
    about: str = ""


# Window and view sides as shares of the records' side (128 and 96 pixels of 200), made multiples of 8.
WINDOW, VIEW = 0.64, 0.48
RECIPES = {
    "windows": Recipe({"train_crop": WINDOW}, about="the shipped model's: random windows (128 pixels of 200) at the "
                      "photos' scale"),
    "species": Recipe({"train_crop": WINDOW, "species_weight": 0.1},
                      about="windows, and a species head on the photo-wide features (loss weight 0.1)"),
    "views": Recipe({"view_size": VIEW, "species_weight": 0.1}, {"view_size": 0, "train_crop": WINDOW},
                    about="whole photos at 96 pixels of 200 with the species head; the cool-down on windows"),
    "hints": Recipe({"train_crop": WINDOW, "hint_points_p": 0.05, "hint_max_patch": 15},
                    about="windows, with more and larger simulated hints (20 points on average, patches to 15x15)"),
}
SIZED = ("train_crop", "view_size")


def sized(flags: dict, side: int) -> dict:
    """`flags` with window and view sides given as shares of the records' `side` turned into pixels."""
    return {name: (max(8, int(round(value * side / 8)) * 8) if name in SIZED and 0 < value < 1 else value)
            for name, value in flags.items()}
METRICS = ("seen_psnr_over_gray", "seen_colourfulness_ratio", "neutral_false_colour", "unseen_psnr_over_gray",
           "unseen_colourfulness_ratio", "hint_gain_10", "suggestion_top3")
TITLES = {"seen_psnr_over_gray": "seen species: RGB PSNR - gray (dB)",
          "seen_colourfulness_ratio": "seen species: colourfulness / truth",
          "neutral_false_colour": "neutral false colour (Lab units)",
          "unseen_psnr_over_gray": "unseen species: RGB PSNR - gray (dB)",
          "unseen_colourfulness_ratio": "unseen species: colourfulness / truth",
          "hint_gain_10": "10 hints: RGB PSNR gain (dB)", "suggestion_top3": "true colour in first 3 suggestions"}


def _train(flags: dict) -> float:
    """Runs `python -m trainer.task` with `flags`; returns the CPU-minutes it used. Raises if it failed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run([sys.executable, "-m", "trainer.task", *runner.as_flags(flags)])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode:
        raise UsageError(f"training failed (exit {result.returncode}): {' '.join(runner.as_flags(flags))}")
    return (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / 60


class Curve:
    """One curve study's folder: its rows so far (rows.json) and the runs behind them."""

    def __init__(self, study_dir: str, data_dir: str, trainer_flags: dict):
        self.dir, self.data_dir, self.trainer_flags = study_dir.rstrip("/"), data_dir, trainer_flags
        self._rows_file = f"{self.dir}/rows.json"
        self.rows = run_files.read_json(self._rows_file) or []
        self.side = dataset.Records.open(data_dir, "train").image_size[0]

    def measured(self, recipe: str, budget: float) -> bool:
        return any(r["recipe"] == recipe and r["budget_minutes"] == budget for r in self.rows)

    def _stable_dir(self, recipe: str) -> str:
        return f"{self.dir}/{recipe}/stable"

    def _cpu(self, recipe: str) -> dict:
        return run_files.read_json(f"{self.dir}/{recipe}/stable_cpu.json") or {"cpu_minutes": 0.0}

    def stable(self, recipe: str, budget: float) -> None:
        """The recipe's stable run trained on until `budget` minutes of training in all (nothing if it has them)."""
        if self._stable_seconds(recipe) >= budget * 60:
            return
        print(f"[{recipe}] stable run: training to {budget:g} minutes", flush=True)
        flags = {**self.trainer_flags, **sized(RECIPES[recipe].stable, self.side), "lr_schedule": "wsd",
                 "cooldown_steps": 0, "epochs": 1, "steps_per_epoch": STABLE_EPOCH_STEPS,
                 "time_budget_minutes": budget, "budget_ends": "pause", "early_stopping_patience": 0,
                 "log_images_every": 0, "data_dir": self.data_dir, "model_dir": self._stable_dir(recipe)}
        cpu = self._cpu(recipe)
        cpu["cpu_minutes"] += _train(flags)
        run_files.write_json(f"{self.dir}/{recipe}/stable_cpu.json", cpu)

    def cooldown(self, recipe: str, budget: float) -> dict:
        """The cool-down branched off the stable run at `budget`, trained (or finished, if it was interrupted)
        and scored: the curve's row."""
        run_dir = f"{self.dir}/{recipe}/cooldown-{budget:g}"
        if run_files.read_json(f"{run_dir}/metrics.json") is None:
            self.stable(recipe, budget)
            start = backup.Start.of(self._stable_dir(recipe))
            steps = max(1, round(COOLDOWN_SHARE * start.step))
            print(f"[{recipe}] cool-down from step {start.step}: {steps} steps", flush=True)
            recipe_flags = RECIPES[recipe]
            flags = {**self.trainer_flags, **sized({**recipe_flags.stable, **recipe_flags.final}, self.side),
                     "lr_schedule": "wsd", "cooldown_steps": steps, "epochs": 1, "steps_per_epoch": steps,
                     "init_checkpoint": self._stable_dir(recipe), "early_stopping_patience": 0,
                     "log_images_every": 0, "data_dir": self.data_dir, "model_dir": run_dir}
            cpu = self._cpu(recipe)["cpu_minutes"] + _train(flags)
            run_files.write_json(f"{run_dir}/cpu.json", {"cpu_minutes": cpu, "stable_step": start.step,
                                                         "stable_seconds": self._stable_seconds(recipe)})
        result = run_files.read_json(f"{run_dir}/metrics.json")
        # Unknown CPU when the process that trained it was stopped before it could note it.
        spent = run_files.read_json(f"{run_dir}/cpu.json") or {
            "cpu_minutes": None, "stable_step": backup.Start.of(self._stable_dir(recipe)).step,
            "stable_seconds": self._stable_seconds(recipe)}
        print(f"[{recipe}] scoring hints and suggestions", flush=True)
        row = {"recipe": recipe, "budget_minutes": budget,
               "minutes": round((spent["stable_seconds"] + result["training_seconds"]) / 60, 2),
               "cpu_minutes": None if spent["cpu_minutes"] is None else round(spent["cpu_minutes"], 2),
               "steps": spent["stable_step"] + result["flags"]["cooldown_steps"], **_scores(result)}
        row.update(self._interaction(run_dir, result))
        self.rows.append(row)
        run_files.write_json(self._rows_file, self.rows)
        return row

    def _stable_seconds(self, recipe: str) -> float:
        """Seconds of training the stable run has used (its time budget's count), 0 before it starts."""
        state = backup.read_state(run_files.RunFiles(self._stable_dir(recipe)).backup)
        return float(state["callbacks"].get("TimeBudget", {}).get("used", 0.0)) if state else 0.0

    def _interaction(self, run_dir: str, result: dict) -> dict:
        net, prep = model_file.load(f"{run_dir}/model.keras")
        flags = result["flags"]
        holdout = dataset.Holdout(tuple(flags["holdout_labels"]), tuple(flags["holdout_sources"]))
        test = dataset.Records.open(self.data_dir, "test")
        batches = dataset.make_dataset(test, 32, training=False, holdout=holdout).take(SCORED_PHOTOS // 32)
        return {"hint_gain_10": interaction.hint_gain(net, batches),
                "suggestion_top3": interaction.suggestion_hits(net, prep, batches)}


def _scores(result: dict) -> dict:
    """The curve's metrics of a finished run: seen (the test split, held-out species excluded) and unseen."""
    test, gray = result["test"], result["gray_baseline"]["test"]
    row = {"seen_psnr_over_gray": test["rgb_psnr"] - gray["rgb_psnr"],
           "seen_colourfulness_ratio": test["colourfulness_ratio"],
           "neutral_false_colour": test["neutral_false_colour"]}
    if "unseen" in result:
        row["unseen_psnr_over_gray"] = result["unseen"]["rgb_psnr"] - result["gray_baseline"]["unseen"]["rgb_psnr"]
        row["unseen_colourfulness_ratio"] = result["unseen"]["colourfulness_ratio"]
    return row


def run(study_dir: str, data_dir: str, trainer_flags: dict, budgets: list[float], recipes: list[str],
        command: str) -> str:
    """Measures every (recipe, budget) not measured yet; writes results.csv, .md and .png; returns the table."""
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        raise UsageError(f"--recipes: unknown {', '.join(unknown)}; known: {', '.join(RECIPES)}")
    if sorted(budgets) != budgets or len(set(budgets)) != len(budgets):
        raise UsageError(f"--budgets_minutes must increase: {','.join(f'{b:g}' for b in budgets)}")
    curve = Curve(study_dir, data_dir, trainer_flags)
    for budget in budgets:
        for recipe in recipes:
            if curve.measured(recipe, budget):
                print(f"[{recipe}] {budget:g} minutes: measured earlier, kept", flush=True)
                continue
            curve.cooldown(recipe, budget)
    rows = sorted((r for r in curve.rows if r["recipe"] in recipes), key=lambda r: (r["recipe"], r["budget_minutes"]))
    return write(curve.dir, rows, recipes, command)


def write(study_dir: str, rows: list[dict], recipes: list[str], command: str) -> str:
    """results.csv, results.md and results.png of the curve; returns the markdown table."""
    columns = ["recipe", "budget_minutes", "minutes", "cpu_minutes", "steps", *METRICS]
    with tf.io.gfile.GFile(f"{study_dir}/results.csv", "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    table = "\n".join(lines)
    about = "\n".join(f"- {name}: {RECIPES[name].about}" for name in recipes)
    with tf.io.gfile.GFile(f"{study_dir}/results.md", "w") as handle:
        handle.write(f"# Study: learning curve\n\n- command: {command}\n\n{about}\n\n"
                     f"minutes: wall-clock training (stable run and its cool-down); cpu_minutes: CPU time of the "
                     f"training processes (start-up and the cool-down's scoring included). Seen: the test split "
                     f"without the held-out species; unseen: every photo of them. Hints and suggestions: "
                     f"{SCORED_PHOTOS} test photos at the records' size.\n\n{table}\n")
    panels = [plots.panel(TITLES[metric], sorted({r["minutes"] for r in rows}),
                          {name: [r.get(metric) for r in rows if r["recipe"] == name] for name in recipes},
                          x_label="minutes of training", xs_by_series={name: [r["minutes"] for r in rows
                                                                               if r["recipe"] == name]
                                                                        for name in recipes})
              for metric in METRICS if any(r.get(metric) is not None for r in rows)]
    plots.save_panels(f"{study_dir}/results.png", panels)
    return table


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.3f}"
    return "" if value is None else str(value)


def budgets_of(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part]
    except ValueError:
        raise UsageError(f"--budgets_minutes={text}: give minutes as numbers, comma-separated") from None

