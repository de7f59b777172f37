"""Scoring a colourizer beside the gray baseline, overall and per class: every photo's metrics, their
means, and the report's content.

Where photos come from is `photo_sets`; what a report writes, `report_files`; the command's steps,
`trainer.evaluation.run`.
"""

import collections
import dataclasses

import numpy as np

from pipeline import color_tf
from pipeline.errors import UsageError
from pipeline.preparation import Preparation
from trainer.evaluation import metrics
from trainer.evaluation.evaluator import Evaluator
from trainer.evaluation.extremes import Extremes, contact_sheet
from trainer.evaluation.photo_sets import Origin, PhotoSet
from trainer.evaluation.progress import Progress
from trainer.network import colour_classes


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


def score(evaluator: Evaluator, batches, sheet_photos: int, total: int | None = None) -> tuple[Scores, Extremes]:
    """Every photo's metrics, the model's and the gray baseline's, and the best and worst photos.

    Shows progress as it goes (`total` photos, when known), so a long scoring does not look hung.
    """
    scores, extremes = Scores(), Extremes(sheet_photos)
    progress = Progress(total)
    for lightness, ab, origins in batches:
        values = evaluator.scores(lightness, ab)
        scores.add(values["model"], values["gray"], origins)
        extremes.offer(values["model"]["rgb_psnr"].numpy(), np.asarray(lightness), np.asarray(ab),
                       values["predicted"].numpy(), origins)
        progress.add(len(origins))
    progress.done()
    return scores, extremes


def means(evaluator: Evaluator, batches) -> dict[str, float]:
    """The model's metrics (and loss) over (L8, ab8) record batches, as validation reports them each epoch."""
    values = collections.defaultdict(list)
    for l8, ab8 in batches:
        scores = evaluator.scores(color_tf.l8_to_input(l8), color_tf.ab8_to_target(ab8), full=False)
        for name, value in scores["model"].items():
            values[name] += value.numpy().tolist()
    return metrics.mean(values)


def _means(values: dict[str, list[float]], keep) -> dict[str, float]:
    return metrics.mean({name: [v for v, k in zip(series, keep) if k] for name, series in values.items()})


def summarize(scores: Scores) -> dict:
    """Means of the model's and the gray baseline's scores, overall and per class."""
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


def report(evaluator: Evaluator, prep: Preparation, photos: PhotoSet, sheet_photos: int,
           model_path: str | None = None) -> tuple[dict, np.ndarray]:
    """Score `photos` beside the gray baseline: metrics.json's content and the contact sheet.

    Under a multi-worker strategy every worker scores (each its replicas' share) and gets the same report.
    """
    scores, extremes = score(evaluator, photos.batches, sheet_photos, photos.count)
    if not scores.labels:
        raise UsageError(f"no usable photos in {photos.description}")
    net = evaluator.net
    decoding = dict(zip(("temperature", "vividness"), colour_classes.decoding(net))) if (
        colour_classes.is_classifier(net)) else None
    summary = {"model": model_path, "source": photos.description, "preparation": prep.to_json(),
               "hints_per_photo": evaluator.num_hints, "decoding": decoding,
               **summarize(scores),
               "failures": [dataclasses.asdict(f) for f in photos.failures]}
    return summary, contact_sheet(extremes)
