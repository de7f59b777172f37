"""The steps of `python -m trainer.evaluate`: load the model, find the photos, score them, write the report."""

import dataclasses

from pipeline import dataset
from pipeline.errors import UsageError
from pipeline.preparation import Preparation
from trainer.evaluation import photo_sets, report_files, scoring
from trainer.evaluation.evaluator import Evaluator
from trainer.evaluation.loading import Decoding, load

HELD_OUT = "held_out"  # the --split that scores the held-out photos: those of the held-out classes or sources


@dataclasses.dataclass(frozen=True)
class Source:
    """What to score: a split of records (`HELD_OUT`: the held-out photos of every split), or photo files.

    `holdout` names the classes or sources held out: a split leaves their photos out, `HELD_OUT` scores
    only them.
    """

    data_dir: str | None = None
    split: str = "test"
    holdout: dataset.Holdout = dataset.Holdout()
    images: tuple[str, ...] = ()

    def __post_init__(self):
        if bool(self.data_dir) == bool(self.images):
            raise UsageError("give either --data_dir (with --split) or --images")
        if self.split == HELD_OUT and not self.holdout:
            raise UsageError(f"--split={HELD_OUT} needs --holdout_labels or --holdout_sources")


@dataclasses.dataclass(frozen=True)
class Request:
    """One evaluation: which model, decoded how, on what, and where its report goes."""

    model: str | None
    output: str
    source: Source
    decoding: Decoding = Decoding()
    batch_size: int = 16
    sheet_photos: int = 4


def run(request: Request) -> dict:
    """Score the model as `request` says and write its report; returns metrics.json's content."""
    path, net, prep = load(request.model, request.decoding)
    photos = _photo_set(request.source, request.batch_size, prep)
    summary, sheet = scoring.report(Evaluator(net, num_hints=request.decoding.num_hints), prep, photos,
                                    request.sheet_photos, path)
    report_files.write(request.output, summary, sheet)
    return summary


def overall(model_path, data_dir: str, split: str, batch_size: int, num_hints: int = 0, temperature=None) -> dict:
    """The model's metrics over a split of records (no files written)."""
    decoding = Decoding(num_hints, temperature)
    _, net, prep = load(model_path, decoding)
    photos = _photo_set(Source(data_dir, split), batch_size, prep)
    scores, _ = scoring.score(Evaluator(net, num_hints=num_hints), photos.batches, 1, photos.count)
    return scoring.summarize(scores)["overall"]["model"]


def _photo_set(source: Source, batch_size: int, prep: Preparation) -> photo_sets.PhotoSet:
    if source.images:
        return photo_sets.photo_set(list(source.images), prep, batch_size)
    if source.split == HELD_OUT:
        return _held_out(source, batch_size, prep)
    records = dataset.Records.open(source.data_dir, source.split)
    without = f", without the held-out {source.holdout.describe()}" if source.holdout else ""
    return photo_sets.PhotoSet(photo_sets.record_batches(records, batch_size, prep, source.holdout),
                               f"{source.data_dir} ({source.split} split{without})",
                               records.num_examples(holdout=source.holdout))


def _held_out(source: Source, batch_size: int, prep: Preparation) -> photo_sets.PhotoSet:
    """Every held-out photo, from all three splits."""
    found = dataset.held_out_records(source.data_dir, source.holdout)
    for records in found:
        photo_sets.refuse_other_preparation(records, prep)
    batches = dataset.held_out_dataset(source.data_dir, source.holdout, batch_size, with_labels=True)
    return photo_sets.PhotoSet(photo_sets.labelled_batches(batches),
                               f"{source.data_dir} (the held-out photos: every photo of the "
                               f"{source.holdout.describe()}, from all splits)",
                               sum(r.num_examples(holdout=source.holdout, held_out=True) for r in found))
