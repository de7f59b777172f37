"""The trainer's absl flags. All optional here; `trainer.task` marks the required ones,
so that tests and other commands (studies) can import and reuse these definitions."""

from absl import flags

from trainer.training import distribute, losses

from trainer.network import models

OPTIMIZERS = ("adam", "rmsprop", "sgd")

flags.DEFINE_string("data_dir", None, "Output directory of `python -m beam_jobs.preprocess` (local or gs://).")
flags.DEFINE_string("model_dir", None, "Where checkpoints, TensorBoard logs, metrics and models go "
                    "(local or gs://). Re-running with the same model_dir resumes the run.")
flags.DEFINE_enum("model", "context_unet", sorted(models.MODELS), "Network to train (context_unet: hint-aware, "
                  "global context; seed_autoencoder: the original project's).")
flags.DEFINE_string("init_model", None, "Start from the weights of this .keras model (fine-tuning).")
flags.DEFINE_enum("optimizer", "adam", OPTIMIZERS, "Optimizer (sgd uses Nesterov momentum).")
flags.DEFINE_enum("loss", "classification", sorted(losses.NAMES), "Training loss. classification: a distribution "
                  "over ab bins with class rebalancing, decoded by the annealed mean (vivid; context_unet only); "
                  "rebalanced_mae: MAE weighted towards rare colours; the others regress ab.")
flags.DEFINE_float("rebalancing", 0.5, "Class rebalancing lambda for --loss=classification|rebalanced_mae: "
                   "w ~ 1/((1-lambda) p + lambda/Q); 1: none, 0: inverse frequency.", lower_bound=0.0,
                   upper_bound=1.0)
flags.DEFINE_float("temperature", 0.38, "--loss=classification: annealed-mean temperature the model decodes "
                   "with (1: the mean, towards 0: the mode); `trainer.colorize --temperature` changes it later.",
                   lower_bound=0.01)
flags.DEFINE_float("vividness", 1.0, "--loss=classification: 1 decodes the rebalanced distribution (most vivid), "
                   "0 divides the rebalancing back out (duller, fewer tinted neutrals).", lower_bound=0.0,
                   upper_bound=1.0)
flags.DEFINE_bool("augment", True, "Random flips and scale-and-crop of the training photos.")
flags.DEFINE_bool("train_hints", True, "Hint-aware networks: show simulated colour hints in training (--notrain_hints: "
                  "never, an automatic colourizer with the same network).")
flags.DEFINE_float("learning_rate", 1e-3, "Initial learning rate.", lower_bound=0.0)
flags.DEFINE_float("momentum", 0.9, "Momentum for --optimizer=sgd.", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_integer("batch_size", 16, "Global batch size, split evenly across all replicas.", lower_bound=1)
flags.DEFINE_integer("epochs", 20, "Maximum number of epochs.", lower_bound=1)
flags.DEFINE_integer("steps_per_epoch", None, "Training steps per epoch (default: one pass over the training split).",
                     lower_bound=1)
flags.DEFINE_float("time_budget_minutes", None, "Stop training after this much wall-clock time (one worker only).",
                   lower_bound=0.0)
flags.DEFINE_integer("early_stopping_patience", 5, "Epochs without a better validation loss before stopping; "
                     "0 disables early stopping.", lower_bound=0)
flags.DEFINE_integer("reduce_lr_patience", 0, "Epochs without a better validation loss before halving the "
                     "learning rate; 0 disables.", lower_bound=0)
flags.DEFINE_integer("cv_fold", None, "Cross-validation: train on the train split's other folds and validate "
                     "on this fold of it (the val split is then unused).", lower_bound=0)
flags.DEFINE_enum("strategy", "auto", distribute.STRATEGIES,
                  "auto: multi_worker when TF_CONFIG names several workers, mirrored over all local GPUs "
                  "(or logical CPUs), else one_device.")
flags.DEFINE_enum("jit_compile", "auto", ("auto", "true", "false"),
                  "XLA-compile the train and eval steps. auto: on for GPU/TPU, off for CPU (2x slower there).")
flags.DEFINE_integer("logical_cpus", 0, "Split the CPU into this many logical devices (multi-device runs on a "
                     "CPU host: tests, benchmarks).", lower_bound=0)
flags.DEFINE_integer("seed", 42, "Seed for weights and data order; the same seed gives the same run.")
flags.DEFINE_integer("shuffle_buffer", 1024, "Examples in the training shuffle buffer.", lower_bound=1)
flags.DEFINE_integer("log_images_every", 1, "Log validation photos to TensorBoard every N epochs; 0 disables.",
                     lower_bound=0)
flags.DEFINE_integer("num_log_images", 6, "How many validation photos to log.", lower_bound=1)
flags.DEFINE_bool("overwrite", False, "Delete what model_dir holds and start again.")

FLAGS = flags.FLAGS
