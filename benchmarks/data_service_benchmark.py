"""The trainer's input on one core, alone against fed by tf.data service workers on another core.

    .venv/bin/python benchmarks/data_service_benchmark.py [--data_dir ../runs/records] [--batches 150]

A trainer process limited to core 0 (`taskset -c 0`) takes --batches batches of
64 from the training stream (`trainer.training.run.training_stream`, the
default augmentation, the records' train split), consumed in the graph as a
training step would, without a model: once making them itself, once through a
dispatcher and 2 workers (`python -m trainer.data_service`) limited to core 1.
Prints the trainer's examples/s and its own CPU per example (what is left to
its step), each after a few warm-up batches. Needs `taskset` and 2 cores.
"""

import argparse
import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import measure  # noqa: E402

TRAINER_SCRIPT = """
import json, resource, sys, time
import tensorflow as tf
from trainer.training import backup, run
from trainer.training.config import RunConfig
from trainer.training.splits import Splits

BATCH, WARM_UP = 64, 5
data_dir, batches, service = sys.argv[1], int(sys.argv[2]), sys.argv[3] or None
config = RunConfig(data_dir, "", data_service=service)
stream = run.training_stream(Splits(config, BATCH), config, BATCH, 1000, backup.Position())


def consume(count):
    return int(stream.take(count).reduce(tf.constant(0, tf.int64),
                                         lambda n, batch: n + tf.reduce_prod(tf.shape(batch[0], out_type=tf.int64)[:2])))


consume(WARM_UP)
cpu, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
count = consume(batches)
seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
cpu_seconds = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
print(json.dumps({"examples_per_second": count / seconds, "cpu_us_per_example": 1e6 * cpu_seconds / count}))
"""


def _service_process(core: int, *args: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(["taskset", "-c", str(core), sys.executable, "-m", "trainer.data_service", *args],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    if "serving at" not in line:
        process.kill()
        raise RuntimeError(f"trainer.data_service {' '.join(args)} did not start: {line!r}")
    return process, line.rsplit(":", 1)[1].strip()


def _trainer(data_dir: str, batches: int, service: str) -> dict:
    run = measure.run(["taskset", "-c", "0", sys.executable, "-c", TRAINER_SCRIPT, data_dir, str(batches), service],
                      env={"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"})
    return json.loads(run.output.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default=str(REPO.parent / "runs" / "records"))
    parser.add_argument("--batches", type=int, default=150)
    args = parser.parse_args()
    alone = _trainer(args.data_dir, args.batches, "")
    processes = []
    try:
        dispatcher, port = _service_process(1, "dispatcher", "--port=0")
        processes.append(dispatcher)
        for _ in range(2):
            processes.append(_service_process(1, "worker", f"--dispatcher=127.0.0.1:{port}", "--port=0",
                                              "--worker_host=127.0.0.1")[0])
        served = _trainer(args.data_dir, args.batches, f"grpc://127.0.0.1:{port}")
    finally:
        for process in processes:
            process.terminate()
            process.wait()
    rows = [[what, f"{r['examples_per_second']:,.0f}", f"{r['cpu_us_per_example']:.0f}",
             f"{r['examples_per_second'] / alone['examples_per_second']:.2f}"]
            for what, r in (("trainer alone on core 0", alone),
                            ("trainer on core 0, 2 service workers on core 1", served))]
    print(measure.table(["training stream, batch 64, augmentation", "trainer examples/s",
                         "trainer CPU us/example", "x alone"], rows))


if __name__ == "__main__":
    main()
