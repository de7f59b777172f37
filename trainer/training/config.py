"""A training run's configuration: frozen and typed, built from the trainer's flags (`trainer.training.flags`).

The defaults live here; the flags take them, so `--help` shows them. Library
code receives a `RunConfig`, never the global flags.
"""

import dataclasses

OPTIMIZERS = ("adam", "rmsprop", "sgd")
BASE_BATCH = 16  # --learning_rate is the rate for this global batch (see `RunConfig.peak_learning_rate`)
LR_SCHEDULES = ("cosine", "constant", "wsd")
BUDGET_ENDS = ("finish", "pause")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")  # Keras dtype policy names


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything one training run needs to know; see `trainer.training.flags` for what each field means."""

    data_dir: str
    model_dir: str
    model: str = "context_unet"
    init_model: str | None = None
    optimizer: str = "adam"
    loss: str = "classification"
    rebalancing: float = 0.5
    temperature: float = 0.38
    vividness: float = 0.0  # the decoding chosen on validation photos (see the model card); 1 tints whites
    augment: bool = True
    train_crop: int = 0  # train on random windows of this side; 0: whole photos
    train_hints: bool = True
    hint_points_p: float = 0.125  # simulated hints per photo: 1 + a geometric count with this p
    hint_max_patch: int = 9  # simulated hints' patches from 1x1 to this side (odd)
    species_weight: float = 0.0  # the auxiliary species head's loss weight; 0: no head
    view_size: int = 0  # train on whole photos resized to this side; 0: the records' size
    learning_rate: float = 1e-3  # for a global batch of BASE_BATCH
    warmup_steps: int = 0
    lr_schedule: str = "cosine"
    cooldown_steps: int = 0  # --lr_schedule=wsd: the linear decay to 0 over the run's last steps
    init_checkpoint: str | None = None  # a run's model_dir: start from its last checkpoint (network and optimizer)
    ema_momentum: float = 0.0  # 0: no moving average of the weights
    precision: str = "float32"
    momentum: float = 0.9
    batch_size: int = 16
    epochs: int = 20
    steps_per_epoch: int | None = None
    steps_per_execution: int = 1
    checkpoint_every_steps: int = 1000  # and at each epoch's end, and on SIGTERM
    log_every_steps: int = 100  # the training loss read back and shown
    profile_steps: str | None = None  # "START,END"
    time_budget_minutes: float | None = None
    budget_ends: str = "finish"  # what the time budget's end does: finish the run, or pause it to extend later
    early_stopping_patience: int = 5
    reduce_lr_patience: int = 0
    cv_fold: int | None = None
    holdout_labels: tuple[str, ...] = ()
    holdout_sources: tuple[str, ...] = ()
    strategy: str = "auto"
    accelerator: str = "auto"
    deterministic: bool = False
    jit_compile: str = "auto"
    logical_cpus: int = 0
    seed: int = 42
    shuffle_buffer: int = 1024
    data_service: str | None = None  # grpc://HOST:PORT of a tf.data service dispatcher (`trainer.data_service`)
    log_images_every: int = 1
    num_log_images: int = 6
    overwrite: bool = False

    @property
    def peak_learning_rate(self) -> float:
        """`--learning_rate` (the rate at a batch of BASE_BATCH) scaled to the global batch, reached after
        `warmup_steps`: linearly for SGD (Goyal et al. 2017), with the square root of the batch ratio for the
        adaptive optimizers, Adam and RMSprop (Malladi et al. 2022, "On the SDEs and Scaling Rules for Adaptive
        Gradient Algorithms"): their update divides by the gradient's scale, so a batch k times larger, whose
        gradient noise is sqrt(k) times smaller, takes a sqrt(k) times larger rate, not k."""
        ratio = self.batch_size / BASE_BATCH
        return self.learning_rate * (ratio if self.optimizer == "sgd" else ratio ** 0.5)

    @classmethod
    def from_flags(cls, flag_values) -> "RunConfig":
        """The config from parsed absl flag values (every field is a flag of the same name)."""
        values = {field.name: flag_values[field.name].value for field in dataclasses.fields(cls)}
        return cls(**{name: tuple(value) if isinstance(value, list) else value for name, value in values.items()})

    def to_json(self) -> dict:
        return {name: list(value) if isinstance(value, tuple) else value
                for name, value in dataclasses.asdict(self).items()}


DEFAULTS = RunConfig("", "")
