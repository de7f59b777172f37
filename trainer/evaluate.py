"""Evaluate a colourizer beside the gray baseline, overall and per class, on records or on any photos.

    python -m trainer.evaluate --model PATH --data_dir RECORDS --split test --output REPORT_DIR
    python -m trainer.evaluate --model PATH --images PHOTO_FOLDER ... --output REPORT_DIR
    python -m trainer.evaluate --model PATH --data_dir RECORDS --split held_out --holdout_labels daisy,pansy ...

Writes metrics.json, metrics.md (the same numbers as a table) and
contact_sheet.png (the best and worst photos by RGB PSNR: gray | predicted |
truth, each captioned with its class, and with its file name for --images).
--images are prepared as the model's own records were
(`pipeline.preparation`, which the model carries); the metrics are those of
`trainer.evaluation.metrics`.
"""

from trainer import command  # first: it quiets TensorFlow's start-up

from absl import flags

from pipeline import dataset
from trainer.evaluation import report_files, run as evaluation
from trainer.evaluation.loading import Decoding

flags.DEFINE_string("model", None, "A .keras model or a training run's model_dir (default: the shipped model).")
flags.DEFINE_string("data_dir", None, "Records written by beam_jobs.preprocess.")
flags.DEFINE_enum("split", "test", ("train", "val", "test", evaluation.HELD_OUT), "Which split of --data_dir; "
                  f"{evaluation.HELD_OUT}: the held-out photos, every photo of --holdout_labels or --holdout_sources "
                  "from all splits.")
flags.DEFINE_list("holdout_labels", [], "Classes a model was trained without (its --holdout_labels): their photos "
                  f"are the held-out ones, left out of --split train|val|test and the only ones scored with --split "
                  f"{evaluation.HELD_OUT}.")
flags.DEFINE_list("holdout_sources", [], "Sources a model was trained without (its --holdout_sources), likewise.")
flags.DEFINE_multi_string("images", None, "Folders, files or globs of colour photos (instead of --data_dir).")
flags.DEFINE_string("output", None, "Folder for metrics.json, metrics.md and contact_sheet.png.")
flags.DEFINE_integer("batch_size", 16, "Photos per batch.", lower_bound=1)
flags.DEFINE_integer("sheet_photos", 4, "Best and worst photos shown on the contact sheet.", lower_bound=1)
flags.DEFINE_integer("hints", 0, "Reveal this many points of the true colour per photo as hints (hint-aware "
                     "models; fixed seed): how much a few hints help.", lower_bound=0)
flags.DEFINE_float("temperature", None, "Decode a colour-classification model at this annealed-mean temperature "
                   "(default: the model's own).", lower_bound=0.01)
flags.DEFINE_float("vividness", None, "Decode a colour-classification model keeping this much of its colour "
                   "rebalancing, 0 to 1 (default: the model's own).", lower_bound=0.0, upper_bound=1.0)
FLAGS = flags.FLAGS


def _request() -> evaluation.Request:
    """The flags as one evaluation request."""
    source = evaluation.Source(FLAGS.data_dir, FLAGS.split,
                               dataset.Holdout(tuple(FLAGS.holdout_labels), tuple(FLAGS.holdout_sources)),
                               tuple(FLAGS.images or ()))
    return evaluation.Request(FLAGS.model, FLAGS.output, source,
                              Decoding(FLAGS.hints, FLAGS.temperature, FLAGS.vividness),
                              FLAGS.batch_size, FLAGS.sheet_photos)


def main(argv):
    summary = evaluation.run(_request())
    print(report_files.markdown(summary))
    for failure in summary["failures"]:
        print(f"  skipped {failure['path']}: {failure['reason']}: {failure['detail']}")


if __name__ == "__main__":
    flags.mark_flag_as_required("output")
    command.run(main)
