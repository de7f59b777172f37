"""Scale-out simulated on one machine: trainer replicas and workers, Beam job workers.

    .venv/bin/python benchmarks/scale_benchmark.py [--photos ../shared/data] [--steps 40]

Training (the trainer's own command; the mean of its logged examples/s over
the epochs after the first, which traces and warms up): one device; MirroredStrategy over the CPU split
into 2 logical devices; MultiWorkerMirroredStrategy with 1 worker and with 2
worker processes on 127.0.0.1. Global batch 16 everywhere, so 2 replicas each
compute half a batch. Preprocessing: the Beam job's wall time with 1 and 2
local worker processes on all photos. Prints a table with the scaling ratios.
"""

import argparse
import csv
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import measure  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(REPO)}
EPOCHS = 4


def _speed(model_dir: pathlib.Path) -> float:
    with open(model_dir / "history.csv") as handle:
        epochs = list(csv.DictReader(handle))[1:]
    return sum(float(epoch["examples_per_second"]) for epoch in epochs) / len(epochs)


def _train(records, model_dir, steps, *flags, workers: int = 0) -> float:
    command = [sys.executable, "-m", "trainer.task", f"--data_dir={records}", f"--model_dir={model_dir}",
               f"--epochs={EPOCHS}", f"--steps_per_epoch={steps}", "--batch_size=16", "--log_images_every=0", *flags]
    if not workers:
        subprocess.run(command, env=ENV, check=True, capture_output=True)
        return _speed(model_dir)
    ports = []
    for _ in range(workers):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    processes = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env={**ENV, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                                       "task": {"type": "worker", "index": i}})})
                 for i in range(workers)]
    if any(p.wait() for p in processes):
        raise RuntimeError("a worker failed")
    return _speed(model_dir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--steps", type=int, default=40, help=f"Training steps per epoch ({EPOCHS} epochs per run).")
    args = parser.parse_args()
    photos = pathlib.Path(args.photos)
    work = pathlib.Path(tempfile.mkdtemp(prefix="scale-benchmark-"))
    inputs = [f"--input={photos / 'flowers'}", f"--input={photos / 'extra_plants'}"]
    try:
        beam = {}
        for workers in (1, 2):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "beam_jobs.preprocess", *inputs, f"--output={work / f'r{workers}'}",
                            f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing",
                            "--split=90/5/5"], env=ENV, check=True, capture_output=True)
            beam[workers] = time.perf_counter() - start
        records = work / "r2"
        runs = {
            "one device": _train(records, work / "one", args.steps, "--strategy=one_device"),
            "mirrored, 2 logical devices": _train(records, work / "mirrored", args.steps, "--strategy=mirrored",
                                                  "--logical_cpus=2"),
            "multi-worker, 1 worker": _train(records, work / "mw1", args.steps, "--strategy=multi_worker",
                                             workers=1),
            "multi-worker, 2 workers": _train(records, work / "mw2", args.steps, "--strategy=multi_worker",
                                              workers=2),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = runs["one device"]
    rows = [[name, f"{speed:.1f}", f"{speed / base:.2f}"] for name, speed in runs.items()]
    print(measure.table(["training (200x200, lowres_unet, global batch 16)", "examples/s", "x one device"], rows))
    print()
    print(measure.table(["Beam job, all photos", "wall s", "x 1 worker (speed-up)"],
                        [[f"{w} local worker(s)", f"{s:.1f}", f"{beam[1] / s:.2f}"] for w, s in beam.items()]))


if __name__ == "__main__":
    main()
