"""Training speed of each model against this CPU's limit, XLA on and off; the trainer's memory as the data grows.

    .venv/bin/python benchmarks/train_benchmark.py --data_dir RECORDS [--seconds 10]

1. The CPU's limit: a plain 3x3 convolution, 64 to 64 channels, batch 16,
   100x100, float32 (the shape of most of these models' work, and about the
   best case for the CPU's convolution kernels), forward and forward with both
   gradients, in GFLOP/s: the best of three windows of --seconds/3.
2. Speed: for each model (and loss: `context_unet` with and without its
   colour-classification head) and --jit_compile setting, a fresh process
   builds what the trainer builds with its default flags otherwise
   (`trainer.training.run.train`: network, loss, hints, optimizer, tf.data input with
   augmentation), trains 3 warm-up steps (tracing, compilation) and then
   timed steps for about --seconds, and reports training examples/s at the
   records' image size, batch 16. Achieved GFLOP/s is examples/s times three
   times the network's forward FLOPs (the backward pass costs about twice the
   forward), counted from the shapes of its layers with kernels (the
   convolutions; hint simulation, the loss and the optimizer are left out).
3. Memory: the trainer command (`python -m trainer.task`, 20 steps) on the
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

BATCH = 16
# (model, loss): every network of trainer.network.models; context_unet also as the trainer's default classifier.
MODELS = [("seed_autoencoder", "mae"), ("lowres_unet", "mae"), ("context_unet", "mae"),
          ("context_unet", "classification")]

CONV_SCRIPT = """
import json, sys, time
import tensorflow as tf

seconds = float(sys.argv[1])
x = tf.random.normal((16, 100, 100, 64))
kernel = tf.random.normal((3, 3, 64, 64))
flops = 2 * 16 * 100 * 100 * 64 * 64 * 3 * 3


@tf.function
def forward():
    return tf.nn.conv2d(x, kernel, 1, "SAME")


@tf.function
def forward_backward():
    with tf.GradientTape() as tape:
        tape.watch([x, kernel])
        y = tf.nn.conv2d(x, kernel, 1, "SAME")
    return tape.gradient(y, [x, kernel])


def gflops(step, flops_per_call):
    # The best of three windows: a limit, which anything else running on the machine can only lower.
    step(), step()  # tracing, thread pools
    rates = []
    for _ in range(3):
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            step()
            calls += 1
        rates.append(calls * flops_per_call / (time.perf_counter() - start) / 1e9)
    return max(rates)


print(json.dumps({"forward": gflops(forward, flops), "forward_backward": gflops(forward_backward, 3 * flops)}))
"""

SPEED_SCRIPT = """
import json, sys, time
import keras, numpy as np
from trainer.training import distribute, run
from trainer.training.config import RunConfig
from trainer.training.flags import FLAGS

data_dir, model, loss, jit, seconds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
BATCH, WARMUP = 16, 3
FLAGS(["train_benchmark", f"--data_dir={data_dir}", f"--model={model}", f"--loss={loss}", f"--jit_compile={jit}",
       f"--batch_size={BATCH}"])
config = RunConfig.from_flags(FLAGS)
strategy = distribute.make_strategy("one_device", distribute.Cluster())
data = run.Splits(config, BATCH)
colorizer, _ = run._build(strategy, config, data, distribute.jit_default(config.jit_compile))


def forward_flops(net) -> int:
    # Two FLOPs per multiply-add of each layer with a kernel: kernel size times output positions
    # (convolutions, stride-1 transposed ones included, and depthwise ones).
    return sum(2 * int(np.prod(layer.kernel.shape)) * int(np.prod(layer.output.shape[1:-1]))
               for layer in net.layers if getattr(layer, "kernel", None) is not None)


class Clock(keras.callbacks.Callback):
    # Times the steps after the first WARMUP (tracing, XLA compilation, input warm-up), for about `seconds`.
    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if batch == WARMUP - 1:
            self.start = now
        elif batch >= WARMUP:
            self.steps, self.seconds = batch - WARMUP + 1, now - self.start
            self.model.stop_training = self.seconds >= seconds and self.steps >= 3


clock = Clock()
colorizer.fit(run.training_stream(strategy, data, config, BATCH, 10**6, run.backup.Position()), epochs=1, steps_per_epoch=10**6,
              callbacks=[clock], verbose=0)
print(json.dumps({"examples_per_second": clock.steps * BATCH / clock.seconds,
                  "forward_flops": forward_flops(colorizer.net), "parameters": colorizer.net.count_params()}))
"""


def _run_json(script: str, *args: str) -> dict:
    run = measure.python("-c", script, *args, env={"PYTHONPATH": str(REPO)})
    return json.loads(run.output.strip().splitlines()[-1])


def _speed(data_dir: str, seconds: float) -> tuple[list[list], list[list]]:
    """The convolution's rows and the models' rows."""
    conv = _run_json(CONV_SCRIPT, str(seconds))
    conv_rows = [["forward", f"{conv['forward']:.1f}"],
                 ["forward, then gradients of input and kernel (3x the FLOPs)", f"{conv['forward_backward']:.1f}"]]
    rows, base = [], None
    for model, loss in MODELS:
        runs = {jit: _run_json(SPEED_SCRIPT, data_dir, model, loss, jit, str(seconds)) for jit in ("false", "true")}
        off, on = runs["false"]["examples_per_second"], runs["true"]["examples_per_second"]
        forward = runs["false"]["forward_flops"] / 1e9
        achieved = off * 3 * forward
        base = base or off
        rows.append([model, loss, f"{runs['false']['parameters']:,}", f"{forward:.2f}", f"{off:.1f}", f"{on:.1f}",
                     f"{on / off:.2f}", f"{achieved:.1f}", f"{achieved / conv['forward_backward']:.2f}",
                     f"{off / base:.1f}"])
    return conv_rows, rows


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
    parser.add_argument("--seconds", type=float, default=8.0,
                        help="Timed seconds per configuration (at least 3 steps after 3 warm-up steps).")
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="train-benchmark-"))
    try:
        conv_rows, model_rows = _speed(args.data_dir, args.seconds)
        print(measure.table(["plain 3x3 convolution, 64->64, batch 16, 100x100", "GFLOP/s"], conv_rows))
        print()
        print(measure.table(["model", "loss", "parameters", "forward GFLOP/example", "examples/s, XLA off",
                             "examples/s, XLA on", "XLA on / off", "GFLOP/s trained (XLA off)",
                             "x convolution's forward+gradients", "x seed_autoencoder (XLA off)"], model_rows))
        print()
        print(measure.table(["what", "examples", "peak MB"],
                            _memory(pathlib.Path(args.data_dir), pathlib.Path(args.photos), work)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
