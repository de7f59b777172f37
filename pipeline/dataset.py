"""tf.data reader for the Beam job's output: uint8 (L8, ab8) batches of static shape.

Follows the usual sharded-TFRecord recipe: list the split's files from the
manifest, give each input pipeline its own files, shuffle files, read several
of them in parallel, shuffle records, parse each record straight into its
batch (tf.data fuses the map into the batching, dropping the remainder when
training, so XLA sees one shape), prefetch. The order is a function of the
seed alone, so a run can be repeated; evaluation reads in a fixed order.

Where the CPU goes (`benchmarks/reader_benchmark.py`, stage by stage, train
split of the 200x200 uncompressed records, batch 64, on this project's 2-core
machine shared with a training run): reading the bare records about 131 us
per example, parsing each record into its batch about 41 more, shuffling 18,
and augmentation about 336: two thirds of the training default's 526. An
earlier `perf` profile put much of the reading in the records' CRC32C
checksums and in copying each 120 kB record several times. Batching
serialized records and parsing whole batches costs as much or more (that
profile: 7.7 MB of new memory per batch at 64, whose page faults outweigh the
per-record calls), and so does reading one file at a time. Inflating GZIP
records costs far more than all of that.
"""

import dataclasses
import functools
import json
import logging

import tensorflow as tf

from pipeline import schema, splits
from pipeline.errors import DataError
from pipeline.manifest import Manifest
from pipeline.preparation import Preparation

AUTOTUNE = tf.data.AUTOTUNE
MIN_CROP = 0.7  # augmentation zooms in on at most this share of each side


def load_manifest(data_dir: str) -> Manifest:
    path = f"{data_dir.rstrip('/')}/{schema.MANIFEST}"
    if not tf.io.gfile.isdir(data_dir):
        raise DataError(f"{data_dir!r} does not exist (or is not a folder): give the --output folder of a "
                        "`python -m beam_jobs.preprocess` run")
    if not tf.io.gfile.exists(path):
        raise DataError(f"no {schema.MANIFEST} in {data_dir}: not the output of a finished "
                        "`python -m beam_jobs.preprocess` run")
    with tf.io.gfile.GFile(path) as handle:
        return Manifest.from_json(json.load(handle), path)


@dataclasses.dataclass(frozen=True)
class Holdout:
    """Classes or sources a run never trains or validates on, and scores apart as unseen.

    Holding out whole species (or a whole source) measures what every user's photos
    are: out of the training distribution. Records are kept or dropped by their
    `label` or `source` feature; the manifest's per-split counts give how many.
    """

    labels: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    def __post_init__(self):
        if self.labels and self.sources:
            raise DataError("hold out labels or sources, not both: the manifest counts each alone, so the "
                            "photos left could not be counted")

    def __bool__(self) -> bool:
        return bool(self.labels or self.sources)

    @property
    def feature(self) -> str:
        return schema.SOURCE if self.sources else schema.LABEL

    @property
    def values(self) -> tuple[str, ...]:
        return self.sources or self.labels

    def describe(self) -> str:
        return f"{'sources' if self.sources else 'classes'} {', '.join(self.values)}"


@dataclasses.dataclass(frozen=True)
class Records:
    """One split of a preprocessed data directory."""

    data_dir: str
    split: str
    manifest: Manifest

    @classmethod
    def open(cls, data_dir: str, split: str) -> "Records":
        if split not in splits.SPLITS:
            raise DataError(f"split must be one of {splits.SPLITS}, got {split!r}")
        return cls(data_dir.rstrip("/"), split, load_manifest(data_dir))

    @property
    def preparation(self) -> Preparation:
        return self.manifest.preparation

    @property
    def image_size(self) -> tuple[int, int]:
        return self.preparation.size, self.preparation.size

    @property
    def compression(self) -> str:
        return self.manifest.compression

    @property
    def files(self) -> list[str]:
        return [f"{self.data_dir}/{name}" for name in self.manifest.splits[self.split].shards]

    def ab_histogram(self) -> list[int]:
        """Pixel counts of this split over the ab grid of `pipeline.ab_bins`, as the Beam job counted them."""
        return list(self.manifest.splits[self.split].ab_histogram)

    def num_examples(self, folds=None, holdout: Holdout = Holdout(), held_out: bool = False) -> int:
        """Examples in `folds` (all if None) that are held out (`held_out`) or not."""
        entry = self.manifest.splits[self.split]
        if folds is not None and holdout:
            raise DataError("cross-validation folds and a holdout cannot be combined: the manifest counts "
                            "each alone")
        if folds is not None:
            return sum(entry.by_fold.get(fold, 0) for fold in folds)

        def counts(split_entry):
            return split_entry.by_source if holdout.sources else split_entry.by_label

        unknown = [v for v in holdout.values if not any(v in counts(e) for e in self.manifest.splits.values())]
        if unknown:
            raise DataError(f"the records in {self.data_dir} have no {holdout.feature} {', '.join(unknown)}")
        out = sum(counts(entry).get(value, 0) for value in holdout.values)
        return out if held_out else entry.examples - out


def _spec(*names: str) -> dict:
    """A parsing spec for these features, typed as `pipeline.schema` declares them."""
    types = {**dict.fromkeys(schema.BYTES_FEATURES, tf.string), **dict.fromkeys(schema.INT_FEATURES, tf.int64)}
    return {name: tf.io.FixedLenFeature([], types[name]) for name in names}


def _parser(height: int, width: int, with_labels: bool, batched: bool):
    """Serialized record -> (L8 (h, w, 1), ab8 (h, w, 2)[, label]), uint8 as stored; or a batch of them."""
    spec = _spec(schema.L8, schema.AB8, *([schema.LABEL] if with_labels else []))
    parse_fn = tf.io.parse_example if batched else tf.io.parse_single_example

    def parse(serialized):
        features = parse_fn(serialized, spec)
        lead = [size or -1 for size in serialized.shape]  # []: one record; [batch]: static if the remainder is dropped
        l8 = tf.reshape(tf.io.decode_raw(features[schema.L8], tf.uint8), (*lead, height, width, 1))
        ab8 = tf.reshape(tf.io.decode_raw(features[schema.AB8], tf.uint8), (*lead, height, width, 2))
        return (l8, ab8, features[schema.LABEL]) if with_labels else (l8, ab8)

    return parse


def _in_folds(folds):
    wanted = tf.constant(sorted(folds), tf.int64)
    spec = _spec(schema.FOLD)

    def keep(serialized):
        return tf.reduce_any(tf.equal(tf.io.parse_single_example(serialized, spec)[schema.FOLD], wanted))

    return keep


def _held_out(holdout: Holdout, wanted: bool):
    values = tf.constant(list(holdout.values))
    spec = _spec(holdout.feature)

    def keep(serialized):
        value = tf.io.parse_single_example(serialized, spec)[holdout.feature]
        return tf.equal(tf.reduce_any(tf.equal(value, values)), wanted)

    return keep


def _flip_some(planes: tf.Tensor, flip: tf.Tensor) -> tf.Tensor:
    """Mirror the photos of a batch where `flip` is true: one gather of each photo's columns, in or out of order."""
    width = planes.shape[2]
    columns = tf.where(flip[:, None], tf.range(width - 1, -1, -1)[None], tf.range(width)[None])
    return tf.gather(planes, columns, axis=2, batch_dims=1)


def _windows(seed: int, number, pipeline: int, batch, height: int, width: int, size: int):
    """The top-left corner of each photo's random `size` window: stateless, keyed on (seed, pipeline, batch number)."""
    key = tf.random.experimental.stateless_fold_in(tf.stack([tf.cast(seed, tf.int64), number]), pipeline + 7919)
    seeds = tf.random.experimental.stateless_split(key, 2)
    top = tf.random.stateless_uniform([batch], seeds[0], 0, height - size + 1, tf.int32)
    left = tf.random.stateless_uniform([batch], seeds[1], 0, width - size + 1, tf.int32)
    return top, left


def _taps(start, length, size: int):
    """Bilinear resizing of [start, start + length) to `size` (half-pixel centres, as `tf.image.resize`):
    for each output position, its two source positions and the second one's weight."""
    position = (tf.range(size, dtype=tf.float32) + 0.5) * (tf.cast(length, tf.float32) / size) - 0.5
    position = tf.clip_by_value(position, 0.0, tf.cast(length - 1, tf.float32))
    low = tf.floor(position)
    first = tf.cast(low, tf.int32)
    return start + first, start + tf.minimum(first + 1, length - 1), position - low


@tf.function(jit_compile=True)
def _sample(planes: tf.Tensor, rows, columns) -> tf.Tensor:
    """uint8 (b, h, w, c) planes sampled bilinearly at `rows` (b, h') and `columns` (b, w'), each a
    (first, second, weight) of `_taps` per photo: rows first, then columns, rounded back to uint8.

    Compiled with XLA, which fuses the gathers, blends and rounding that TensorFlow's own ops
    would each write out in full. (The random draws stay outside: XLA's stateless generators
    give other numbers than TensorFlow's kernels.)"""
    values = tf.cast(planes, tf.float32)

    def along(values, taps, axis, shape):
        first, second, weight = taps
        weight = tf.reshape(weight, shape)
        return (tf.gather(values, first, axis=axis, batch_dims=1) * (1.0 - weight)
                + tf.gather(values, second, axis=axis, batch_dims=1) * weight)

    values = along(values, rows, 1, (-1, rows[2].shape[1], 1, 1))
    values = along(values, columns, 2, (-1, 1, columns[2].shape[1], 1))
    return tf.cast(tf.round(values), tf.uint8)


def augment(seed: int, pipeline: int = 0, crop_size: int = 0, view_size: int = 0):
    """Random scale-and-crop back to the same size (or, with `view_size`, to that side: a smaller view of the
    whole photo, for more steps per hour) and random horizontal flips, on uint8 (L8, ab8) batches; then, with
    `crop_size`, each photo's random window of that side, as `crop` takes it.

    One crop (from `MIN_CROP` of each side to all of it) per batch, resized back bilinearly; a
    flip per photo. Stateless, keyed on (seed, input pipeline, batch number): a resumed run sees
    the same, and each worker's pipeline draws its own.

    Why one XLA-compiled gather-and-blend (`_sample`) rather than `tf.image.resize`, a flip,
    then `crop`: with windows, only the kept pixels are computed (1.16x to 1.28x less reader CPU
    at `--train_crop=128` in two runs of `benchmarks/reader_benchmark.py`); on whole photos it
    costs about what the former path did. Pixels equal `tf.image.resize`'s rounded result but for float rounding
    (at most one level, on a few values in 100,000).
    """

    def apply(number, batch_planes):
        l8, ab8, *labels = batch_planes  # labels, when read, pass through
        batch, height, width = tf.shape(l8)[0], l8.shape[1], l8.shape[2]
        scaled_h, scaled_w = (view_size, view_size) if view_size else (height, width)
        key = tf.random.experimental.stateless_fold_in(tf.stack([tf.cast(seed, tf.int64), number]), pipeline)
        seeds = tf.random.experimental.stateless_split(key, 4)
        scale = tf.random.stateless_uniform([], seeds[0], MIN_CROP, 1.0)
        crop_h = tf.cast(tf.round(scale * height), tf.int32)
        crop_w = tf.cast(tf.round(scale * width), tf.int32)
        top = tf.random.stateless_uniform([], seeds[1], 0, height - crop_h + 1, tf.int32)
        left = tf.random.stateless_uniform([], seeds[2], 0, width - crop_w + 1, tf.int32)
        flip = tf.random.stateless_uniform([batch], seeds[3]) < 0.5
        rows, columns = _taps(top, crop_h, scaled_h), _taps(left, crop_w, scaled_w)
        # Positions in the scaled photo each output pixel comes from: all of it, or each photo's window.
        out_h, out_w = (crop_size, crop_size) if crop_size else (scaled_h, scaled_w)
        at_rows, at_columns = tf.range(out_h)[None], tf.range(out_w)[None]
        if crop_size:
            window_top, window_left = _windows(seed, number, pipeline, batch, scaled_h, scaled_w, crop_size)
            at_rows, at_columns = window_top[:, None] + at_rows, window_left[:, None] + at_columns
        at_rows = tf.broadcast_to(at_rows, (batch, out_h))
        at_columns = tf.where(flip[:, None], scaled_w - 1 - at_columns, at_columns)  # a mirrored photo's columns
        row_taps = tuple(tf.gather(part, at_rows) for part in rows)
        column_taps = tuple(tf.gather(part, at_columns) for part in columns)
        return (_sample(l8, row_taps, column_taps), _sample(ab8, row_taps, column_taps), *labels)

    return apply


def crop(seed: int, size: int, pipeline: int = 0):
    """A random `size` x `size` window of each photo of a uint8 (L8, ab8) batch, at the photo's own scale.

    Training on windows of the 200x200 records costs a fraction of the whole photo per step
    (a 128-pixel window holds 0.41 of its pixels) while each pixel keeps the scale it has when
    the model colourizes a whole photo. Stateless, keyed on (seed, input pipeline, batch number),
    like `augment` (which takes the same windows when it is on).
    """

    def apply(number, batch_planes):
        l8, ab8, *labels = batch_planes  # labels, when read, pass through
        batch, height, width = tf.shape(l8)[0], l8.shape[1], l8.shape[2]
        top, left = _windows(seed, number, pipeline, batch, height, width, size)
        rows = top[:, None] + tf.range(size)[None, :]
        columns = left[:, None] + tf.range(size)[None, :]

        def window(planes):
            return tf.gather(tf.gather(planes, rows, axis=1, batch_dims=1), columns, axis=2, batch_dims=1)

        return (window(l8), window(ab8), *labels)

    return apply


@dataclasses.dataclass(frozen=True)
class Tuning:
    """How the reader spends the CPU. Every setting reads the same batches in the same order.

    The defaults spent the least CPU per example when profiled (see the module
    docstring); the alternatives are there so that `benchmarks/reader_benchmark.py`
    measures each against them.
    """

    parallel_reads: bool = True  # read READ_CYCLE files at once on tf.data's threads, not one record at a time
    batch_parse: bool = False  # batch serialized records, then parse whole batches (the earlier reader)
    read_buffer_bytes: int | None = None  # TFRecordDataset's buffer; None: TensorFlow's default (256 KiB)


READ_CYCLE = 16  # files read at once (fewer when a pipeline has fewer)


def _files(records: Records, training: bool, seed: int | None, pipelines: int, index: int) -> tf.data.Dataset:
    """This input pipeline's files, shuffled by the seed when training.

    Pipelines share the files, whole, when there are at least as many files as pipelines: each
    host then reads only its own. When the count does not divide evenly, some pipelines hold one
    file more than others and, as every pipeline takes the same steps per epoch, their photos
    come round less often (22 files on 8 hosts: 3 files or 2, so 1.5x as often): a warning says
    so, and `--num_shards` a multiple of the hosts (README) avoids it. Splitting by records instead
    would make every host read every file.
    """
    files = tf.data.Dataset.from_tensor_slices(records.files)
    if len(records.files) >= pipelines > 1:
        if training and len(records.files) % pipelines and index == 0:
            logging.warning("%d %s files over %d input pipelines: some read %d, others %d, and see their photos "
                            "less often per epoch; choose the Beam job's --num_shards so that this split's share of it is a "
                            "multiple of %d (README: How records are grouped into files)", len(records.files),
                            records.split, pipelines, -(-len(records.files) // pipelines),
                            len(records.files) // pipelines, pipelines)
        files = files.shard(pipelines, index)
    return files.shuffle(len(records.files), seed=seed, reshuffle_each_iteration=True) if training else files


def _read(files: tf.data.Dataset, records: Records, tuning: Tuning) -> tf.data.Dataset:
    """Serialized records, interleaved from several files in a fixed order (in parallel or not)."""
    return files.interleave(
        lambda path: tf.data.TFRecordDataset(path, records.compression, tuning.read_buffer_bytes),
        cycle_length=min(len(records.files), READ_CYCLE),
        **({"num_parallel_calls": AUTOTUNE, "deterministic": True} if tuning.parallel_reads else {}))


def _batch(serialized: tf.data.Dataset, records: Records, batch_size: int, training: bool, with_labels: bool,
           tuning: Tuning) -> tf.data.Dataset:
    """Parsed uint8 batches; each record parsed into its batch unless `tuning.batch_parse`."""
    height, width = records.image_size
    if tuning.batch_parse:
        return serialized.batch(batch_size, drop_remainder=training).map(
            _parser(height, width, with_labels, batched=True), num_parallel_calls=AUTOTUNE)
    # map then batch: tf.data fuses them (map_and_batch_fusion), writing each parsed record into its batch.
    parsed = serialized.map(_parser(height, width, with_labels, batched=False), num_parallel_calls=AUTOTUNE,
                            deterministic=True)
    return parsed.batch(batch_size, drop_remainder=training)


def _augmentation(records: Records, seed: int, pipeline: int, augmentation: bool, crop_size: int, view_size: int):
    """The map of (batch number, batch) that `augment` or `crop`, or both at once, make."""
    if crop_size > (view_size or min(records.image_size)):
        raise DataError(f"crop size {crop_size} is larger than the {view_size or records.image_size[0]}-pixel "
                        f"{'views' if view_size else 'records'}")
    if view_size and not augmentation:
        raise DataError(f"view size {view_size}: views are made by the augmentation; turn it on")
    return augment(seed, pipeline, crop_size, view_size) if augmentation else crop(seed, crop_size, pipeline)


def make_dataset(records: Records, batch_size: int, *, training: bool, folds=None,
                 input_context: tf.distribute.InputContext | None = None, seed: int | None = None,
                 shuffle_buffer: int = 1024, with_labels: bool = False, augmentation: bool = False,
                 holdout: Holdout = Holdout(), held_out: bool = False, tuning: Tuning = Tuning(),
                 crop_size: int = 0, view_size: int = 0) -> tf.data.Dataset:
    """Batches of (L8 (b, h, w, 1), ab8 (b, h, w, 2)) uint8, as stored; `pipeline.color_tf` scales them.

    uint8 is a quarter of float32's bytes to move to an accelerator; the
    training step scales on the device.

    Args:
      batch_size: per input pipeline (per replica under a strategy).
      training: shuffle, repeat nothing, drop the last partial batch.
      folds: keep only examples whose cross-validation fold is in this set.
      input_context: under multi-worker training, read only this pipeline's
        share of the files (or of the records, when there are fewer files).
      with_labels: also give each photo's label (its folder name), as bytes.
      augmentation: random flips and scale-and-crop (training only), see `augment`.
      crop_size: train on random windows of this side (training only, 0: whole photos), see `crop`.
      view_size: train on whole photos resized to this side (training only, with `augmentation`; 0: as stored).
      holdout, held_out: keep only the examples `holdout` names (held_out) or only the others.
      tuning: how to spend the CPU (the same batches whatever it says), see `Tuning`.
    """
    if records.num_examples(folds, holdout, held_out) == 0:
        which = f"folds {sorted(folds)} of " if folds is not None else ""
        which += f"{'held-out' if held_out else 'other than held-out'} {holdout.describe()} of " if holdout else ""
        raise DataError(f"{which}split {records.split!r} of {records.data_dir} has no examples")
    pipelines, index = ((input_context.num_input_pipelines, input_context.input_pipeline_id)
                        if input_context else (1, 0))
    dataset = _read(_files(records, training, seed, pipelines, index), records, tuning)
    if len(records.files) < pipelines:
        dataset = dataset.shard(pipelines, index)
    if folds is not None:
        dataset = dataset.filter(_in_folds(folds))
    if holdout:
        dataset = dataset.filter(_held_out(holdout, held_out))
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    dataset = _batch(dataset, records, batch_size, training, with_labels, tuning)
    if training and (augmentation or crop_size or view_size):
        dataset = dataset.enumerate().map(_augmentation(records, 0 if seed is None else seed, index, augmentation,
                                                        crop_size, view_size), num_parallel_calls=AUTOTUNE)
    dataset = dataset.prefetch(AUTOTUNE)
    if not training:
        # Distributed evaluation may have more workers than files: each worker keeps every n-th batch.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.with_options(options)
    return dataset


def held_out_records(data_dir: str, holdout: Holdout) -> list[Records]:
    """The splits that hold photos of the held-out classes or sources: all of them are unseen by the run."""
    found = [records for records in map(functools.partial(Records.open, data_dir), splits.SPLITS)
             if records.num_examples(holdout=holdout, held_out=True)]
    if not found:
        raise DataError(f"no photos of the {holdout.describe()} in {data_dir}")
    return found


def held_out_dataset(data_dir: str, holdout: Holdout, batch_size: int, with_labels: bool = False) -> tf.data.Dataset:
    """Every photo of the held-out classes or sources, from all three splits, in a fixed order."""
    parts = [make_dataset(records, batch_size, training=False, holdout=holdout, held_out=True, with_labels=with_labels)
             for records in held_out_records(data_dir, holdout)]
    return functools.reduce(tf.data.Dataset.concatenate, parts)
