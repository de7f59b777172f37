"""Beam job vs the original notebook's loop on the reference photos.

    .venv/bin/python benchmarks/preprocess_benchmark.py [--data ../shared/data] [--workers 2]

Runs, in one go: the notebook loop (one process; keeping its float arrays in
RAM as the notebook did, and dropping them, which is its CPU-only ceiling) and
the Beam job (local FnApiRunner, --workers processes, start-up included) on all
photos and on about a quarter of them (the job's memory must not grow with the
photo count), for GZIP and for uncompressed records. "x loop" is wall time
over the loop's (arrays in RAM) on the same photos.

The tf.data reader has its own benchmark, `benchmarks/reader_benchmark.py`.
Prints a Markdown table.
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


def _disk_bytes_per_example(output):
    """Bytes of record files per example, over all splits."""
    manifest = json.loads((output / "manifest.json").read_text())
    entries = list(manifest["splits"].values())
    size = sum((output / name).stat().st_size for entry in entries for name in entry["shards"])
    return size / sum(entry["examples"] for entry in entries)


def _beam_vs_loop(data, workers, work):
    """Rows of the table."""
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
            job = measure.beam_job(dirs, output, workers, f"--compression={compression}")
            rows.append([f"Beam job, {workers} workers, {compression}", len(files), f"{job.seconds:.1f}",
                         f"{job.seconds / loop.seconds:.2f}", f"{len(files) / job.seconds:.0f}",
                         f"{job.peak_mb:.0f}", f"{_disk_bytes_per_example(output):,.0f}"])
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="preprocess-benchmark-"))
    try:
        beam_rows = _beam_vs_loop(pathlib.Path(args.data), args.workers, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(measure.table(["what", "photos", "wall s", "x loop", "images/s", "peak MB", "bytes/example on disk"],
                        beam_rows))


if __name__ == "__main__":
    main()
