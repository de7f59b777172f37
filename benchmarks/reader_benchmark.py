"""The tf.data reader's examples/s and CPU per example, stage by stage and against another checkout.

    .venv/bin/python benchmarks/reader_benchmark.py [--data_dir ../runs/records] [--baseline ../main] [--passes 3]

Reads the train split of the records (default: the Beam job's 200x200
uncompressed records of the reference photos) as training does, in batches
of 64, each row in a fresh process. The rows add one stage at a time (the
bare records, parsing into batches, shuffling, augmentation, augmentation
with 128-pixel windows), then each `Tuning` alternative and a few
`tf.data.Options`: the differences between rows are where the CPU goes.
With --baseline, the rows that checkout has too are measured with its
`pipeline` package in the same run, so that a before/after is one run's ratio.

Examples/s are over --passes passes after one warm-up batch (tracing, thread
pools); CPU us/example counts every thread of the process (what the reader
takes from a training step sharing the CPU). Prints a Markdown table.
"""

import argparse
import json
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import measure  # noqa: E402

READ_SCRIPT = """
import json, resource, sys, time
import tensorflow as tf
from pipeline import dataset

BATCH = 64
records, variant, passes = dataset.Records.open(sys.argv[1], "train"), sys.argv[2], int(sys.argv[3])


def reader(**options):
    return dataset.make_dataset(records, BATCH, training=True, seed=0, **options)


def with_options(data, **settings):
    options = tf.data.Options()
    for path, value in settings.items():
        target = options
        *parents, name = path.split("__")
        for parent in parents:
            target = getattr(target, parent)
        setattr(target, name, value)
    return data.with_options(options)


def parsed_in_order():
    # The stages of make_dataset up to batching, without the shuffle.
    return dataset._batch(dataset._read(dataset._files(records, True, 0, 1, 0), records, dataset.Tuning()),
                          records, BATCH, True, False, dataset.Tuning())


VARIANTS = {
    "records": lambda: tf.data.TFRecordDataset(records.files, records.compression),
    "parsed": parsed_in_order,
    "shuffled": reader,
    "augmented": lambda: reader(augmentation=True),
    "augmented_crop": lambda: reader(augmentation=True, crop_size=128),
    "crop": lambda: reader(crop_size=128),
    "sequential_reads": lambda: reader(augmentation=True, tuning=dataset.Tuning(parallel_reads=False)),
    "batch_parse": lambda: reader(augmentation=True, tuning=dataset.Tuning(batch_parse=True)),
    "unbuffered": lambda: reader(augmentation=True, tuning=dataset.Tuning(read_buffer_bytes=0)),
    "one_thread_per_op": lambda: with_options(reader(augmentation=True), threading__max_intra_op_parallelism=1),
    "slack": lambda: with_options(reader(augmentation=True), experimental_slack=True),
}


def examples(element):
    first = tf.nest.flatten(element)[0]
    return tf.constant(1, tf.int64) if first.shape.rank == 0 else tf.shape(first, out_type=tf.int64)[0]


def consume(data, elements):
    # In the graph, as a training step consumes: no Python per element.
    return int(data.repeat().take(elements).reduce(tf.constant(0, tf.int64), lambda n, e: n + examples(e)))


data = VARIANTS[variant]()
batched = tf.nest.flatten(data.element_spec)[0].shape.rank > 0
consume(data, 2)
cpu, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
count = consume(data, -(-passes * records.num_examples() // (BATCH if batched else 1)))
seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
cpu_seconds = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
print(json.dumps({"examples_per_second": count / seconds, "cpu_us_per_example": 1e6 * cpu_seconds / count}))
"""

# (what, variant of READ_SCRIPT, measured on the baseline too)
ROWS = [
    ("records only: read, no parsing", "records", True),
    ("+ parsed into batches of 64 (files shuffled, no record shuffle)", "parsed", True),
    ("+ records shuffled: training without augmentation", "shuffled", True),
    ("+ augmentation (scale-and-crop, flips): the training default", "augmented", True),
    ("augmentation and 128-pixel windows (--train_crop=128)", "augmented_crop", True),
    ("128-pixel windows, no augmentation", "crop", True),
    ("augmentation, one file at a time (no parallel reads)", "sequential_reads", True),
    ("augmentation, serialized records batched, then whole batches parsed", "batch_parse", True),
    ("augmentation, unbuffered reads (TFRecordDataset buffer_size 0)", "unbuffered", True),
    ("augmentation, tf.data threading.max_intra_op_parallelism=1", "one_thread_per_op", False),
    ("augmentation, tf.data experimental_slack", "slack", False),
]


def _measure(checkout: pathlib.Path, data_dir: str, variant: str, passes: int) -> dict:
    run = measure.python("-c", READ_SCRIPT, data_dir, variant, str(passes), env={"PYTHONPATH": str(checkout)})
    return json.loads(run.output.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default=str(REPO.parent / "runs" / "records"))
    parser.add_argument("--baseline", help="another checkout of this repository to measure beside this one")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="variants to run (default: all)")
    args = parser.parse_args()
    rows = []
    for what, variant, on_baseline in ROWS:
        if args.only and variant not in args.only:
            continue
        now = _measure(REPO, args.data_dir, variant, args.passes)
        row = [what, f"{now['examples_per_second']:,.0f}", f"{now['cpu_us_per_example']:.0f}"]
        if args.baseline:
            before = _measure(pathlib.Path(args.baseline), args.data_dir, variant, args.passes) if on_baseline else None
            row += ([f"{before['examples_per_second']:,.0f}", f"{before['cpu_us_per_example']:.0f}",
                     f"{before['cpu_us_per_example'] / now['cpu_us_per_example']:.2f}"] if before else ["-"] * 3)
        rows.append(row)
        print(" | ".join(row), file=sys.stderr, flush=True)
    headers = ["reader (train split, batch 64)", "examples/s", "CPU us/example"]
    if args.baseline:
        headers += ["baseline examples/s", "baseline CPU us/example", "baseline CPU / this CPU"]
    print(measure.table(headers, rows))


if __name__ == "__main__":
    main()
