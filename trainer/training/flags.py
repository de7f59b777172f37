"""The trainer's absl flags, one per `RunConfig` field, with its defaults. All optional here; `trainer.task`
marks the required ones, so that other commands (studies) can import and reuse these definitions."""

from absl import flags

from trainer.training import distribute, losses
from trainer.training.config import BASE_BATCH, BUDGET_ENDS, DEFAULTS, LR_SCHEDULES, OPTIMIZERS, PRECISIONS

from trainer.network import models

flags.DEFINE_string("data_dir", None, "Output directory of `python -m beam_jobs.preprocess` (local or gs://).")
flags.DEFINE_string("model_dir", None, "Where checkpoints, TensorBoard logs, metrics and models go "
                    "(local or gs://). Re-running with the same model_dir resumes the run.")
flags.DEFINE_enum("model", DEFAULTS.model, sorted(models.MODELS), "Network to train (context_unet: hint-aware, "
                  "global context; seed_autoencoder: the original project's).")
flags.DEFINE_string("init_model", DEFAULTS.init_model, "Start from the weights of this .keras model (fine-tuning).")
flags.DEFINE_enum("optimizer", DEFAULTS.optimizer, OPTIMIZERS, "Optimizer (sgd uses Nesterov momentum).")
flags.DEFINE_enum("loss", DEFAULTS.loss, sorted(losses.NAMES), "Training loss. classification: a distribution "
                  "over ab bins with class rebalancing, decoded by the annealed mean (vivid; context_unet only); "
                  "rebalanced_mae: MAE weighted towards rare colours; the others regress ab.")
flags.DEFINE_float("rebalancing", DEFAULTS.rebalancing, "Class rebalancing lambda for --loss=classification|rebalanced_mae: "
                   "w ~ 1/((1-lambda) p + lambda/Q); 1: none, 0: inverse frequency.", lower_bound=0.0,
                   upper_bound=1.0)
flags.DEFINE_float("temperature", DEFAULTS.temperature, "--loss=classification: annealed-mean temperature the model decodes "
                   "with (1: the mean, towards 0: the mode); `trainer.colorize --temperature` changes it later.",
                   lower_bound=0.01)
flags.DEFINE_float("vividness", DEFAULTS.vividness, "--loss=classification: 1 decodes the rebalanced distribution (most vivid), "
                   "0 divides the rebalancing back out (duller, fewer tinted whites and skies; the shipped model's); "
                   "`trainer.colorize --vividness` changes it later.", lower_bound=0.0,
                   upper_bound=1.0)
flags.DEFINE_bool("augment", DEFAULTS.augment, "Random flips and scale-and-crop of the training photos.")
flags.DEFINE_integer("train_crop", DEFAULTS.train_crop, "Train on random windows of this many pixels a side "
                     "of the training photos, at their own scale (e.g. 128 of 200: about 2.7x the examples per "
                     "second); validation and the exported model see whole photos. 0: whole photos.", lower_bound=0)
flags.DEFINE_bool("train_hints", DEFAULTS.train_hints, "Hint-aware networks: show simulated colour hints in training (--notrain_hints: "
                  "never, an automatic colourizer with the same network).")
flags.DEFINE_float("hint_points_p", DEFAULTS.hint_points_p, "Simulated hints per photo in training: 1 + a "
                   "geometric count with this p (mean 1/p), for 3 photos in 4 (Zhang et al. 2017: 1/8).",
                   lower_bound=0.01, upper_bound=1.0)
flags.DEFINE_integer("hint_max_patch", DEFAULTS.hint_max_patch, "Simulated hints' square patches from 1 pixel to this "
                     "side (odd; Zhang et al. 2017: 9), each the mean true colour under it.", lower_bound=1)
flags.register_validator("hint_max_patch", lambda side: side % 2 == 1,
                         "--hint_max_patch must be odd: a patch is centred on its point")
flags.DEFINE_float("species_weight", DEFAULTS.species_weight, "Weight of an auxiliary loss that predicts each training "
                   "photo's species (its folder name) from the photo-wide features (Iizuka et al. 2016); training only, the "
                   "exported model has no such head. 0: no head.", lower_bound=0.0)
flags.DEFINE_integer("view_size", DEFAULTS.view_size, "Train on whole photos resized to this many pixels a side "
                     "(e.g. 96: about 4x the steps per second of 200); 0: the records' size. A learning curve's "
                     "cool-down takes the final resolution back (`trainer.study --study=curve`).", lower_bound=0)
flags.DEFINE_float("learning_rate", DEFAULTS.learning_rate, f"Learning rate for a global batch of {BASE_BATCH}; "
                   f"the run's follows --batch_size: x batch_size / {BASE_BATCH} for sgd (linear scaling), x sqrt(batch_size / "
                   f"{BASE_BATCH}) for adam and rmsprop (square-root scaling).", lower_bound=0.0)
flags.DEFINE_integer("warmup_steps", DEFAULTS.warmup_steps, "Raise the learning rate linearly from near 0 to its "
                     "scaled value over this many first steps (large batches need it); 0: none.", lower_bound=0)
flags.DEFINE_enum("lr_schedule", DEFAULTS.lr_schedule, LR_SCHEDULES, "After the warm-up, cosine: decay the "
                  "learning rate to 0 over the run's --epochs (it decays on its own; no plateau needed); "
                  "constant: keep it (for --reduce_lr_patience); wsd: keep it, then decay it linearly to 0 over the last "
                  "--cooldown_steps (warm-up, stable, decay: a run can be cooled down at any of its checkpoints).")
flags.DEFINE_integer("cooldown_steps", DEFAULTS.cooldown_steps, "--lr_schedule=wsd: decay the learning rate "
                     "linearly to 0 over the run's last N steps.", lower_bound=0)
flags.DEFINE_string("init_checkpoint", DEFAULTS.init_checkpoint, "A training run's model_dir: start from its last "
                    "checkpoint, network and optimizer (step count, moments, weights' average), e.g. to cool down a "
                    "run trained at a constant rate (--lr_schedule=wsd) while it goes on.")
flags.DEFINE_float("ema_momentum", DEFAULTS.ema_momentum, "Keep an exponential moving average of the weights "
                   "with this momentum (e.g. 0.999); validation, checkpoints and the exported model use the "
                   "average. 0: off.", lower_bound=0.0, upper_bound=0.99999)
flags.DEFINE_enum("precision", DEFAULTS.precision, PRECISIONS, "Keras dtype policy: mixed_bfloat16 computes in "
                  "bfloat16 (CPUs with AMX, TPUs, recent GPUs), mixed_float16 in float16 with loss scaling (GPUs); "
                  "losses, metrics and the colour decoding stay float32, and the exported model is float32.")
flags.DEFINE_float("momentum", DEFAULTS.momentum, "Momentum for --optimizer=sgd.", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_integer("batch_size", DEFAULTS.batch_size, "Global batch size, split evenly across all replicas.", lower_bound=1)
flags.DEFINE_integer("epochs", DEFAULTS.epochs, "Maximum number of epochs.", lower_bound=1)
flags.DEFINE_integer("steps_per_epoch", DEFAULTS.steps_per_epoch, "Training steps per epoch (default: one pass over the training split).",
                     lower_bound=1)
flags.DEFINE_integer("steps_per_execution", DEFAULTS.steps_per_execution, "Training steps run per call into "
                     "TensorFlow (Keras compile's steps_per_execution): fewer round trips from Python, for fast "
                     "accelerators; callbacks then see every Nth step (an epoch's last call runs what is left).",
                     lower_bound=1)
flags.DEFINE_integer("checkpoint_every_steps", DEFAULTS.checkpoint_every_steps, "Save what a re-run resumes from "
                     "every N training steps (with --steps_per_execution, at the first call past each multiple), besides each "
                     "epoch's end and a SIGTERM (to any worker); 0: only those.",
                     lower_bound=0)
flags.DEFINE_integer("log_every_steps", DEFAULTS.log_every_steps, "Read the training loss back from the devices "
                     "and show it every N steps (with --steps_per_execution, at the first call past each multiple), "
                     "besides each epoch's end; between these the host waits for nothing.", lower_bound=1)
flags.DEFINE_string("profile_steps", DEFAULTS.profile_steps, "START,END: profile these training steps (counted "
                    "from 1) into logs/train/ for TensorBoard's Profile tab (viewing it needs the "
                    "tensorboard-plugin-profile package).")
flags.DEFINE_float("time_budget_minutes", DEFAULTS.time_budget_minutes, "Stop training after this much wall-clock "
                   "time, validation included, to within a step (one worker only).",
                   lower_bound=0.0)
flags.DEFINE_enum("budget_ends", DEFAULTS.budget_ends, BUDGET_ENDS, "When --time_budget_minutes runs out: "
                  "finish (validate, score the test photos, export) or pause (checkpoint and exit, so that the same "
                  "command with a larger budget trains on).")
flags.DEFINE_integer("early_stopping_patience", DEFAULTS.early_stopping_patience, "Epochs without a better validation loss before stopping; "
                     "0 disables early stopping.", lower_bound=0)
flags.DEFINE_integer("reduce_lr_patience", DEFAULTS.reduce_lr_patience, "Epochs without a better validation loss before halving the "
                     "learning rate; 0 disables.", lower_bound=0)
flags.DEFINE_integer("cv_fold", DEFAULTS.cv_fold, "Cross-validation: train on the train split's other folds and validate "
                     "on this fold of it (the val split is then unused).", lower_bound=0)
flags.DEFINE_list("holdout_labels", list(DEFAULTS.holdout_labels), "Classes (photo folder names) left out of "
                  "training and validation; the run scores them apart, as species it never saw.")
flags.DEFINE_list("holdout_sources", list(DEFAULTS.holdout_sources), "Sources (the Beam job's --input names) left "
                  "out of training and validation; the run scores them apart, as photos from elsewhere.")
flags.DEFINE_enum("strategy", DEFAULTS.strategy, distribute.STRATEGIES,
                  "auto: multi_worker when TF_CONFIG names several workers, mirrored over all local GPUs "
                  "(or logical CPUs), else one_device.")
flags.DEFINE_enum("accelerator", DEFAULTS.accelerator, distribute.ACCELERATORS, "auto: the GPUs if TensorFlow "
                  "finds any, else the CPU; gpu: refuse to start without a GPU (a GPU job never trains on the CPU "
                  "unsaid); cpu: the CPU even where there are GPUs.")
flags.DEFINE_bool("deterministic", DEFAULTS.deterministic, "Turn on TensorFlow's op determinism "
                  "(tf.config.experimental.enable_op_determinism): the same seed then gives the same weights on "
                  "GPUs too, at some speed; on CPUs runs are reproducible without it.")
flags.DEFINE_enum("jit_compile", DEFAULTS.jit_compile, ("auto", "true", "false"),
                  "XLA-compile the train and eval steps. auto: on for GPU/TPU, off for CPU (2x slower there).")
flags.DEFINE_integer("logical_cpus", DEFAULTS.logical_cpus, "Testing and benchmarks only: split the CPU into this "
                     "many logical devices, to run the multi-device code on a CPU host.", lower_bound=0)
flags.DEFINE_integer("seed", DEFAULTS.seed, "Seed for weights and data order; the same seed gives the same run.")
flags.DEFINE_integer("shuffle_buffer", DEFAULTS.shuffle_buffer, "Examples in the training shuffle buffer.", lower_bound=1)
flags.DEFINE_string("data_service", DEFAULTS.data_service, "grpc://HOST:PORT of a tf.data service dispatcher "
                    "(`python -m trainer.data_service`): its workers read, parse and augment the training batches.")
flags.DEFINE_integer("log_images_every", DEFAULTS.log_images_every, "Log validation photos to TensorBoard every N epochs; 0 disables.",
                     lower_bound=0)
flags.DEFINE_integer("num_log_images", DEFAULTS.num_log_images, "How many validation photos to log.", lower_bound=1)
flags.DEFINE_bool("overwrite", DEFAULTS.overwrite, "Delete what model_dir holds and start again.")

FLAGS = flags.FLAGS
