"""One training run: data, strategy, model, callbacks, the trainer's own loop (`epochs`), final evaluation,
outputs.

A run lives in its model_dir; `trainer.training.run_files` lists its files.
"""

import contextlib
import datetime
import hashlib
import platform
import sys

import keras
import numpy as np
import tensorflow as tf

from pipeline import dataset
from pipeline.errors import ConfigError
from trainer import data_service
from trainer.training import (backup, callbacks as trainer_callbacks, colorizer, distribute, epochs, loop, losses,
                              run_files, schedules, species, transfer)
from trainer.training.config import DEFAULTS, RunConfig
from trainer.training.run_files import RunFiles
from trainer.training.splits import Splits
from trainer.network import colour_classes, hints, model_file, models
from trainer.evaluation import metrics, photo_sets, plots, report_files, scoring
from trainer.applying import serving

# What may differ when a run is resumed: how long it trains, where and how it runs, what it logs.
# Anything else changes what the run has computed so far, and is refused.
_MAY_CHANGE = ("epochs", "time_budget_minutes", "overwrite", "strategy", "accelerator", "deterministic",
               "jit_compile", "logical_cpus",
               "log_images_every", "num_log_images", "early_stopping_patience", "checkpoint_every_steps",
               "profile_steps", "log_every_steps", "budget_ends")
TEST_SHEET_PHOTOS = 4  # best and worst test photos on the contact sheet
_PASS_SEEDS = 1_000_003  # seed + epoch + pass x this: no two passes of any run's epochs share a seed
HELD_OUT_PREFIX = "val_unseen_"  # validation's metrics on the held-out photos, beside the others' (val_)


def _diverged(root: str, where: dict) -> trainer_callbacks.Diverged:
    return trainer_callbacks.Diverged(
        f"--model_dir {root}: the run diverged (training loss {where['loss']} at step {where['step']} of "
        f"epoch {where['epoch']}); lower --learning_rate, and --overwrite to start again")


def _prepare_run_dir(files: RunFiles, config: RunConfig, is_chief: bool, strategy) -> bool:
    """True when the run already finished. The chief clears (--overwrite) and claims the folder first;
    after a barrier every worker checks the same folder. Refuses to resume a different or diverged run."""
    if is_chief:
        if config.overwrite and tf.io.gfile.exists(files.root):
            tf.io.gfile.rmtree(files.root)
        if not tf.io.gfile.exists(files.config):
            run_files.write_json(files.config, config.to_json())
    distribute.barrier(strategy)
    finished = run_files.read_json(files.metrics)
    if finished is not None:
        if "diverged" in finished:
            raise _diverged(files.root, finished["diverged"])
        return True
    previous, now, default = run_files.read_json(files.config), config.to_json(), DEFAULTS.to_json()
    changed = [f"--{k}={previous.get(k, default[k])} (now {value})" for k, value in now.items()
               if k not in _MAY_CHANGE and previous.get(k, default[k]) != value]
    if changed:
        raise ConfigError(f"--model_dir {files.root} holds a run with {', '.join(changed)}; use another "
                          "--model_dir, or --overwrite to start again")
    return False


def _learning_rate(config: RunConfig, total_steps: int | None, start_step: int = 0):
    """--lr_schedule cosine: warm-up, then a cosine decay to 0 at the run's last step (a schedule object, so
    the checkpointed step count restores it); wsd: warm-up, constant, then a linear decay to 0 over the
    last --cooldown_steps of the run (which starts at `start_step` when it goes on from --init_checkpoint);
    constant: the peak rate (warmed up by a callback, halved by ReduceLROnPlateau when asked)."""
    if config.lr_schedule == "wsd":
        return schedules.WarmupStableDecay(config.peak_learning_rate, config.warmup_steps,
                                           start_step + (total_steps or 0) - config.cooldown_steps,
                                           config.cooldown_steps)
    if config.lr_schedule == "constant" or not total_steps:
        return config.peak_learning_rate
    warmup = min(config.warmup_steps, total_steps - 1)
    return keras.optimizers.schedules.CosineDecay(
        config.peak_learning_rate / max(warmup, 1) if warmup else config.peak_learning_rate,
        decay_steps=total_steps - warmup, warmup_target=config.peak_learning_rate if warmup else None,
        warmup_steps=warmup)


def _optimizer(config: RunConfig, total_steps: int | None = None, start_step: int = 0) -> keras.optimizers.Optimizer:
    rate = _learning_rate(config, total_steps, start_step)
    ema = {"use_ema": bool(config.ema_momentum), "ema_momentum": config.ema_momentum or 0.99}
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=config.momentum, nesterov=True, **ema)
    return {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}[config.optimizer](rate, **ema)


def _network(config: RunConfig, splits: Splits) -> keras.Model:
    size = splits.size
    if not config.init_model:
        head = {} if config.loss != "classification" else {
            "bins": splits.bins, "rebalancing": config.rebalancing, "temperature": config.temperature,
            "vividness": config.vividness}
        try:
            return models.build(config.model, size, **head)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    net = models.single_view(keras.models.load_model(config.init_model, compile=False))
    expected = net.input_shape[1:3]
    if tuple(expected) != (size, size):
        raise ConfigError(f"the records are {size}x{size} but --init_model {config.init_model} "
                          f"takes {expected[0]}x{expected[1]}")
    if config.loss != "classification":
        return net
    if not colour_classes.is_classifier(net):
        raise ConfigError(f"--init_model {config.init_model} regresses ab: --loss=classification needs a colour "
                          "classifier; give a regression --loss")
    return transfer.onto_bins(net, splits.bins, config.rebalancing)


def training_stream(splits: Splits, config: RunConfig, global_batch: int, epoch_steps: int, start: backup.Position,
                    context: tf.distribute.InputContext = tf.distribute.InputContext()) -> tf.data.Dataset:
    """This input pipeline's training batches from `start` on, endless: epoch e is `epoch_steps` steps of the
    training photos shuffled and augmented by (seed + e), each pipeline repeating its share if it runs short.
    Each element holds one batch per replica the pipeline feeds (`context`), stacked on a leading axis.

    So every epoch's batches follow from its number alone, and a stream started at any step of any
    epoch gives what an uninterrupted one would have from there.
    """
    replicas_here = context.num_replicas_in_sync // context.num_input_pipelines

    to_species = species.lookup(splits.species) if config.species_weight else None

    def one_pass(seed):
        batches = dataset.make_dataset(
            splits.train, context.get_per_replica_batch_size(global_batch), training=True,
            folds=splits.train_folds, input_context=context, seed=seed, shuffle_buffer=config.shuffle_buffer,
            augmentation=config.augment, crop_size=config.train_crop, view_size=config.view_size,
            with_labels=bool(to_species))
        return batches.map(lambda l8, ab8, label: (l8, ab8, to_species(label))) if to_species else batches

    def epoch(number):
        # An epoch longer than the pipeline's photos passes over them again, each pass shuffled by a seed of
        # its own rather than by a reshuffling `repeat`, whose draws a checkpoint of the iterator would lose.
        passes = tf.data.Dataset.range(sys.maxsize).flat_map(
            lambda again: one_pass(config.seed + number + again * _PASS_SEEDS))
        batches = passes.take(epoch_steps * replicas_here)
        return batches.skip(tf.cast(number == start.epoch, tf.int64) * start.step * replicas_here)

    # The resumed epoch skips inside itself, so that tf.data service workers, each making whole epochs, can too.
    stream = tf.data.Dataset.range(start.epoch, sys.maxsize).flat_map(epoch)
    stream = data_service.distribute(stream, config.data_service)
    # Each pass's shuffle draws from a seed generator made inside `epoch`: state a checkpoint of the iterator
    # would refuse as external. A pass is shuffled once and its iterator saves its own draws, so the restored
    # stream goes on exactly (tests/test_training_stream.py).
    options = tf.data.Options()
    options.experimental_external_state_policy = tf.data.experimental.ExternalStatePolicy.IGNORE
    return stream.batch(replicas_here, drop_remainder=True).prefetch(tf.data.AUTOTUNE).with_options(options)


def _input_context(strategy, cluster: distribute.Cluster) -> tf.distribute.InputContext:
    """This worker's place among the input pipelines: one per worker."""
    return tf.distribute.InputContext(cluster.workers, cluster.id_in_cluster, strategy.num_replicas_in_sync)


def _profile_steps(setting: str | None) -> tuple[int, int] | None:
    """--profile_steps START,END as (START, END); None when not asked."""
    if not setting:
        return None
    try:
        first, last = (int(part) for part in setting.split(","))
    except ValueError:
        first = last = 0
    if not 0 < first <= last:
        raise ConfigError(f"--profile_steps={setting}: give the first and last step to profile, as START,END "
                          "(1 <= START <= END)")
    return first, last


def _callbacks(config: RunConfig, files: RunFiles, splits: Splits, cluster, epoch_steps: int):
    monitor, global_batch = "val_loss", config.batch_size
    write_dir = distribute.writable_dir(files.root, cluster)
    profile = _profile_steps(config.profile_steps)
    keras_callbacks = [
        trainer_callbacks.Throughput(global_batch),
        *([trainer_callbacks.WarmUp(config.peak_learning_rate, config.warmup_steps, epoch_steps)]
          if config.warmup_steps and config.lr_schedule == "constant" else []),
        *([trainer_callbacks.Profile(f"{write_dir}/logs/train", *profile, epoch_steps)] if profile else []),
        trainer_callbacks.BestWeights(f"{write_dir}/checkpoints/best.weights.h5", monitor),
        trainer_callbacks.History(f"{write_dir}/history.csv"),
        trainer_callbacks.Summaries(f"{write_dir}/logs", global_batch),
        trainer_callbacks.Progress(global_batch, config.epochs, config.time_budget_minutes),
    ]
    if config.early_stopping_patience:
        keras_callbacks.append(keras.callbacks.EarlyStopping(monitor, patience=config.early_stopping_patience))
    if config.reduce_lr_patience:
        if config.lr_schedule != "constant":
            raise ConfigError(f"--reduce_lr_patience halves a constant learning rate; --lr_schedule="
                              f"{config.lr_schedule} decays it already: give --lr_schedule=constant")
        keras_callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor, factor=0.5,
                                                                 patience=config.reduce_lr_patience))
    if config.time_budget_minutes is not None:
        if cluster.workers > 1:
            raise ConfigError("--time_budget_minutes works with one worker only: workers would not "
                              "agree on when to stop; use --epochs")
        keras_callbacks.append(trainer_callbacks.TimeBudget(config.time_budget_minutes))
    if config.log_images_every and cluster.is_chief:
        l8, ab8 = next(iter(splits.evaluation(config.num_log_images)))
        keras_callbacks.append(trainer_callbacks.PhotoLogger(f"{write_dir}/logs/images", l8.numpy(),
                                                             ab8.numpy(), config.log_images_every))
    return keras_callbacks


def _epoch_steps(config: RunConfig, splits: Splits, global_batch: int) -> int:
    return config.steps_per_epoch or splits.train_examples // global_batch


def _train_epochs(model, strategy, config: RunConfig, splits: Splits, files: RunFiles, cluster) -> dict | None:
    """Train from the last checkpoint (none: from the start) to --epochs; returns where the loss diverged
    (None if it did not).

    The training data's position is in the checkpoint: the stream starts at the run's start and the
    checkpoint puts it where training stands. Through the tf.data service, whose stream cannot be
    checkpointed, it starts where the checkpoint says instead.
    """
    global_batch = config.batch_size
    epoch_steps = _epoch_steps(config, splits, global_batch)
    start = backup.position(backup.read_state(files.backup)) if config.data_service else backup.Position()
    stream = training_stream(splits, config, global_batch, epoch_steps, start, _input_context(strategy, cluster))
    training = loop.Loop(strategy, model, stream)
    keras_callbacks = _callbacks(config, files, splits, cluster, epoch_steps)
    saves = backup.Backup(files.backup, model, training, keras_callbacks, cluster, strategy,
                          with_data=not config.data_service)
    schedule = epochs.Schedule(config.epochs, epoch_steps, config.steps_per_execution, config.checkpoint_every_steps,
                               config.log_every_steps)
    validation = {"val_": splits.evaluation(global_batch)}
    if splits.holdout:
        validation[HELD_OUT_PREFIX] = splits.unseen(global_batch)
    return epochs.Epochs(model, training, saves, keras_callbacks, schedule, validation, strategy,
                         pause_when_stopped=config.budget_ends == "pause").run()


def _history(path: str) -> list[dict]:
    """history.csv rows, one per epoch (a row repeated by an interrupted epoch counts once)."""
    return list({int(row["epoch"]): row for row in run_files.history_rows(path)}.values())


def _versions() -> dict:
    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__}


def weights_fingerprint(net: keras.Model) -> str:
    """A short hash of every weight: workers that trained in sync print the same one."""
    digest = hashlib.sha256()
    for weight in net.get_weights():
        digest.update(np.ascontiguousarray(weight, np.float32).tobytes())
    return digest.hexdigest()[:16]


def _summary(result: dict, net: keras.Model, files: RunFiles, is_chief: bool) -> str:
    """The test metrics beside the gray baseline's (the chief's), and the weights' fingerprint (every worker's)."""
    lines = []
    if is_chief:
        lines.append(f"{'test photos':<24}{'model':>10}{'gray':>10}")
        for name in metrics.SHOWN:
            lines.append(f"{metrics.TITLES[name]:<24}{result['test'][name]:>10.4f}"
                         f"{result['gray_baseline']['test'][name]:>10.4f}")
        lines.append(f"per class and the best and worst photos: {files.evaluation}/")
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


def _build(strategy, config: RunConfig, splits: Splits, jit: bool) -> colorizer.Colorizer:
    """The model to train, every variable created in the strategy's scope; with --init_checkpoint, its network
    and optimizer (the step count included, where the learning rate's schedule goes on from) taken from there.

    The network and its training model take the precision policy; under mixed_float16 Keras's
    `compile` wraps the optimizer in a LossScaleOptimizer, whose scale the train step applies.
    """
    loss_fn = losses.build(config.loss, splits.bins, config.rebalancing)
    start = backup.Start.of(config.init_checkpoint)
    simulated = hints.Simulated.from_flags(config.hint_points_p, config.hint_max_patch) if config.train_hints else None
    with strategy.scope():
        with _dtype_policy(config.precision):
            net = _network(config, splits)
            if config.train_crop or config.view_size:
                net = models.accept_any_size(net)
            try:
                model = colorizer.Colorizer(net, loss_fn, jit, seed=config.seed, simulated_hints=simulated,
                                            species_count=len(splits.species), species_weight=config.species_weight)
            except ValueError as error:
                raise ConfigError(f"--species_weight: {error}") from None
            total = config.epochs * _epoch_steps(config, splits, config.batch_size)
            model.compile(optimizer=_optimizer(config, total, start.step), jit_compile=False)
        model.build_all(splits.size)
        start.restore(model)
    return model


def _evaluate(model: colorizer.Colorizer, splits: Splits, global_batch: int, files: RunFiles, is_chief: bool) -> dict:
    """Validation, test and held-out metrics of the model and of the gray baseline, on the same photos.

    Every split goes through the model's one evaluator, each global batch split across the replicas of
    every worker as in training; the chief writes the test and held-out reports (per class, with a
    contact sheet, as `python -m trainer.evaluate` writes them) into evaluation/.
    """
    prep, result = splits.test.preparation, {"gray_baseline": {}}
    sources = [("val", photo_sets.labelled_batches(splits.evaluation(global_batch, with_labels=True)),
                splits.describe()["val_examples"], "validation split", None),
               ("test", photo_sets.record_batches(splits.test, global_batch, prep, splits.holdout),
                splits.test.num_examples(holdout=splits.holdout), "test split", files.evaluation)]
    if splits.holdout:
        sources.append(("unseen", photo_sets.labelled_batches(splits.unseen(global_batch, with_labels=True)),
                        splits.unseen_examples(), f"held out: {splits.holdout.describe()}", files.unseen_evaluation))
    for name, batches, count, what, output in sources:
        print(f"Scoring the {count} photos of the {what}", flush=True)
        summary, sheet = scoring.report(model.evaluator, prep,
                                        photo_sets.PhotoSet(batches, f"{splits.test.data_dir} ({what})", count),
                                        TEST_SHEET_PHOTOS)
        result[name], result["gray_baseline"][name] = summary["overall"]["model"], summary["overall"]["gray"]
        if output and is_chief:
            report_files.write(output, summary, sheet)
    return result


def train(config: RunConfig) -> str:
    """Train, evaluate and export as `config` says; return a summary."""
    files = RunFiles(config.model_dir)
    cluster = distribute.read_cluster()
    strategy = distribute.make_strategy(config.strategy, cluster)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    global_batch = config.batch_size
    if global_batch % strategy.num_replicas_in_sync:
        raise ConfigError(f"--batch_size={global_batch} is not divisible by the "
                          f"{strategy.num_replicas_in_sync} replicas")
    splits = Splits(config, global_batch)
    epoch_steps = _epoch_steps(config, splits, global_batch)
    if _prepare_run_dir(files, config, cluster.is_chief, strategy):
        return f"{files.root} holds a finished run (metrics.json); nothing to do"
    jit = distribute.jit_default(config.jit_compile)
    print(f"Training on {distribute.describe(strategy, cluster)}, precision {config.precision}, "
          f"XLA {'on' if jit else 'off'}, op determinism {'on' if config.deterministic else 'off'}", flush=True)
    resume = backup.read_state(files.backup)
    if not config.data_service:  # through the service the stream is rebuilt from the position, for any layout
        backup.refuse_another_layout(resume, strategy, cluster)
    distribute.agreed(strategy, backup.position(resume), cluster.is_chief)  # every worker resumes where the chief does
    keras.utils.set_random_seed(config.seed)
    model = _build(strategy, config, splits, jit)

    diverged = _train_epochs(model, strategy, config, splits, files, cluster)
    distribute.barrier(strategy)  # every worker waits for the chief's last checkpoint
    facts = {"flags": config.to_json(), "versions": _versions()}
    if diverged:
        if cluster.is_chief:
            run_files.write_json(files.metrics, {"diverged": diverged, **facts})
        raise _diverged(files.root, diverged)
    if tf.io.gfile.exists(files.best_weights):
        model.load_weights(files.best_weights)
    result = _evaluate(model, splits, global_batch, files, cluster.is_chief)
    if cluster.is_chief:
        facts["strategy"] = {"name": distribute.strategy_name(strategy), "replicas": strategy.num_replicas_in_sync,
                             "workers": cluster.workers, "jit_compile": jit}
        _write_outputs(model.net, files, splits, epoch_steps,
                       {"model": config.model, **result, **facts})
    distribute.barrier(strategy)  # workers leave together: one that exits early looks like a crash
    return _summary(result, model.net, files, cluster.is_chief)


def _write_outputs(net, files: RunFiles, splits: Splits, epoch_steps: int, record: dict) -> None:
    """curves.png, both exported models, and metrics.json (`record` and what the history says), last."""
    history = _history(files.history)
    plots.training_curves(files.curves, history)
    net = models.detached(net)
    model_file.save(net, files.keras_model, splits.train.preparation)
    serving.export(net, files.saved_model, splits.train.preparation)
    speeds = [float(row["examples_per_second"]) for row in history[1:] or history]
    steps = sum(int(float(row.get("steps") or epoch_steps)) for row in history)
    run_files.write_json(files.metrics, {
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "parameters": net.count_params(),
        "data": splits.describe(),
        # An epoch the time budget cut short counts for the share of its steps it ran.
        "epochs_run": round(steps / epoch_steps, 2),
        "best_epoch": int(min(history, key=lambda row: float(row["val_loss"]))["epoch"]) if history else None,
        "training_seconds": sum(float(row["epoch_seconds"]) for row in history),
        "train_examples_per_second": float(np.mean(speeds)) if speeds else None,
        **record,
    })
