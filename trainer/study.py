"""The studies, each one command: optimizers, losses, colour heads, a hyperparameter search, k-fold CV.

    python -m trainer.study --study=optimizers --data_dir RECORDS --study_dir STUDY [trainer flags...]
    python -m trainer.study --study=losses ...
    python -m trainer.study --study=heads ...      # regression (MAE) vs colour classification at several T
    python -m trainer.study --study=hints ...      # the same network trained with and without simulated hints
    python -m trainer.study --study=hparams --trials 8 ...
    python -m trainer.study --study=cv --folds 5 ...
    tensorboard --logdir STUDY            # the HParams dashboard shows every trial

Every trial is a normal `python -m trainer.task` run in STUDY/<trial>/, given
the trainer flags this command was given (model, epochs, batch size,
strategy, ...) plus the trial's own. Re-running the command skips finished
trials and resumes an interrupted one. The study writes results.md,
results.csv and results.png, and names the best trial by --rank_by. The
heads study trains the same network with a regression head (MAE) and with
the colour-classification head, then decodes the classifier at each
temperature of `HEAD_TEMPERATURES` (decoding needs no retraining).
"""

import sys

from trainer import command  # first: it quiets TensorFlow's start-up

from absl import flags

from trainer.evaluation import metrics
from trainer.studies import curve, runner
from trainer.studies.runner import STUDIES
from trainer.training import flags as trainer_flags  # defines every trainer flag, passed through

flags.adopt_module_key_flags(trainer_flags)  # --help lists the trainer flags a study passes through too

flags.DEFINE_enum("study", None, (*STUDIES, "curve"), "Which study to run (curve: the quality each recipe "
                  "reaches at each training budget, see --budgets_minutes).")
flags.DEFINE_string("study_dir", None, "Folder for the trials and the results (local or gs://).")
flags.DEFINE_integer("trials", 8, "hparams: how many random settings to try.", lower_bound=1)
flags.DEFINE_integer("folds", None, "cv: how many folds (default: all the records have).", lower_bound=2)
flags.DEFINE_integer("search_seed", 0, "hparams: seed of the random search (same seed, same trials).")
flags.DEFINE_float("study_minutes", None, "Start no new trial after this many minutes.", lower_bound=0.0)
flags.DEFINE_enum("rank_by", runner.Plan.rank_by, ("loss", *metrics.SHOWN),
                  "Validation metric that names the best trial (lowest for loss, gaps and false colour; else highest).")
flags.DEFINE_string("budgets_minutes", "5,10,20", "curve: minutes of training at which each recipe is cooled down "
                    "and scored, increasing; a re-run with more keeps the rows measured.")
flags.DEFINE_list("recipes", ["windows", "species", "views"], f"curve: the recipes to compare, of "
                  f"{', '.join(curve.RECIPES)} (trainer/studies/curve.py says what each is).")
FLAGS = flags.FLAGS


def passed_through() -> dict:
    """The trainer flags given on this command line, to hand to every trial."""
    own = {"data_dir", "model_dir"}
    return {f.name: f.value for f in FLAGS.get_flags_for_module(trainer_flags.__name__)
            if f.present and f.name not in own}


def main(argv):
    command_line = " ".join(["python -m trainer.study", *sys.argv[1:]])
    if FLAGS.study == "curve":
        print(curve.run(FLAGS.study_dir, FLAGS.data_dir, passed_through(), curve.budgets_of(FLAGS.budgets_minutes),
                        FLAGS.recipes, runner.relative(command_line)))
        return
    plan = runner.Plan(study=FLAGS.study, study_dir=FLAGS.study_dir, data_dir=FLAGS.data_dir,
                       trainer_flags=passed_through(), epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
                       trials=FLAGS.trials, folds=FLAGS.folds, search_seed=FLAGS.search_seed,
                       study_minutes=FLAGS.study_minutes, rank_by=FLAGS.rank_by,
                       command=command_line)
    summary, all_finished = runner.run(plan)
    print(summary)
    sys.exit(0 if all_finished else 1)


if __name__ == "__main__":
    flags.mark_flags_as_required(["study", "data_dir", "study_dir"])
    command.run(main)
