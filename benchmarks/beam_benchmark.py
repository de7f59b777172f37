"""The Beam job's speed per core against a one-process OpenCV loop's, and its peak memory writing to Cloud Storage.

    .venv/bin/python benchmarks/beam_benchmark.py [--data ../shared/data] [--workers 2] [--gcs]

Speed: in one run, on the same photos (all the reference photos by default),
the OpenCV loop (`benchmarks/notebook_loop.py --discard`: imread, resize to
200x200, Lab, one process, so one core), by area averaging as the job
shrinks photos and bilinearly as the notebook did, and the Beam job (local
FnApiRunner, --workers processes, uncompressed records, start-up included).
Per core is photos per CPU-second (every process of the command, summed, as
`benchmarks/measure.py` samples it): what a fully used core would do, and on
a shared machine, where processes wait for a core, the only fair measure;
"x area loop" is the ratio to the area loop's. The job's start-up (a run on
one photo) is printed too, so that its per-photo cost can be told from it.

--gcs: the job's peak memory (every process of the job, summed) reading the
local photos and writing its records to gs:// on the local Cloud Storage
emulator (tests/gcs_emulator.py), with `.venv-dataflow`'s Python; the
records' bytes are what a Cloud Storage writer buffers.
"""

import argparse
import glob
import os
import pathlib
import shutil
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import measure  # noqa: E402

DATAFLOW_PYTHON = REPO / ".venv-dataflow" / "bin" / "python"
SOURCES = ("flowers", "extra_plants")


def _photos(data: pathlib.Path) -> list[str]:
    return sorted(f for source in SOURCES for f in glob.glob(str(data / source / "**" / "*"), recursive=True)
                  if os.path.isfile(f))


def speed(data: pathlib.Path, workers: int, work: pathlib.Path) -> list[list]:
    """Rows: the loop (area and bilinear resize), the job's start-up alone, the job on every photo; photos
    per CPU-second and their ratio to the area loop's, which does to a photo's pixels what the job does."""
    files = _photos(data)
    listing = work / "photos.txt"
    listing.write_text("\n".join(files))
    loop = str(REPO / "benchmarks" / "notebook_loop.py")
    area = measure.python(loop, str(listing), "--discard", "--area")
    bilinear = measure.python(loop, str(listing), "--discard")
    one = work / "one" / "photo"
    one.mkdir(parents=True)
    shutil.copyfile(files[0], one / pathlib.Path(files[0]).name)
    start = measure.beam_job([one.parent], work / "start", workers)
    job = measure.beam_job([data / s for s in SOURCES], work / "all", workers)
    base = len(files) / area.cpu_seconds

    def row(what, photos, seconds, cpu_seconds):
        rate = photos / cpu_seconds
        return [what, photos, f"{seconds:.1f}", f"{cpu_seconds:.1f}", f"{rate:.0f}", f"{rate / base:.2f}"]

    return [
        row("OpenCV loop (imread, area resize, Lab), 1 process", len(files), area.seconds, area.cpu_seconds),
        row("OpenCV loop (imread, bilinear resize, Lab), 1 process", len(files), bilinear.seconds,
            bilinear.cpu_seconds),
        [f"Beam job start-up (1 photo), {workers} workers", 1, f"{start.seconds:.1f}", f"{start.cpu_seconds:.1f}",
         "-", "-"],
        row(f"Beam job, {workers} workers, start-up included", len(files), job.seconds, job.cpu_seconds),
        row(f"Beam job, {workers} workers, start-up taken out", len(files), job.seconds - start.seconds,
            job.cpu_seconds - start.cpu_seconds),
    ]


def gcs_memory(data: pathlib.Path, workers: int, work: pathlib.Path) -> list[list]:
    """Rows: the job's peak memory and time writing all photos' records to the emulator."""
    from tests.gcs_emulator import Emulator

    rows = []
    with Emulator(work) as gcs:
        gcs.create_bucket("records")
        for shards in (32, 8):
            job = measure.beam_job([data / s for s in SOURCES], f"gs://records/out-{shards}", workers,
                                   f"--num_shards={shards}", "--temp_location=gs://records/tmp",
                                   python=DATAFLOW_PYTHON, env=gcs.env())
            rows.append([f"Beam job to gs://, {workers} workers, --num_shards={shards}", len(_photos(data)),
                         f"{job.seconds:.1f}", f"{job.peak_mb:.0f}"])
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gcs", action="store_true", help="Measure peak memory writing to the emulator instead.")
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="beam-benchmark-"))
    try:
        if args.gcs:
            print(measure.table(["what", "photos", "wall s", "peak MB"], gcs_memory(pathlib.Path(args.data),
                                                                                   args.workers, work)))
        else:
            print(measure.table(["what", "photos", "wall s", "CPU s", "photos per CPU-second", "x area loop"],
                                speed(pathlib.Path(args.data), args.workers, work)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
