"""Training speed of each model with XLA on and off, and the trainer's memory as the data grows.

    .venv/bin/python benchmarks/train_benchmark.py --data_dir RECORDS [--steps 12]

1. Speed: for each model and --jit_compile setting, a fresh process builds the
   trainer's own model, step and tf.data input (`trainer.training`), trains
   3 warm-up steps (tracing, compilation) and --steps timed steps, and reports
   training examples/s at the records' image size, batch 16.
2. Memory: the trainer command (`python -m trainer.task`, 20 steps) on the
   records and on the same records listed four times over (a 4x dataset),
   against the original notebook's way (every photo as float arrays in RAM)
   on the same photos once and four times over. Streaming must stay flat.
Prints Markdown tables.
"""

import argparse
import json
import pathlib
import shutil
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import measure  # noqa: E402

SPEED_SCRIPT = """
import json, sys, time
import keras, tensorflow as tf
from trainer import colorizer, distribute, losses, models, training
data_dir, model, jit, steps = sys.argv[1], sys.argv[2], sys.argv[3] == "true", int(sys.argv[4])
config = {"data_dir": data_dir, "cv_fold": None, "seed": 0, "shuffle_buffer": 256, "optimizer": "adam",
          "learning_rate": 1e-3, "momentum": 0.9}
strategy = distribute.make_strategy("one_device", distribute.Cluster())
data = training.Data(config, 16)
with strategy.scope():
    net = colorizer.Colorizer(models.build(model, data.size), losses.mae, jit)
    net.compile(optimizer=training._optimizer(config), jit_compile=False)
    net.build_all(data.size)


class Clock(keras.callbacks.Callback):
    # Times the steps after the first three (tracing, XLA compilation, input warm-up).
    def on_train_batch_end(self, batch, logs=None):
        if batch == 2:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


clock = Clock()
net.fit(training._training_data(strategy, data, config, 16, 0), epochs=1, steps_per_epoch=steps + 3,
        callbacks=[clock], verbose=0)
print(json.dumps({"examples_per_second": steps * 16 / (clock.end - clock.start)}))
"""


def _speed(data_dir: str, steps: int) -> list[list]:
    rows = []
    for model in ("seed_autoencoder", "lowres_unet"):
        speeds = {}
        for jit in ("false", "true"):
            run = measure.python("-c", SPEED_SCRIPT, data_dir, model, jit, str(steps), env={"PYTHONPATH": str(REPO)})
            speeds[jit] = json.loads(run.output.strip().splitlines()[-1])["examples_per_second"]
        rows.append([model, f"{speeds['false']:.1f}", f"{speeds['true']:.1f}",
                     f"{speeds['true'] / speeds['false']:.2f}"])
    base = float(rows[0][1])
    for row in rows:
        row.append(f"{float(row[1]) / base:.1f}")
    return rows


def _four_times(data_dir: pathlib.Path, target: pathlib.Path) -> pathlib.Path:
    """The same records listed four times under new names: a dataset four times the size."""
    manifest = json.loads((data_dir / "manifest.json").read_text())
    target.mkdir()
    for entry in manifest["splits"].values():
        names = []
        for copy in range(4):
            for name in entry["shards"]:
                alias = f"copy{copy}-{name}"
                (target / alias).symlink_to((data_dir / name).resolve())
                names.append(alias)
        entry["shards"] = names
        entry["examples"] *= 4
        entry["by_fold"] = {fold: count * 4 for fold, count in entry["by_fold"].items()}
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def _memory(data_dir: pathlib.Path, photo_dir: pathlib.Path, work: pathlib.Path) -> list[list]:
    examples = json.loads((data_dir / "manifest.json").read_text())["counts"]["written"]
    photos = sorted(str(p) for p in photo_dir.glob("*/*/*"))
    rows = []
    for factor, records in ((1, data_dir), (4, _four_times(data_dir, work / "records4x"))):
        run = measure.python("-m", "trainer.task", f"--data_dir={records}", f"--model_dir={work / f'run{factor}'}",
                             "--epochs=1", "--steps_per_epoch=20", "--log_images_every=0",
                             env={"PYTHONPATH": str(REPO)})
        rows.append([f"trainer (streaming), {factor}x data", examples * factor, f"{run.peak_mb:.0f}"])
        listing = work / f"photos{factor}.txt"
        listing.write_text("\n".join(photos * factor))
        loop = measure.python(str(REPO / "benchmarks" / "notebook_loop.py"), str(listing))
        rows.append([f"notebook (arrays in RAM), {factor}x data", len(photos) * factor, f"{loop.peak_mb:.0f}"])
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", required=True, help="Records of all reference photos (beam_jobs.preprocess).")
    parser.add_argument("--photos", default=str(REPO.parent / "shared" / "data"),
                        help="The photos those records were made from (<source>/<class>/<file>).")
    parser.add_argument("--steps", type=int, default=12, help="Timed training steps per configuration.")
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="train-benchmark-"))
    try:
        print(measure.table(["model", "examples/s, XLA off", "examples/s, XLA on", "XLA on / off",
                             "x seed_autoencoder (XLA off)"], _speed(args.data_dir, args.steps)))
        print()
        print(measure.table(["what", "examples", "peak MB"], _memory(pathlib.Path(args.data_dir), pathlib.Path(args.photos), work)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
