"""Beam job vs the original notebook's loop on the reference photos; then the tf.data reader and its alternatives.

    .venv/bin/python benchmarks/preprocess_benchmark.py [--data ../shared/data] [--workers 2]

Runs, in one go: the notebook loop (one process; keeping its float arrays in
RAM as the notebook did, and dropping them, which is its CPU-only ceiling) and
the Beam job (local FnApiRunner, --workers processes, start-up included) on all
photos and on about a quarter of them (the job's memory must not grow with the
photo count), for GZIP and for uncompressed records. "x loop" is wall time
over the loop's (arrays in RAM) on the same photos.

Then reads the train split of all photos' records, each way in a fresh
process: the project's reader (`pipeline.dataset.make_dataset`, batch 64,
training order) as it is, and with one thing changed at a time (each
`Tuning` alternative, float32 output as the earlier reader gave, augmentation,
evaluation order), the bare records with no parsing (the most the files can
give), and the same on GZIP records. Examples/s are over three passes,
start-up included; CPU us/example counts every thread's time (what the
reader takes from training on a shared CPU). Prints Markdown tables.
"""

import argparse
import glob
import json
import os
import pathlib
import shutil
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import measure  # noqa: E402

READ_SCRIPT = """
import json, resource, sys, time
import numpy as np
import tensorflow as tf
from pipeline import color_tf, dataset

PASSES, BATCH = 3, 64
records, variant = dataset.Records.open(sys.argv[1], "train"), sys.argv[2]


def reader(**options):
    return dataset.make_dataset(records, BATCH, training=True, seed=0, **options)


VARIANTS = {
    "default": reader,
    "evaluation": lambda: dataset.make_dataset(records, BATCH, training=False),
    "sequential_reads": lambda: reader(tuning=dataset.Tuning(parallel_reads=False)),
    "batch_parse": lambda: reader(tuning=dataset.Tuning(batch_parse=True)),
    "unbuffered": lambda: reader(tuning=dataset.Tuning(read_buffer_bytes=0)),
    "buffer_8mib": lambda: reader(tuning=dataset.Tuning(read_buffer_bytes=8 << 20)),
    "float32": lambda: reader().map(lambda l8, ab8: (color_tf.l8_to_input(l8), color_tf.ab8_to_target(ab8)),
                                    num_parallel_calls=tf.data.AUTOTUNE),
    "augmentation": lambda: reader(augmentation=True),
    "records_only": lambda: tf.data.TFRecordDataset(records.files, records.compression),
}


def examples(element):
    first = tf.nest.flatten(element)[0]
    return tf.constant(1, tf.int64) if first.shape.rank == 0 else tf.shape(first, out_type=tf.int64)[0]


def consume(data, elements):
    # In the graph, as a training step consumes: no Python per element.
    return int(data.repeat().take(elements).reduce(tf.constant(0, tf.int64), lambda n, e: n + examples(e)))


data = VARIANTS[variant]()
batched = tf.nest.flatten(data.element_spec)[0].shape.rank > 0
model_bytes = sum(s.dtype.size * int(np.prod(s.shape[1:])) for s in data.element_spec) if batched else None
consume(data, 2)  # tracing, thread pools
cpu, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
count = consume(data, -(-PASSES * records.num_examples() // (BATCH if batched else 1)))
seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
cpu_seconds = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
print(json.dumps({"examples_per_second": count / seconds, "cpu_us_per_example": 1e6 * cpu_seconds / count,
                  "model_bytes": model_bytes}))
"""

# (what, variant of READ_SCRIPT, compression of the records it reads)
READER_ROWS = [
    ("default: parallel reads, each record parsed into its batch, uint8", "default", "none"),
    ("evaluation order (no shuffling, last partial batch kept)", "evaluation", "none"),
    ("one file at a time (no parallel reads)", "sequential_reads", "none"),
    ("serialized records batched, then whole batches parsed", "batch_parse", "none"),
    ("unbuffered reads (TFRecordDataset buffer_size 0)", "unbuffered", "none"),
    ("8 MiB read buffer per file", "buffer_8mib", "none"),
    ("float32 output (scaled in the reader)", "float32", "none"),
    ("with augmentation (flips, scale-and-crop)", "augmentation", "none"),
    ("records only: one file after another, no parsing", "records_only", "none"),
    ("default", "default", "gzip"),
    ("one file at a time (no parallel reads)", "sequential_reads", "gzip"),
    ("records only: one file after another, no parsing", "records_only", "gzip"),
]


def _job(photo_dirs, output, workers, *flags):
    inputs = [f"--input={folder}" for folder in photo_dirs]
    return measure.python("-m", "beam_jobs.preprocess", *inputs, f"--output={output}",
                          f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing",
                          *flags, env={"PYTHONPATH": str(REPO)})


def _disk_bytes_per_example(output, split=None):
    """Bytes of record files per example: of one split, or of all of them."""
    manifest = json.loads((output / "manifest.json").read_text())
    entries = [manifest["splits"][split]] if split else list(manifest["splits"].values())
    size = sum((output / name).stat().st_size for entry in entries for name in entry["shards"])
    return size / sum(entry["examples"] for entry in entries)


def _beam_vs_loop(data, workers, work):
    """Rows of the first table; leaves the records of all photos in work/records-all-{gzip,none}."""
    all_files = sorted(glob.glob(str(data / "*" / "*" / "*")))
    quarter_dirs = [data / "flowers" / "daisy", data / "extra_plants"]
    quarter_files = sorted(f for d in quarter_dirs for f in glob.glob(str(d / "**" / "*"), recursive=True)
                           if os.path.isfile(f))
    full_dirs = [data / "flowers", data / "extra_plants"]
    rows = []
    for label, files, dirs in (("quarter", quarter_files, quarter_dirs), ("all", all_files, full_dirs)):
        listing = work / f"{label}.txt"
        listing.write_text("\n".join(files))
        loop = measure.python(str(REPO / "benchmarks" / "notebook_loop.py"), str(listing))
        rows.append(["notebook loop, arrays in RAM", len(files), f"{loop.seconds:.1f}", "1.00",
                     f"{len(files) / loop.seconds:.0f}", f"{loop.peak_mb:.0f}", "480,000 (float32)"])
        ceiling = measure.python(str(REPO / "benchmarks" / "notebook_loop.py"), str(listing), "--discard")
        rows.append(["notebook loop, arrays dropped", len(files), f"{ceiling.seconds:.1f}",
                     f"{ceiling.seconds / loop.seconds:.2f}", f"{len(files) / ceiling.seconds:.0f}",
                     f"{ceiling.peak_mb:.0f}", "-"])
        for compression in ("gzip", "none"):
            if label == "quarter" and compression == "none":
                continue
            output = work / f"records-{label}-{compression}"
            job = _job(dirs, output, workers, f"--compression={compression}")
            rows.append([f"Beam job, {workers} workers, {compression}", len(files), f"{job.seconds:.1f}",
                         f"{job.seconds / loop.seconds:.2f}", f"{len(files) / job.seconds:.0f}",
                         f"{job.peak_mb:.0f}", f"{_disk_bytes_per_example(output):,.0f}"])
    return rows


def _reader(work):
    """Rows of the reader table, on the train split of all photos' records."""
    results = []
    for what, variant, compression in READER_ROWS:
        records = work / f"records-all-{compression}"
        run = measure.python("-c", READ_SCRIPT, str(records), variant, env={"PYTHONPATH": str(REPO)})
        results.append((what, compression, json.loads(run.output.strip().splitlines()[-1]),
                        _disk_bytes_per_example(records, "train")))
    default = results[0][2]["examples_per_second"]
    return [[what, compression, f"{r['examples_per_second']:,.0f}", f"{r['cpu_us_per_example']:.0f}",
             f"{disk:,.0f}", f"{r['model_bytes']:,}" if r["model_bytes"] else "-",
             f"{r['examples_per_second'] / default:.2f}"]
            for what, compression, r, disk in results]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="preprocess-benchmark-"))
    try:
        beam_rows = _beam_vs_loop(pathlib.Path(args.data), args.workers, work)
        reader_rows = _reader(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(measure.table(["what", "photos", "wall s", "x loop", "images/s", "peak MB", "bytes/example on disk"],
                        beam_rows))
    print()
    print(measure.table(["reader (train split, batch 64)", "records", "examples/s", "CPU us/example",
                         "bytes/example on disk", "bytes/example to the model", "x default"], reader_rows))


if __name__ == "__main__":
    main()
