"""Train a colourizer on the Beam job's records.

    python -m trainer.task --data_dir RECORDS --model_dir RUN [--model context_unet --loss classification ...]
    tensorboard --logdir RUN

The same command runs on one CPU, on all GPUs of a host and on several hosts
(TF_CONFIG); re-running it with the same --model_dir resumes the run.
"""

from trainer import command  # first: it quiets TensorFlow's start-up

from absl import flags, logging

from trainer.training import distribute, flags as trainer_flags
from trainer.training.flags import FLAGS

flags.adopt_module_key_flags(trainer_flags)  # --help lists the trainer's flags, defined in trainer.training.flags


def main(argv):
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    # The CPU must be split into logical devices before TensorFlow initializes its devices: TensorFlow is
    # imported by now, but nothing has touched a device yet; the trainer's own modules come after.
    distribute.use_accelerator(FLAGS.accelerator)
    distribute.split_cpu(FLAGS.logical_cpus)
    from trainer.training import run
    from trainer.training.config import RunConfig

    print(run.train(RunConfig.from_flags(FLAGS)))


if __name__ == "__main__":
    flags.mark_flags_as_required(["data_dir", "model_dir"])
    command.run(main)
