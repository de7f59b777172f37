"""Training speed against this CPU's limit in float32 and bfloat16, quality after equal time, and memory.

    .venv/bin/python benchmarks/train_benchmark.py --data_dir RECORDS [--seconds 8] [--quality_minutes 4]

0. The CPU: its model name and its bfloat16 hardware (the flags amx_bf16,
   amx_tile and avx512_bf16 of /proc/cpuinfo), since mixed_bfloat16 only pays
   on a CPU that has them.
1. The CPU's limit: a plain 3x3 convolution, 64 to 64 channels, batch 16,
   100x100 (the shape of most of these models' work, and about the best case
   for the CPU's convolution kernels), in float32 and in bfloat16, forward and
   forward with both gradients, in GFLOP/s: the best of three windows of
   --seconds/3.
2. Speed: for each model (and loss: `context_unet` with and without its
   colour-classification head), --precision (float32, mixed_bfloat16) and
   --jit_compile setting, a fresh process builds what the trainer builds with
   its default flags otherwise (`trainer.training.run.train`: network, loss,
   hints, optimizer, tf.data input with augmentation), trains 3 warm-up steps
   (tracing, compilation) and then timed steps for about --seconds, and reports
   training examples/s at the records' image size, batch 16. Achieved GFLOP/s
   is examples/s times three times the network's forward FLOPs (the backward
   pass costs about twice the forward), counted from the shapes of its layers
   with kernels (the convolutions; hint simulation, the loss and the optimizer
   are left out). Each row's fraction of the limit is against the convolution
   in the row's compute dtype: float32 rows against the float32 convolution,
   mixed_bfloat16 rows against the bfloat16 one. XLA is timed in float32 only:
   the trainer never turns it on for a CPU (--jit_compile=auto), float32
   already shows it slower here, and bfloat16 XLA runs would add a third to
   this table's time for a setting no CPU run uses. A line under the table
   gives the default classifier's float32 fraction against its target, 0.6.
3. Quality after equal time: the trainer itself (`python -m trainer.task`, its
   default model: context_unet with colour classification) for
   --quality_minutes of training (--time_budget_minutes, validation included)
   in each precision, same seed, each in a fresh model_dir; epochs of
   QUALITY_STEPS_PER_EPOCH steps, so that several validations fit. Reports
   what the run's metrics.json and history.csv say: steps and epochs trained,
   training examples/s, and the best epoch's validation loss, RGB PSNR (beside
   the gray baseline's) and colourfulness against the truth's.
4. Memory: the trainer command (`python -m trainer.task`, 20 steps) on the
   records and on the same records listed four times over (a 4x dataset),
   against the original notebook's way (every photo as float arrays in RAM)
   on the same photos once and four times over. Streaming must stay flat.
   Then the evaluator (`python -m trainer.evaluate`, the shipped model, the
   test split) at two batch sizes: peak memory and photos per second of wall
   time (start-up included).
Prints Markdown tables, each as soon as it is measured.
"""

import argparse
import json
import pathlib
import platform
import shutil
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import measure  # noqa: E402
from trainer.training import run_files  # noqa: E402

BATCH = 16
# --precision -> the dtype its convolutions compute in, which is the limit its rows are held against.
PRECISIONS = {"float32": "float32", "mixed_bfloat16": "bfloat16"}
# XLA settings timed per precision (see the module docstring, 2: why not bfloat16 with XLA).
JIT = {"float32": ("false", "true"), "mixed_bfloat16": ("false",)}
BF16_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16")
# Small enough that several epochs fit in a few minutes on 2 cores, each ending in a validation that
# alone takes about a minute there (730 photos).
QUALITY_STEPS_PER_EPOCH = 25
SEED = 42
# (model, loss): every network of trainer.network.models; context_unet also as the trainer's default classifier.
MODELS = [("seed_autoencoder", "mae"), ("lowres_unet", "mae"), ("context_unet", "mae"),
          ("context_unet", "classification")]

CONV_SCRIPT = """
import json, sys, time
import tensorflow as tf

seconds, dtype = float(sys.argv[1]), sys.argv[2]
x = tf.cast(tf.random.normal((16, 100, 100, 64)), dtype)
kernel = tf.cast(tf.random.normal((3, 3, 64, 64)), dtype)
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

data_dir, model, loss, precision, jit, seconds = sys.argv[1:6] + [float(sys.argv[6])]
BATCH, WARMUP = 16, 3
FLAGS(["train_benchmark", f"--data_dir={data_dir}", f"--model={model}", f"--loss={loss}", f"--precision={precision}",
       f"--jit_compile={jit}", f"--batch_size={BATCH}"])
config = RunConfig.from_flags(FLAGS)
strategy = distribute.make_strategy("one_device", distribute.Cluster())
data = run.Splits(config, BATCH)
colorizer = run._build(strategy, config, data, distribute.jit_default(config.jit_compile))


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


def _cpu_rows() -> list[list]:
    """The CPU's name and which of its bfloat16 flags /proc/cpuinfo lists (Linux only)."""
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return [["model name", platform.processor() or "unknown"],
                *[[flag, "unknown (no /proc/cpuinfo)"] for flag in BF16_FLAGS]]
    fields = dict(line.split(":", 1) for line in cpuinfo.read_text().splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set(fields.get("flags", "").split())
    return [["model name", fields.get("model name", "unknown")],
            *[[flag, "found" if flag in flags else "not found"] for flag in BF16_FLAGS]]


def _convolution(seconds: float) -> tuple[dict, list[list]]:
    """GFLOP/s per dtype ({dtype: {"forward": .., "forward_backward": ..}}) and the table's rows."""
    conv = {dtype: _run_json(CONV_SCRIPT, str(seconds), dtype) for dtype in PRECISIONS.values()}
    rows = [[label, *[f"{conv[dtype][key]:.1f}" for dtype in PRECISIONS.values()],
             f"{conv['bfloat16'][key] / conv['float32'][key]:.2f}"]
            for label, key in (("forward", "forward"),
                               ("forward, then gradients of input and kernel (3x the FLOPs)", "forward_backward"))]
    return conv, rows


def _limit_fraction(runs: dict, precision: str, conv: dict) -> tuple[float, float]:
    """GFLOP/s trained (XLA off), and its fraction of the convolution's forward+gradients in the same dtype."""
    achieved = runs["false"]["examples_per_second"] * 3 * runs["false"]["forward_flops"] / 1e9
    return achieved, achieved / conv[PRECISIONS[precision]]["forward_backward"]


def _model_row(model: str, loss: str, precision: str, runs: dict, conv: dict, float32_speed: float,
               seed_speed: float) -> list:
    """One (model, loss, precision)'s row; `runs` maps each timed --jit_compile to its measurement."""
    off = runs["false"]["examples_per_second"]
    on = runs["true"]["examples_per_second"] if "true" in runs else None
    achieved, fraction = _limit_fraction(runs, precision, conv)
    return [model, loss, precision, f"{runs['false']['parameters']:,}", f"{runs['false']['forward_flops'] / 1e9:.2f}",
            f"{off:.1f}", f"{on:.1f}" if on else "not run", f"{on / off:.2f}" if on else "-", f"{achieved:.1f}",
            f"{fraction:.2f}", f"{off / float32_speed:.2f}", f"{off / seed_speed:.1f}"]


def _examples_per_second(runs: dict) -> float:
    return runs["false"]["examples_per_second"]


def _models(data_dir: str, seconds: float, conv: dict) -> tuple[list[list], float]:
    """The models' rows, and the default classifier's float32 fraction of the float32 convolution (the target's)."""
    rows, results = [], {}
    for model, loss in MODELS:
        for precision in PRECISIONS:
            results[model, loss, precision] = runs = {
                jit: _run_json(SPEED_SCRIPT, data_dir, model, loss, precision, jit, str(seconds))
                for jit in JIT[precision]}
            rows.append(_model_row(model, loss, precision, runs, conv,
                                   _examples_per_second(results[model, loss, "float32"]),
                                   _examples_per_second(results[(*MODELS[0], precision)])))
    return rows, _limit_fraction(results["context_unet", "classification", "float32"], "float32", conv)[1]


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


def _quality(data_dir: str, minutes: float, work: pathlib.Path) -> list[list]:
    """The trainer for `minutes` in each precision, same seed: what its run folder says it reached."""
    rows = []
    for precision in PRECISIONS:
        files = run_files.RunFiles(str(work / f"quality-{precision}"))
        run = measure.python("-m", "trainer.task", f"--data_dir={data_dir}", f"--model_dir={files.root}",
                             f"--time_budget_minutes={minutes}", f"--steps_per_epoch={QUALITY_STEPS_PER_EPOCH}",
                             f"--precision={precision}", f"--seed={SEED}", "--log_images_every=0",
                             env={"PYTHONPATH": str(REPO)})
        metrics, history = run_files.read_json(files.metrics), run_files.history_rows(files.history)
        val, gray = metrics["val"], metrics["gray_baseline"]["val"]
        rows.append([precision, f"{sum(float(row['steps']) for row in history):.0f}", f"{metrics['epochs_run']:.2f}",
                     len(history), f"{metrics['train_examples_per_second']:.1f}", f"{val['loss']:.3f}",
                     f"{val['rgb_psnr']:.2f}", f"{gray['rgb_psnr']:.2f}", f"{val['colourfulness_ratio']:.2f}",
                     f"{run.seconds:.0f}"])
    return rows


def _evaluator(data_dir: pathlib.Path, work: pathlib.Path) -> list[list]:
    """The evaluator on the test split with the shipped model, at a small and a large batch."""
    photos = json.loads((data_dir / "manifest.json").read_text())["splits"]["test"]["examples"]
    rows = []
    for batch in (16, 256):
        run = measure.python("-m", "trainer.evaluate", f"--model={REPO / 'trainer' / 'default_model' / 'model.keras'}",
                             f"--data_dir={data_dir}", "--split=test", f"--batch_size={batch}",
                             f"--output={work / f'evaluate-{batch}'}", env={"PYTHONPATH": str(REPO)})
        rows.append([batch, photos, f"{run.seconds:.0f}", f"{photos / run.seconds:.1f}", f"{run.peak_mb:.0f}"])
    return rows


def _print(headers: list[str], rows: list[list]) -> None:
    print(measure.table(headers, rows), end="\n\n", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", required=True, help="Records of all reference photos (beam_jobs.preprocess).")
    parser.add_argument("--photos", default=str(REPO.parent / "shared" / "data"),
                        help="The photos those records were made from (<source>/<class>/<file>).")
    parser.add_argument("--seconds", type=float, default=8.0,
                        help="Timed seconds per configuration (at least 3 steps after 3 warm-up steps).")
    parser.add_argument("--quality_minutes", type=float, default=4.0,
                        help="Training minutes per precision for the quality-after-equal-time table.")
    args = parser.parse_args()
    data_dir = pathlib.Path(args.data_dir)
    work = pathlib.Path(tempfile.mkdtemp(prefix="train-benchmark-"))
    try:
        _print(["CPU", "from /proc/cpuinfo"], _cpu_rows())
        conv, conv_rows = _convolution(args.seconds)
        _print(["plain 3x3 convolution, 64->64, batch 16, 100x100", "float32 GFLOP/s", "bfloat16 GFLOP/s",
                "bfloat16 / float32"], conv_rows)
        model_rows, target = _models(args.data_dir, args.seconds, conv)
        _print(["model", "loss", "precision", "parameters", "forward GFLOP/example", "examples/s, XLA off",
                "examples/s, XLA on", "XLA on / off", "GFLOP/s trained (XLA off)",
                "x same-dtype convolution's forward+gradients", "x float32 (XLA off)",
                "x seed_autoencoder (XLA off, same precision)"], model_rows)
        print(f"Default classifier (context_unet, classification, XLA off, float32): {target:.2f} x the float32 "
              f"convolution's forward+gradients ({conv['float32']['forward_backward']:.1f} GFLOP/s); "
              f"target >= 0.6: {'met' if target >= 0.6 else 'not met'}.", end="\n\n", flush=True)
        _print([f"quality after {args.quality_minutes:g} min of training", "steps", "epochs", "validations",
                "examples/s", "val loss", "val RGB PSNR (dB)", "gray's val RGB PSNR (dB)", "val colourfulness / truth",
                "wall s (with test scoring, export)"], _quality(args.data_dir, args.quality_minutes, work))
        _print(["what", "examples", "peak MB"], _memory(data_dir, pathlib.Path(args.photos), work))
        _print(["evaluator, test split, batch", "photos", "wall s", "photos/s (wall, start-up included)", "peak MB"],
               _evaluator(data_dir, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
