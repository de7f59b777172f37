"""Scoring a colourizer beside the gray baseline, overall and per class, on records or photos.

The library behind `python -m trainer.evaluate`.
"""

import collections
import dataclasses
import heapq
import itertools
import json
import posixpath
import sys
import time

import cv2
import keras
import numpy as np
import tensorflow as tf

from pipeline.errors import UsageError
from pipeline import color, color_tf, dataset
from pipeline.preparation import Preparation
from trainer.network import colour_classes, hints, model_file, models
from trainer.evaluation import metrics, sheets
from trainer.evaluation.evaluator import Evaluator
from trainer.applying import photos

COLUMNS = ("rgb_psnr", "rgb_ssim", "ab_psnr", "ab_ssim", "colourfulness", "colourfulness_ratio", "ab_error_auc",
           "neutral_false_colour")  # the report's, titled by metrics.TITLES
PROGRESS_SECONDS = 30.0


@dataclasses.dataclass(frozen=True)
class Origin:
    """Where a scored photo comes from: its class and, when the source gives it, its file's name.

    Batches carry one per photo: the class for the per-class tables, both for the contact sheet's captions.
    """

    label: str
    name: str | None = None

    def caption(self) -> str:
        return f"{self.label} ({self.name})" if self.name else self.label


@dataclasses.dataclass
class Scores:
    """Per-photo values for the model and the gray baseline (every metric, and the loss when scored with one),
    and each photo's class."""

    model: dict[str, list[float]] = dataclasses.field(default_factory=lambda: collections.defaultdict(list))
    gray: dict[str, list[float]] = dataclasses.field(default_factory=lambda: collections.defaultdict(list))
    labels: list[str] = dataclasses.field(default_factory=list)

    def add(self, model_values, gray_values, origins: list[Origin]) -> None:
        for values, series in ((model_values, self.model), (gray_values, self.gray)):
            for name, value in values.items():
                series[name] += value.numpy().tolist()
        self.labels += [origin.label for origin in origins]


def record_batches(records: dataset.Records, batch_size: int, prep: Preparation,
                   holdout: dataset.Holdout = dataset.Holdout(), held_out: bool = False):
    """A split's records in model tensors (those `holdout` names, or the others, by `held_out`); refused
    unless they were prepared as the model's own were."""
    made = records.preparation
    if (made.size, made.resize) != (prep.size, prep.resize):
        raise UsageError(f"{records.data_dir} holds {made.size}x{made.size} {made.resize} photos, the model was trained "
                                f"on {prep.size}x{prep.size} {prep.resize} ones")
    return labelled_batches(dataset.make_dataset(records, batch_size, training=False, with_labels=True,
                                                 holdout=holdout, held_out=held_out))


def labelled_batches(batches: tf.data.Dataset):
    """(L8, ab8, label) uint8 record batches -> model tensors and each photo's Origin (its class)."""
    for l8, ab8, labels in batches:
        yield (color_tf.l8_to_input(l8), color_tf.ab8_to_target(ab8),
               [Origin(label.decode()) for label in labels.numpy()])


def photo_batches(arguments: list[str], prep: Preparation, batch_size: int, failures: list):
    """Photos prepared as the Beam job prepares them (`Preparation.square`, Lab8), in model tensors, and
    each photo's Origin (its class and file name)."""
    found = photos.find(arguments)
    for start in range(0, len(found), batch_size):
        lab8, origins = [], []
        for photo in found[start:start + batch_size]:
            rgb = photos.read_rgb(photo, prep)
            if isinstance(rgb, photos.Failure):
                failures.append(rgb)
                continue
            lab8.append(color.rgb_to_lab8(prep.square(rgb)))
            origins.append(Origin(photo.label, posixpath.basename(photo.path)))
        if lab8:
            lab8 = np.stack(lab8)
            yield color_tf.l8_to_input(lab8[..., :1]), color_tf.ab8_to_target(lab8[..., 1:]), origins


class _Extremes:
    """The k photos with the lowest and the highest RGB PSNR seen so far (memory stays flat)."""

    def __init__(self, k: int):
        self.k, self.best, self.worst, self._order = k, [], [], itertools.count()

    def offer(self, psnr, lightness, ab_true, ab_pred, origins: list[Origin]):
        for value, l, t, p, origin in zip(psnr, lightness, ab_true, ab_pred, origins):
            order, item = next(self._order), (origin, (l, t, p))
            heapq.heappush(self.best, (float(value), order, item))
            heapq.heappush(self.worst, (-float(value), order, item))
            if len(self.best) > self.k:
                heapq.heappop(self.best)
            if len(self.worst) > self.k:
                heapq.heappop(self.worst)

    def ranked(self) -> list[tuple[str, tuple]]:
        """(caption, (lightness, ab_true, ab_pred)): the best photos, best first, then the worst, worst first."""
        best = [("best", value, item) for value, _, item in sorted(self.best, reverse=True)]
        worst = [("worst", value, item) for value, _, item in sorted((-v, o, i) for v, o, i in self.worst)]
        return [(f"{which}, RGB PSNR {value:.1f} dB: {origin.caption()}", planes)
                for which, value, (origin, planes) in best + worst]


def _panels(lightness, ab_true, ab_pred) -> list[np.ndarray]:
    gray = np.repeat(lightness, 3, axis=-1)
    return [color_tf.unit_to_rgb(gray).numpy(),
            *[color_tf.unit_to_rgb(color_tf.to_rgb(lightness[None], ab[None])[0]).numpy() for ab in (ab_pred, ab_true)]]


def contact_sheet(extremes: _Extremes) -> np.ndarray:
    """Best photos first, then the worst: gray | predicted | truth, each captioned with its RGB PSNR, class
    and file name (when known). RGB."""
    ranked = extremes.ranked()
    return sheets.grid([_panels(*planes) for _, planes in ranked], ["gray", "predicted", "truth"],
                       [caption for caption, _ in ranked])


class _Progress:
    """Keras's progress bar on a terminal; elsewhere (a log, a pipe) a plain line every PROGRESS_SECONDS."""

    def __init__(self, total: int | None):
        self.total, self.count, self.start = total, 0, time.perf_counter()
        self.last = self.start
        self.bar = keras.utils.Progbar(total, unit_name="photo") if sys.stdout.isatty() else None

    def add(self, count: int) -> None:
        self.count += count
        if self.bar:
            self.bar.add(count)
        elif time.perf_counter() - self.last >= PROGRESS_SECONDS:
            self.last = time.perf_counter()
            self._line()

    def done(self) -> None:
        if not self.bar:
            self._line()

    def _line(self) -> None:
        of = f"/{self.total}" if self.total else ""
        rate = self.count / max(time.perf_counter() - self.start, 1e-9)
        print(f"  scored {self.count}{of} photos, {rate:.1f} photos/s", flush=True)


def score(evaluator: Evaluator, batches, sheet_photos: int, total: int | None = None) -> tuple[Scores, _Extremes]:
    """Every photo's metrics, the model's and the gray baseline's, and the best and worst photos.

    Shows progress as it goes (`total` photos, when known): a bar on a terminal, else a line every
    PROGRESS_SECONDS, so scoring a few thousand photos on a CPU does not look hung.
    """
    scores, extremes = Scores(), _Extremes(sheet_photos)
    progress = _Progress(total)
    for lightness, ab, origins in batches:
        values = evaluator.scores(lightness, ab)
        scores.add(values["model"], values["gray"], origins)
        extremes.offer(values["model"]["rgb_psnr"].numpy(), np.asarray(lightness), np.asarray(ab),
                       values["predicted"].numpy(), origins)
        progress.add(len(origins))
    progress.done()
    return scores, extremes


def _means(values: dict[str, list[float]], keep) -> dict[str, float]:
    return metrics.mean({name: [v for v, k in zip(series, keep) if k] for name, series in values.items()})


def summarize(scores: Scores) -> dict:
    everything = [True] * len(scores.labels)
    result = {"count": len(scores.labels), "overall": {"model": _means(scores.model, everything),
                                                       "gray": _means(scores.gray, everything)}, "per_class": {}}
    for label in sorted(set(scores.labels)):
        keep = [lab == label for lab in scores.labels]
        result["per_class"][label] = {"count": sum(keep), "model": _means(scores.model, keep),
                                      "gray": _means(scores.gray, keep)}
    return result


def worst_class(summary: dict) -> tuple[str, float] | None:
    """The class whose RGB PSNR gains least over the gray baseline, and that gain (dB); None for one class."""
    gains = {label: group["model"]["rgb_psnr"] - group["gray"]["rgb_psnr"]
             for label, group in summary["per_class"].items()}
    if len(gains) < 2:
        return None
    label = min(gains, key=gains.get)
    return label, gains[label]


def markdown(summary: dict) -> str:
    """One row per class and one overall: each metric as model / gray baseline (colourfulness: model / truth);
    then the class the model helps least."""
    header = ["class", "photos"] + [metrics.TITLES[name] for name in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    groups = [*summary["per_class"].items(), ("all", {"count": summary["count"], **summary["overall"]})]
    for label, group in groups:
        cells = [label, str(group["count"])]
        for name in COLUMNS:
            other = group["model"]["colourfulness_true"] if name == "colourfulness" else group["gray"][name]
            if name == "colourfulness_ratio":
                cells.append(f"{group['model'][name]:.2f}")
                continue
            cells.append(f"{group['model'][name]:.4f} / {other:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n\nEach cell: model / gray baseline (colourfulness: model / ground truth).\n"
    worst = worst_class(summary)
    if worst:
        text += f"Worst class: {worst[0]}, RGB PSNR {worst[1]:+.2f} dB over the gray baseline.\n"
    return text


def load(model_path: str | None, num_hints: int = 0, temperature: float | None = None,
         vividness: float | None = None) -> tuple[str, keras.Model, Preparation]:
    """The network to evaluate and its preparation, decoding as asked if asked; refuses what it cannot do."""
    try:
        path = models.resolve(model_path)
    except FileNotFoundError as error:
        raise UsageError(f"--model: {error}") from None
    net, prep = model_file.load(path)
    if num_hints and not hints.is_hint_aware(net):
        raise UsageError(f"--hints {num_hints}: {path} takes no colour hints")
    colour_classes.override_decoding(net, temperature, vividness, path)
    return path, net, prep


def overall(model_path, data_dir: str, split: str, batch_size: int, num_hints: int = 0, temperature=None) -> dict:
    """The model's metrics over a split of records (no files written)."""
    _, net, prep = load(model_path, num_hints, temperature)
    scores, _ = score(Evaluator(net, num_hints=num_hints),
                      record_batches(dataset.Records.open(data_dir, split), batch_size, prep), 1)
    return summarize(scores)["overall"]["model"]


HELD_OUT = "held_out"  # --split: the held-out classes' or sources' photos of every split


def _records_source(data_dir: str, split: str, holdout: dataset.Holdout, batch_size: int, prep: Preparation):
    """(batches, description, count) of a split without the held-out photos, or of every held-out photo."""
    if split != HELD_OUT:
        records = dataset.Records.open(data_dir, split)
        without = f", without the {holdout.describe()}" if holdout else ""
        return (record_batches(records, batch_size, prep, holdout), f"{data_dir} ({split} split{without})",
                records.num_examples(holdout=holdout))
    if not holdout:
        raise UsageError(f"--split={HELD_OUT} needs --holdout_labels or --holdout_sources")
    found = dataset.held_out_records(data_dir, holdout)
    for records in found[:1]:
        record_batches(records, batch_size, prep)  # refuses records prepared otherwise than the model's
    batches = labelled_batches(dataset.held_out_dataset(data_dir, holdout, batch_size, with_labels=True))
    return (batches, f"{data_dir} (every photo of the {holdout.describe()})",
            sum(r.num_examples(holdout=holdout, held_out=True) for r in found))


def run(model_path, output, *, data_dir=None, split="test", holdout=dataset.Holdout(), image_arguments=None,
        batch_size=16, sheet_photos=4, num_hints=0, temperature=None, vividness=None) -> dict:
    """Score the model on records (a split, or the held-out photos) or on photos; write the report to `output`."""
    if bool(data_dir) == bool(image_arguments):
        raise UsageError("give either --data_dir (with --split) or --images")
    path, net, prep = load(model_path, num_hints, temperature, vividness)
    failures, total = [], None
    if data_dir:
        batches, source, total = _records_source(data_dir, split, holdout, batch_size, prep)
    else:
        batches = photo_batches(image_arguments, prep, batch_size, failures)
        source = " ".join(image_arguments)
    summary, sheet = report(Evaluator(net, num_hints=num_hints), prep, batches, source, sheet_photos, failures,
                            path, total)
    write_report(output, summary, sheet)
    return summary


def report(evaluator: Evaluator, prep: Preparation, batches, source: str, sheet_photos: int, failures=(),
           model_path: str | None = None, total: int | None = None) -> tuple[dict, np.ndarray]:
    """Score `batches` (`total` photos) beside the gray baseline: metrics.json's content and the contact sheet.

    Under a multi-worker strategy every worker scores (each its replicas' share) and gets the same report.
    """
    scores, extremes = score(evaluator, batches, sheet_photos, total)
    if not scores.labels:
        raise UsageError(f"no usable photos in {source}")
    net = evaluator.net
    decoding = dict(zip(("temperature", "vividness"), colour_classes.decoding(net))) if (
        colour_classes.is_classifier(net)) else None
    summary = {"model": model_path, "source": source, "preparation": prep.to_json(),
               "hints_per_photo": evaluator.num_hints, "decoding": decoding,
               **summarize(scores),
               "failures": [dataclasses.asdict(f) for f in failures]}
    return summary, contact_sheet(extremes)


def write_report(output: str, summary: dict, sheet: np.ndarray) -> None:
    """metrics.json, metrics.md and contact_sheet.png into `output`."""
    tf.io.gfile.makedirs(output)
    with tf.io.gfile.GFile(f"{output}/metrics.json", "w") as handle:
        json.dump(summary, handle, indent=2)
    with tf.io.gfile.GFile(f"{output}/metrics.md", "w") as handle:
        handle.write(markdown(summary))
    with tf.io.gfile.GFile(f"{output}/contact_sheet.png", "wb") as handle:
        handle.write(cv2.imencode(".png", sheet[..., ::-1])[1].tobytes())
