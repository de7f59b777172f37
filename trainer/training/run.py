"""One training run: data, strategy, model, Keras callbacks, fit, final evaluation, outputs.

A run lives in its model_dir:

| file | what |
| --- | --- |
| run_config.json | the flags it started with; a resumed run must use the same model and image size |
| backup/ | the latest finished epoch (weights, optimizer, callback state): what a re-run resumes from |
| checkpoints/best.weights.h5 | the weights with the best validation loss so far |
| logs/ | TensorBoard: train/ and validation/ scalars per epoch, images/ photos every N epochs |
| history.csv | one row of metrics per epoch |
| curves.png | loss, PSNR and SSIM per epoch |
| model.keras | the best network, loadable with Keras alone, carrying the records' photo preparation |
| saved_model/ | the best network as a SavedModel: any photo in, colour photo out (`trainer.applying.serving`) |
| evaluation/ | the test photos' report, as `python -m trainer.evaluate` writes it: metrics per class, contact sheet |
| metrics.json | final validation and test metrics beside the gray baseline's; written last |
"""

import contextlib
import csv
import datetime
import hashlib
import json
import platform
import sys
import warnings

import keras
import numpy as np
import tensorflow as tf

from pipeline import dataset
from pipeline.errors import ConfigError, DataError
from trainer.training import callbacks as trainer_callbacks
from trainer.training import colorizer, distribute, losses
from trainer.training.config import DEFAULTS, RunConfig
from trainer.network import colour_classes, model_file, models
from trainer.evaluation import metrics, plots, scoring
from trainer.applying import serving

# What may differ when a run is resumed: how long it trains, where and how it runs, what it logs.
# Anything else changes what the run has computed so far, and is refused.
_MAY_CHANGE = ("epochs", "time_budget_minutes", "overwrite", "strategy", "jit_compile", "logical_cpus",
               "log_images_every", "num_log_images", "early_stopping_patience")
TEST_SHEET_PHOTOS = 4  # best and worst test photos on the contact sheet

# Keras says this whenever an evaluation dataset of unknown length ends, which is how every one ends.
warnings.filterwarnings("ignore", message="Your input ran out of data")


class Layout:
    """Where a run keeps its files (see the module docstring)."""

    def __init__(self, model_dir: str):
        self.root = model_dir.rstrip("/")
        self.config = f"{self.root}/run_config.json"
        self.backup = f"{self.root}/backup"
        self.best_weights = f"{self.root}/checkpoints/best.weights.h5"
        self.logs = f"{self.root}/logs"
        self.history = f"{self.root}/history.csv"
        self.curves = f"{self.root}/curves.png"
        self.keras_model = f"{self.root}/model.keras"
        self.saved_model = f"{self.root}/saved_model"
        self.evaluation = f"{self.root}/evaluation"
        self.unseen_evaluation = f"{self.root}/evaluation/unseen"
        self.metrics = f"{self.root}/metrics.json"


def _read_json(path: str) -> dict:
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)


def _write_json(path: str, value: dict) -> None:
    """Whole or not at all: a run killed while writing metrics.json must not pass for finished."""
    trainer_callbacks.write_text_atomically(path, json.dumps(value, indent=2, default=float))


def _check_run_dir(layout: Layout, config: RunConfig, is_chief: bool) -> bool:
    """True when the run already finished. Refuses to resume a different run."""
    if config.overwrite and is_chief and tf.io.gfile.exists(layout.root):
        tf.io.gfile.rmtree(layout.root)
    if tf.io.gfile.exists(layout.metrics):
        return True
    if tf.io.gfile.exists(layout.config):
        previous, now, default = _read_json(layout.config), config.to_json(), DEFAULTS.to_json()
        changed = [f"--{k}={previous.get(k, default[k])} (now {value})" for k, value in now.items()
                   if k not in _MAY_CHANGE and previous.get(k, default[k]) != value]
        if changed:
            raise ConfigError(
                f"--model_dir {layout.root} holds a run with {', '.join(changed)}; use another "
                "--model_dir, or --overwrite to start again")
    elif is_chief:
        _write_json(layout.config, config.to_json())
    return False


class Data:
    """The splits a run uses, and the checks that they fit the run."""

    def __init__(self, config: RunConfig, global_batch: int):
        data_dir, fold = config.data_dir, config.cv_fold
        self.holdout = dataset.Holdout(config.holdout_labels, config.holdout_sources)
        self.train = dataset.Records.open(data_dir, "train")
        self.size = self.train.image_size[0]
        if fold is None:
            self.train_folds, self.val, self.val_folds = None, dataset.Records.open(data_dir, "val"), None
        else:
            folds = self.train.manifest.split_rule.folds
            if fold >= folds:
                raise ConfigError(f"--cv_fold={fold}, but the records have {folds} folds (0-{folds - 1})")
            self.train_folds = set(range(folds)) - {fold}
            self.val, self.val_folds = self.train, {fold}
        self.test = dataset.Records.open(data_dir, "test")
        self.bins = colour_classes.ColourBins.from_histogram(self.train.ab_histogram())
        self.train_examples = self.train.num_examples(self.train_folds, self.holdout)
        if self.train_examples < global_batch:
            raise DataError(f"the training data has {self.train_examples} examples, fewer than one "
                                    f"batch of {global_batch}")

    def evaluation(self, batch_size: int) -> tf.data.Dataset:
        """The validation photos the run may see (held-out ones excluded), in a fixed order."""
        return dataset.make_dataset(self.val, batch_size, training=False, folds=self.val_folds, holdout=self.holdout)

    def unseen(self, batch_size: int, with_labels: bool = False) -> tf.data.Dataset | None:
        """Every photo of the held-out classes or sources, from all three splits (None without a holdout)."""
        if not self.holdout:
            return None
        return dataset.held_out_dataset(self.train.data_dir, self.holdout, batch_size, with_labels)

    def unseen_examples(self) -> int:
        return sum(r.num_examples(holdout=self.holdout, held_out=True)
                   for r in dataset.held_out_records(self.train.data_dir, self.holdout))

    def describe(self) -> dict:
        return {"data_dir": self.train.data_dir, "image_size": [self.size, self.size],
                "train_examples": self.train_examples,
                "validation": "val split" if self.val_folds is None else f"fold {min(self.val_folds)} of train",
                "val_examples": self.val.num_examples(self.val_folds, self.holdout),
                "test_examples": self.test.num_examples(holdout=self.holdout),
                **({"held_out": self.holdout.describe(), "unseen_examples": self.unseen_examples()}
                   if self.holdout else {})}


def _optimizer(config: RunConfig) -> keras.optimizers.Optimizer:
    rate = config.learning_rate
    ema = {"use_ema": bool(config.ema_momentum), "ema_momentum": config.ema_momentum or 0.99}
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=config.momentum, nesterov=True, **ema)
    return {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}[config.optimizer](rate, **ema)


def _network(config: RunConfig, data: Data) -> keras.Model:
    size = data.size
    if not config.init_model:
        head = {} if config.loss != "classification" else {
            "bins": data.bins, "rebalancing": config.rebalancing, "temperature": config.temperature,
            "vividness": config.vividness}
        try:
            return models.build(config.model, size, **head)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    net = keras.models.load_model(config.init_model, compile=False)
    expected = net.input_shape[1:3]
    if tuple(expected) != (size, size):
        raise ConfigError(f"the records are {size}x{size} but --init_model {config.init_model} "
                                     f"takes {expected[0]}x{expected[1]}")
    return net


def _training_data(strategy, data: Data, config: RunConfig, global_batch: int, first_epoch: int):
    """An endless stream of epochs, each shuffled by (seed + epoch): a resumed run sees what it would have seen."""

    def per_pipeline(context: tf.distribute.InputContext):
        def epoch(number):
            return dataset.make_dataset(
                data.train, context.get_per_replica_batch_size(global_batch), training=True,
                folds=data.train_folds, input_context=context, seed=config.seed + number,
                shuffle_buffer=config.shuffle_buffer, augmentation=config.augment)

        return tf.data.Dataset.range(first_epoch, sys.maxsize).flat_map(epoch).prefetch(tf.data.AUTOTUNE)

    return strategy.distribute_datasets_from_function(per_pipeline)


def _callbacks(config, layout, data, cluster, global_batch, write_dir):
    monitor = "val_loss"
    # The weights' average, when kept, goes into the model for validation and stays there over each
    # epoch's end: the callbacks after this one score, save and log the average.
    keras_callbacks = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.ema_momentum else []
    unseen = data.unseen(global_batch)
    if unseen is not None:
        keras_callbacks.append(trainer_callbacks.HeldOutValidation(unseen))
    keras_callbacks += [
        trainer_callbacks.Throughput(global_batch),
        keras.callbacks.TerminateOnNaN(),
        trainer_callbacks.BestWeights(f"{write_dir}/checkpoints/best.weights.h5", monitor),
        trainer_callbacks.History(f"{write_dir}/history.csv"),
        keras.callbacks.TensorBoard(f"{write_dir}/logs", write_graph=False, profile_batch=0),
        trainer_callbacks.Progress(global_batch),
    ]
    if config.early_stopping_patience:
        keras_callbacks.append(keras.callbacks.EarlyStopping(monitor, patience=config.early_stopping_patience))
    if config.reduce_lr_patience:
        keras_callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor, factor=0.5,
                                                                 patience=config.reduce_lr_patience))
    if config.time_budget_minutes is not None:
        if cluster.workers > 1:
            raise ConfigError("--time_budget_minutes works with one worker only: workers would not "
                                         "agree on when to stop; use --epochs")
        keras_callbacks.append(trainer_callbacks.TimeBudget(config.time_budget_minutes))
    if config.log_images_every and cluster.is_chief:
        l8, ab8 = next(iter(data.evaluation(config.num_log_images)))
        keras_callbacks.append(trainer_callbacks.PhotoLogger(f"{write_dir}/logs/images", l8.numpy(),
                                                             ab8.numpy(), config.log_images_every))
    keras_callbacks.append(trainer_callbacks.ResumableBackup(layout.backup, keras_callbacks, cluster.is_chief))
    return keras_callbacks


def _history(path: str) -> list[dict]:
    """history.csv rows, one per epoch (a row repeated by an interrupted epoch counts once)."""
    if not tf.io.gfile.exists(path):
        return []
    with tf.io.gfile.GFile(path) as handle:
        rows = {int(row["epoch"]): row for row in csv.DictReader(handle)}
    return [rows[epoch] for epoch in sorted(rows)]


def _versions() -> dict:
    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__}


def weights_fingerprint(net: keras.Model) -> str:
    """A short hash of every weight: workers that trained in sync print the same one."""
    digest = hashlib.sha256()
    for weight in net.get_weights():
        digest.update(np.ascontiguousarray(weight, np.float32).tobytes())
    return digest.hexdigest()[:16]


def _summary(result: dict, net: keras.Model, layout: Layout) -> str:
    """The test metrics beside the gray baseline's (the chief's), and the weights' fingerprint (every worker's)."""
    lines = []
    if "test" in result:
        lines.append(f"{'test photos':<24}{'model':>10}{'gray':>10}")
        for name in metrics.SHOWN:
            lines.append(f"{metrics.TITLES[name]:<24}{result['test'][name]:>10.4f}"
                         f"{result['gray_baseline']['test'][name]:>10.4f}")
        lines.append(f"per class and the best and worst photos: {layout.evaluation}/")
    lines.append(f"weights fingerprint: {weights_fingerprint(net)}")
    return "\n".join(lines)


@contextlib.contextmanager
def _dtype_policy(name: str):
    """Layers made inside compute as the Keras policy `name` says; the global policy is restored after."""
    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)


def _build(strategy, config: RunConfig, data: Data, jit: bool):
    """The model to train and the gray baseline, every variable created in the strategy's scope.

    The network and its training model take the precision policy; under mixed_float16 Keras's
    `compile` wraps the optimizer in a LossScaleOptimizer, whose scale the train step applies.
    """
    loss_fn = losses.build(config.loss, data.bins, config.rebalancing)
    with strategy.scope():
        with _dtype_policy(config.precision):
            net = _network(config, data)
            model = colorizer.Colorizer(net, loss_fn, jit, seed=config.seed, train_hints=config.train_hints)
            model.compile(optimizer=_optimizer(config), jit_compile=False)
        model.build_all(data.size)
        gray_loss = loss_fn if not colour_classes.is_classifier(net) else losses.mae
        gray = colorizer.Colorizer(models.gray_baseline(data.size, net.input_shape[-1]), gray_loss, jit)
        gray.compile(jit_compile=False)
        gray.build_all(data.size)
    return model, gray


def _evaluate(model, gray, data: Data, global_batch: int, layout: Layout, is_chief: bool) -> dict:
    """Validation and test metrics of the model and of the gray baseline, on the same photos.

    Validation on every worker, as in training; the test report (per class, with a contact sheet,
    as `python -m trainer.evaluate` writes it) by the chief, into evaluation/.
    """
    evaluation = data.evaluation(global_batch)
    result = {"val": metrics.set_metrics(model.evaluate(evaluation, return_dict=True, verbose=0)),
              "gray_baseline": {"val": metrics.set_metrics(gray.evaluate(evaluation, return_dict=True, verbose=0))}}
    if not is_chief:
        return result
    prep = data.test.preparation
    tests = data.test.num_examples(holdout=data.holdout)
    print(f"Scoring the {tests} test photos", flush=True)
    batches = scoring.record_batches(data.test, global_batch, prep, data.holdout)
    report = scoring.report(model.net, prep, batches, f"{data.test.data_dir} (test split)", layout.evaluation,
                            TEST_SHEET_PHOTOS, total=tests)
    result["test"], result["gray_baseline"]["test"] = report["overall"]["model"], report["overall"]["gray"]
    if data.holdout:
        print(f"Scoring the {data.unseen_examples()} photos of the held-out {data.holdout.describe()}", flush=True)
        batches = scoring.labelled_batches(data.unseen(global_batch, with_labels=True))
        report = scoring.report(model.net, prep, batches, f"{data.test.data_dir} (held out: {data.holdout.describe()})",
                                layout.unseen_evaluation, TEST_SHEET_PHOTOS, total=data.unseen_examples())
        result["unseen"], result["gray_baseline"]["unseen"] = report["overall"]["model"], report["overall"]["gray"]
    return result


def train(config: RunConfig) -> str:
    """Train, evaluate and export as `config` says; return a summary."""
    layout = Layout(config.model_dir)
    cluster = distribute.read_cluster()
    strategy = distribute.make_strategy(config.strategy, cluster)
    global_batch = config.batch_size
    if global_batch % strategy.num_replicas_in_sync:
        raise ConfigError(f"--batch_size={global_batch} is not divisible by the "
                                     f"{strategy.num_replicas_in_sync} replicas")
    data = Data(config, global_batch)
    if _check_run_dir(layout, config, cluster.is_chief):
        return f"{layout.root} holds a finished run (metrics.json); nothing to do"
    jit = distribute.jit_default(config.jit_compile)
    keras.utils.set_random_seed(config.seed)
    model, gray = _build(strategy, config, data, jit)

    first_epoch = trainer_callbacks.initial_epoch(layout.backup)
    model.fit(_training_data(strategy, data, config, global_batch, first_epoch), epochs=config.epochs,
              steps_per_epoch=config.steps_per_epoch or data.train_examples // global_batch,
              validation_data=data.evaluation(global_batch),
              callbacks=_callbacks(config, layout, data, cluster, global_batch,
                                   distribute.writable_dir(layout.root, cluster)),
              shuffle=False, verbose=1 if sys.stdout.isatty() else 2)
    distribute.barrier(strategy)  # every worker waits for the chief's last checkpoint
    if tf.io.gfile.exists(layout.best_weights):
        model.load_weights(layout.best_weights)
    result = _evaluate(model, gray, data, global_batch, layout, cluster.is_chief)
    if cluster.is_chief:
        _write_outputs(model.net, layout, config, data, strategy, cluster, jit, result)
    distribute.barrier(strategy)  # workers leave together: one that exits early looks like a crash
    return _summary(result, model.net, layout)


def _write_outputs(net, layout, config, data, strategy, cluster, jit, result) -> None:
    history = _history(layout.history)
    plots.training_curves(layout.curves, history)
    net = models.detached(net)
    model_file.save(net, layout.keras_model, data.train.preparation)
    serving.export(net, layout.saved_model, data.train.preparation)
    speeds = [float(row["examples_per_second"]) for row in history[1:] or history]
    _write_json(layout.metrics, {
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": config.model, "parameters": net.count_params(),
        "data": data.describe(),
        "strategy": {"name": distribute.kind(strategy), "replicas": strategy.num_replicas_in_sync,
                     "workers": cluster.workers, "jit_compile": jit},
        "epochs_run": len(history),
        "best_epoch": int(np.argmin([float(row["val_loss"]) for row in history])) + 1 if history else None,
        "training_seconds": sum(float(row["epoch_seconds"]) for row in history),
        "train_examples_per_second": float(np.mean(speeds)) if speeds else None,
        **result,
        "flags": config.to_json(),
        "versions": _versions(),
    })
