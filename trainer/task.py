"""Train a colourizer on the Beam job's records.

    python -m trainer.task --data_dir RECORDS --model_dir RUN [--model context_unet --loss classification ...]
    tensorboard --logdir RUN

The same command runs on one CPU, on all GPUs of a host and on several hosts
(TF_CONFIG); re-running it with the same --model_dir resumes the run.
"""

import os
import sys

# TensorFlow's C++ start-up noise (CUDA factories, oneDNN, TF-TRT) and notices, unless the user set a level.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags, logging  # noqa: E402

from trainer.training import distribute, flags as trainer_flags  # noqa: E402
from trainer.training.flags import FLAGS  # noqa: E402

flags.adopt_module_key_flags(trainer_flags)  # --help lists the trainer's flags, defined in trainer.training.flags


def flag_values() -> dict:
    """The trainer's own flags (not absl's or TensorFlow's) as a dict."""
    return {flag.name: flag.value for flag in FLAGS.get_flags_for_module("trainer.training.flags")}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    # The CPU must be split into logical devices before TensorFlow starts, so nothing
    # importing TensorFlow is imported before this line.
    distribute.split_cpu(FLAGS.logical_cpus)
    from pipeline import errors
    from trainer.training import run

    try:
        summary = run.train(flag_values())
    except errors.UsageError as error:
        errors.exit_with(error)
    print(summary)


if __name__ == "__main__":
    flags.mark_flags_as_required(["data_dir", "model_dir"])
    app.run(main)
