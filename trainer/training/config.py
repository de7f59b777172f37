"""A training run's configuration: frozen and typed, built from the trainer's flags (`trainer.training.flags`).

The defaults live here; the flags take them, so `--help` shows them. Library
code receives a `RunConfig`, never the global flags.
"""

import dataclasses

OPTIMIZERS = ("adam", "rmsprop", "sgd")
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
    train_hints: bool = True
    learning_rate: float = 1e-3
    ema_momentum: float = 0.0  # 0: no moving average of the weights
    precision: str = "float32"
    momentum: float = 0.9
    batch_size: int = 16
    epochs: int = 20
    steps_per_epoch: int | None = None
    time_budget_minutes: float | None = None
    early_stopping_patience: int = 5
    reduce_lr_patience: int = 0
    cv_fold: int | None = None
    holdout_labels: tuple[str, ...] = ()
    holdout_sources: tuple[str, ...] = ()
    strategy: str = "auto"
    jit_compile: str = "auto"
    logical_cpus: int = 0
    seed: int = 42
    shuffle_buffer: int = 1024
    log_images_every: int = 1
    num_log_images: int = 6
    overwrite: bool = False

    @classmethod
    def from_flags(cls, flag_values) -> "RunConfig":
        """The config from parsed absl flag values (every field is a flag of the same name)."""
        values = {field.name: flag_values[field.name].value for field in dataclasses.fields(cls)}
        return cls(**{name: tuple(value) if isinstance(value, list) else value for name, value in values.items()})

    def to_json(self) -> dict:
        return {name: list(value) if isinstance(value, tuple) else value
                for name, value in dataclasses.asdict(self).items()}


DEFAULTS = RunConfig("", "")
