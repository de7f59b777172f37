"""Export a model to run elsewhere: a TensorFlow Lite file for phones and small boards, or a SavedModel.

    python -m trainer.export --format tflite --output colorizer.tflite [--model PATH] [--quantize float16]
    python -m trainer.export --format saved_model --output FOLDER [--model PATH]

The TensorFlow Lite file holds the network with its colour decoding: it takes
the L plane (and, for a hint-aware model, the hint planes) of the photo's view
and returns its ab; the photo's preparation travels inside it as metadata
(README, "Run it elsewhere"; `trainer.applying.lite`). Check it end to end with
`python -m trainer.colorize PHOTO --model FILE.tflite --output OUT` or
`python -m trainer.app --model FILE.tflite`. --quantize stores the weights in
float16 (half the size) or as 8-bit integers with float computation (dynamic,
a quarter); docs/benchmarks.md measures what each costs in colour and time.

The SavedModel takes whole photos of any size and returns them colourized, with
hint and suggestion signatures (`trainer.applying.serving`).
"""

from trainer import command  # first: it quiets TensorFlow's start-up

from absl import flags

from pipeline.errors import UsageError
from trainer.applying import lite, lite_export

flags.DEFINE_string("model", None, "A .keras model or a training run's model_dir (default: the model shipped "
                    "with the project).")
flags.DEFINE_enum("format", None, ("tflite", "saved_model"), "tflite: one TensorFlow Lite file; saved_model: a "
                  "SavedModel folder.")
flags.DEFINE_string("output", None, "The file (tflite, named *.tflite) or folder (saved_model) to write, local "
                    "or gs://.")
flags.DEFINE_enum("quantize", "none", lite_export.QUANTIZATIONS, "tflite only: how the weights are stored: "
                  "float32 (none), float16, or 8-bit integers computed in float (dynamic).")
FLAGS = flags.FLAGS


def main(argv):
    from trainer.network import model_file, models

    try:
        path = models.resolve(FLAGS.model)
    except FileNotFoundError as error:
        raise UsageError(f"--model: {error}") from None
    if FLAGS.format == "tflite":
        if not FLAGS.output.endswith(lite.SUFFIX):
            raise UsageError(f"--output {FLAGS.output}: a TensorFlow Lite file is named *{lite.SUFFIX}, which "
                             "--model FILE.tflite recognizes")
        lite_export.export(path, FLAGS.output, FLAGS.quantize)
    else:
        if FLAGS.quantize != "none":
            raise UsageError("--quantize applies to --format tflite; a SavedModel keeps float32 weights")
        from trainer.applying import serving

        net, prep = model_file.load(path)
        serving.export(net, FLAGS.output, prep)
    print(f"{path} exported as {FLAGS.format} to {FLAGS.output}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["format", "output"])
    command.run(main)
