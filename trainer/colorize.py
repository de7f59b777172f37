"""Colourize photos of any size with a trained model.

    python -m trainer.colorize PHOTO_OR_FOLDER_OR_GLOB ... --output OUT_DIR [--model PATH] [--compare]
    python -m trainer.colorize photo.jpg --output OUT_DIR --hint 120,45,#d02030 --hint 300,200,#2040c0
    python -m trainer.colorize FOLDER --output OUT_DIR --hints hints.json
    python -m trainer.colorize photo.jpg --suggest 120,45 --suggest 300,200


Each photo keeps its size, name, relative path and lightness; only its colour
comes from the model. Gray and colour photos both work (colour is discarded
first). Colour hints (`--hint`, `--hints`) pin a colour's chroma at points of
a photo (`trainer.applying.hint_input`). Photos stream through in batches, so memory does not grow with their
number. Unreadable files are listed with their reason at the end; the exit
code is 1 if there were any. `--suggest X,Y` prints, for each point of one photo,
the colours a colour-classification model hesitates between there, most likely
first, as `#RRGGBB (probability)` (`trainer.network.suggestions`); it needs no
--output (with one, the photo is also colourized).
"""

import sys

from trainer import command  # first: it quiets TensorFlow's start-up

from absl import flags

from pipeline.errors import UsageError
from trainer.applying import inference

flags.DEFINE_string("output", None, "Folder for the colourized photos (local or gs://); needed unless --suggest.")
flags.DEFINE_string("model", None, "A .keras model, a training run's model_dir, a SavedModel folder or a "
                    "TensorFlow Lite file from trainer.export (*.tflite: it colourizes, with hints, but does not "
                    "suggest colours) (default: the model shipped with the project).")
flags.DEFINE_bool("compare", False, "Also write compare/<name>.jpg: gray | colourized | original.")
flags.DEFINE_integer("batch_size", 16, "Photos per network call.", lower_bound=1)
flags.DEFINE_integer("max_pixels", None, "Photos with more pixels are refused as too_large, from the file header, "
                     "before decoding (default: the model's own limit, as the Beam job's --max_pixels).", lower_bound=1)
flags.DEFINE_multi_string("hint", [], "X,Y,#RRGGBB: this colour at pixel (X, Y) of the one photo given (origin "
                          "top-left); repeatable. Only its chroma is used: the photo keeps its lightness.")
flags.DEFINE_string("hints", None, 'JSON file of hints for many photos: {"<path relative to its input folder, or '
                    'file name>": [{"x": 120, "y": 45, "color": "#d02030"}, ...]}.')
flags.DEFINE_multi_string("suggest", [], "X,Y: print the suggested colours at pixel (X, Y) of the one photo given "
                          "(origin top-left), most likely first, as #RRGGBB (probability); repeatable. Hints given "
                          "with --hint are taken into account.")
flags.DEFINE_float("temperature", None, "Annealed-mean temperature of a colour-classification model (default: "
                   "the model's own): 1 decodes the mean colour, lower values move towards the most likely one.",
                   lower_bound=0.01)
flags.DEFINE_float("vividness", None, "How much of the training's colour rebalancing a colour-classification model "
                   "keeps (default: the model's own): 0 is the most faithful, 1 the most colourful (and more "
                   "tinted whites).", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_bool("edge_aware", True, "Upsample the colour guided by the photo's own lightness, so it stops at "
                  "edges (--noedge_aware: bilinear).")
FLAGS = flags.FLAGS


def main(argv):
    from trainer.applying import hint_input, suggesting

    single = [hint_input.parse_hint(text) for text in FLAGS.hint]
    points = [suggesting.parse_point(text) for text in FLAGS.suggest]
    colourizer = None
    if points:
        colourizer = inference.load(FLAGS.model, FLAGS.temperature, FLAGS.edge_aware, FLAGS.vividness)
        found = inference.suggest(argv[1:], colourizer, points, single)
        for point, suggestions in zip(points, found):
            print(suggesting.line(point, suggestions))
        if not FLAGS.output:
            return
    elif not FLAGS.output:
        raise UsageError("--output is needed (a folder for the colourized photos), unless --suggest is given")
    by_key = hint_input.read_hints_file(FLAGS.hints) if FLAGS.hints else {}
    written, failures = inference.run(
        argv[1:], FLAGS.output, FLAGS.model, batch_size=FLAGS.batch_size, compare=FLAGS.compare,
        single_hints=single, hints_by_key=by_key, temperature=FLAGS.temperature, edge_aware=FLAGS.edge_aware,
        max_pixels=FLAGS.max_pixels, vividness=FLAGS.vividness, colourizer=colourizer)
    print(f"{written} photos colourized into {FLAGS.output}; {len(failures)} failed")
    for failure in failures:
        print(f"  {failure.path}: {failure.reason}: {failure.detail}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    command.run(main, takes_arguments=True)
