"""Train a colourizer on the Beam job's records.

    python -m trainer.task --data_dir RECORDS --model_dir RUN [--model lowres_unet --optimizer adam --loss mae ...]
    tensorboard --logdir RUN

The same command runs on one CPU, on all GPUs of a host and on several hosts
(TF_CONFIG); re-running it with the same --model_dir resumes the run.
"""

import sys

from absl import app, flags

from trainer import distribute
from trainer.flags import FLAGS


def flag_values() -> dict:
    """The trainer's own flags (not absl's or TensorFlow's) as a dict."""
    return {name: FLAGS[name].value for name in sorted(FLAGS)
            if FLAGS[name].module_name == "trainer.flags"}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    # The CPU must be split into logical devices before TensorFlow starts, so nothing
    # importing TensorFlow is imported before this line.
    distribute.split_cpu(FLAGS.logical_cpus)
    from pipeline.dataset import DataError
    from trainer import training

    try:
        summary = training.run(flag_values())
    except (DataError, distribute.ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(summary)


if __name__ == "__main__":
    flags.mark_flags_as_required(["data_dir", "model_dir"])
    app.run(main)
