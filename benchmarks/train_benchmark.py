"""Training speed against this CPU's limit in float32 and bfloat16, quality after equal time, and memory.

    .venv/bin/python benchmarks/train_benchmark.py --data_dir RECORDS [--seconds 8] [--quality_minutes 4]
    .venv/bin/python benchmarks/train_benchmark.py --loop_vs_fit BASELINE_TREE [--photos PHOTOS]

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
   hints, optimizer, tf.data input with augmentation) and trains through the
   trainer's own loop (`trainer.training.loop.Loop`), one step per call: 3
   warm-up steps (tracing, compilation), then timed steps for about --seconds,
   the clock stopped once the loss read back says the last one is done. It
   reports training examples/s at the records' image size, batch 16. Achieved
   GFLOP/s is examples/s times three times the network's forward FLOPs (the
   backward pass costs about twice the forward), counted from the shapes of
   its layers with kernels (the convolutions; hint simulation, the loss and
   the optimizer are left out). Each row's fraction of the limit is against
   the convolution in the row's compute dtype: float32 rows against the
   float32 convolution, mixed_bfloat16 rows against the bfloat16 one. XLA is
   timed in float32 only: the trainer never turns it on for a CPU
   (--jit_compile=auto), float32 already shows it slower here, and bfloat16
   XLA runs would add a third to this table's time for a setting no CPU run
   uses. A line under the table gives the default classifier's float32
   fraction against its target, 0.6.
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
5. The trainer's own loop against keras.Model.fit, only with --loop_vs_fit
   BASELINE_TREE (which runs this section alone): BASELINE_TREE is a checkout
   of the trainer that trained with `fit`, run with this Python. The trainer
   command (`python -m trainer.task`) of each tree, same flags: the default
   model (context_unet, colour classification), batch 16, 3 epochs of 100
   steps (a minute or two a run on 2 cores), on records the Beam job makes
   from --photos at 64 pixels (at 200, validating 730 photos each epoch would
   take most of each run), each run in a fresh model_dir; on 1 device
   (--strategy=one_device) and on 2 logical ones (--strategy=mirrored
   --logical_cpus=2). Each device setting runs loop, fit, fit, loop, so that
   neither tree gets the shared machine's quieter minutes. Each epoch after a
   run's first (which traces) gives a speed: training examples/s from
   history.csv, validation excluded. A tree's best epoch is a limit, which
   other jobs on the machine can only lower; its mean is what it got. The
   ratios loop / fit of both come from one run of this benchmark, and the
   machine's load after each run says how busy it was. Then how often the loop
   makes the host wait for values from the devices (`Loop.reads`: the training
   loss read back at logging steps and at each epoch's end; a mid-epoch
   checkpoint, none in these runs, reads it too), counted in a process
   training the smallest network through `trainer.training.epochs.Epochs` on
   the same schedule, for several --log_every_steps; and what `fit` read, from
   BASELINE_TREE's code.
Prints Markdown tables, each as soon as it is measured.
"""

import argparse
import json
import os
import pathlib
import platform
import shutil
import statistics
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import measure  # noqa: E402
from trainer.training import run_files  # noqa: E402
from trainer.training.config import DEFAULTS  # noqa: E402

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
# Loop against fit: records this many pixels a side, made for it (at 200, validating 730 photos each epoch
# would take most of each run), and epochs of this many steps: a minute or two a run on 2 cores.
LOOP_VS_FIT_SIZE = 64
LOOP_VS_FIT_EPOCHS, LOOP_VS_FIT_STEPS = 3, 100
# Each device setting's runs, alternated so that neither trainer gets the shared machine's quieter minutes.
LOOP_VS_FIT_ORDER = ("loop", "fit", "fit", "loop")
DEVICE_FLAGS = {1: ["--strategy=one_device"], 2: ["--strategy=mirrored", "--logical_cpus=2"]}
LOG_EVERY = (str(DEFAULTS.log_every_steps), "10", "1")  # --log_every_steps settings whose host reads are counted

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

# What the trainer builds with its default flags but these (argv 1-5: records, model, loss, precision, jit):
# network, loss, hints, optimizer, and its own loop over its tf.data stream with augmentation, on one device.
TRAINER_SETUP = """
import json, sys, time
import numpy as np
from trainer.training import backup, distribute, epochs, loop, run
from trainer.training.config import RunConfig
from trainer.training.flags import FLAGS

data_dir, model, loss, precision, jit = sys.argv[1:6]
BATCH = 16
FLAGS(["train_benchmark", f"--data_dir={data_dir}", f"--model={model}", f"--loss={loss}", f"--precision={precision}",
       f"--jit_compile={jit}", f"--batch_size={BATCH}"])
config = RunConfig.from_flags(FLAGS)
strategy = distribute.make_strategy("one_device", distribute.Cluster())
data = run.Splits(config, BATCH)
colorizer = run._build(strategy, config, data, distribute.jit_default(config.jit_compile))


def training_loop(epoch_steps):
    return loop.Loop(strategy, colorizer, run.training_stream(data, config, BATCH, epoch_steps, backup.Position()))
"""

SPEED_SCRIPT = TRAINER_SETUP + """
seconds, WARMUP = float(sys.argv[6]), 3


def forward_flops(net) -> int:
    # Two FLOPs per multiply-add of each layer with a kernel: kernel size times output positions
    # (convolutions, stride-1 transposed ones included, and depthwise ones).
    return sum(2 * int(np.prod(layer.kernel.shape)) * int(np.prod(layer.output.shape[1:-1]))
               for layer in net.layers if getattr(layer, "kernel", None) is not None)


# Times the steps after the first WARMUP (tracing, XLA compilation, input warm-up), one per call, for about
# `seconds`; reading the loss back waits for the steps before it, so the clock covers finished work only.
training = training_loop(10**6)
for _ in range(WARMUP):
    training.run(1)
training.global_sums()
timed, start = 0, time.perf_counter()
while timed < 3 or time.perf_counter() - start < seconds:
    training.run(1)
    timed += 1
training.global_sums()
elapsed = time.perf_counter() - start
print(json.dumps({"examples_per_second": timed * BATCH / elapsed,
                  "forward_flops": forward_flops(colorizer.net), "parameters": colorizer.net.count_params()}))
"""

# How often the trainer's epochs (argv 6-7: epochs, steps each) read values back from the devices, for each
# --log_every_steps (argv 8, comma-separated); no validation, checkpoints at epoch ends only.
READS_SCRIPT = TRAINER_SETUP + """
import tempfile

epoch_count, epoch_steps = int(sys.argv[6]), int(sys.argv[7])
reads = {}
for every in sys.argv[8].split(","):
    training = training_loop(epoch_steps)
    with tempfile.TemporaryDirectory() as folder:
        saves = backup.Backup(folder, colorizer, training, [], distribute.Cluster(), strategy, with_data=False)
        schedule = epochs.Schedule(epoch_count, epoch_steps, log_every=int(every))
        epochs.Epochs(colorizer, training, saves, [], schedule, {}, strategy).run()
    reads[every] = training.reads
print(json.dumps(reads))
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


def _small_records(photo_dir: pathlib.Path, target: pathlib.Path) -> pathlib.Path:
    """The photos of every source under `photo_dir` as records of LOOP_VS_FIT_SIZE pixels (the project's Beam job)."""
    measure.beam_job(sorted(p for p in photo_dir.iterdir() if p.is_dir()), target, os.cpu_count(),
                     f"--size={LOOP_VS_FIT_SIZE}")
    return target


def _trainer_speeds(tree: pathlib.Path, records: pathlib.Path, devices: int, model_dir: pathlib.Path) -> list[float]:
    """The trainer command of `tree` run from scratch: its training examples/s in each epoch after the first
    (which traces), from its history.csv."""
    # -P: `trainer` is imported from `tree` (PYTHONPATH), not from the current directory.
    measure.python("-P", "-m", "trainer.task", f"--data_dir={records}", f"--model_dir={model_dir}",
                   f"--epochs={LOOP_VS_FIT_EPOCHS}", f"--steps_per_epoch={LOOP_VS_FIT_STEPS}", f"--batch_size={BATCH}",
                   "--model=context_unet", f"--seed={SEED}", "--log_images_every=0", *DEVICE_FLAGS[devices],
                   env={"PYTHONPATH": str(tree)})
    return [float(row["examples_per_second"]) for row in run_files.history_rows(str(model_dir / "history.csv"))][1:]


def _alternated_runs(trees: dict, records: pathlib.Path, devices: int,
                     work: pathlib.Path) -> tuple[dict[str, list[float]], list[float]]:
    """Each tree's examples/s in every epoch after the first of its runs, run in LOOP_VS_FIT_ORDER, and the
    machine's load after each run (other jobs included)."""
    speeds, loads = {name: [] for name in trees}, []
    for index, name in enumerate(LOOP_VS_FIT_ORDER):
        speeds[name] += _trainer_speeds(trees[name], records, devices, work / f"{name}-{devices}-{index}")
        loads.append(os.getloadavg()[0])
    return speeds, loads


def _joined(values: list[float]) -> str:
    return ", ".join(f"{value:.1f}" for value in values)


def _loop_vs_fit(baseline: pathlib.Path, records: pathlib.Path, work: pathlib.Path) -> tuple[list[list], list[list]]:
    """The speeds' rows (per device setting and trainer: this tree's loop, `baseline`'s fit) and the ratios' rows
    (per device setting)."""
    trees, speed_rows, ratio_rows = {"loop": REPO, "fit": baseline}, [], []
    for devices in DEVICE_FLAGS:
        speeds, loads = _alternated_runs(trees, records, devices, work)
        best, mean = ({name: pick(values) for name, values in speeds.items()} for pick in (max, statistics.mean))
        for name, label in (("loop", "own loop"), ("fit", "keras fit")):
            runs = ", ".join(str(index + 1) for index, run in enumerate(LOOP_VS_FIT_ORDER) if run == name)
            speed_rows.append([devices, label, runs, _joined(speeds[name]), f"{best[name]:.1f}", f"{mean[name]:.1f}"])
        ratio_rows.append([devices, f"{best['loop'] / best['fit']:.2f}", f"{mean['loop'] / mean['fit']:.2f}",
                           _joined(loads)])
    return speed_rows, ratio_rows


def _host_reads(records: pathlib.Path) -> list[list]:
    """The loop's reads per --log_every_steps, through the trainer's epochs on the smallest network."""
    reads = _run_json(READS_SCRIPT, str(records), *MODELS[0], "float32", "false", str(LOOP_VS_FIT_EPOCHS),
                      str(LOOP_VS_FIT_STEPS), ",".join(LOG_EVERY))
    steps = LOOP_VS_FIT_EPOCHS * LOOP_VS_FIT_STEPS
    return [[f"own loop, --log_every_steps={every}{' (default)' if every == LOG_EVERY[0] else ''}", steps,
             reads[every], f"{reads[every] * 100 / steps:g}"] for every in LOG_EVERY]


def _print(headers: list[str], rows: list[list]) -> None:
    print(measure.table(headers, rows), end="\n\n", flush=True)


def _sections(args, work: pathlib.Path) -> None:
    """Sections 0 to 4."""
    data_dir = pathlib.Path(args.data_dir)
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


def _loop_vs_fit_section(baseline: pathlib.Path, photos: pathlib.Path, work: pathlib.Path) -> None:
    """Section 5."""
    records = _small_records(photos, work / "records")
    speed_rows, ratio_rows = _loop_vs_fit(baseline, records, work)
    _print(["devices", "trainer", f"its runs of {len(LOOP_VS_FIT_ORDER)} (order: {', '.join(LOOP_VS_FIT_ORDER)})",
            "examples/s, each run's epochs after the first", "best", "mean"], speed_rows)
    _print(["devices", "loop / fit, best epochs", "loop / fit, means", "1-min load average after each run, in order"],
           ratio_rows)
    _print(["own loop's host reads: the training loss read back (at logging steps, epoch ends)", "steps", "reads",
            "reads per 100 steps"], _host_reads(records))
    print(f"keras fit ({baseline}), from its code, not counted here: the host read the loss back after every "
          "call into TensorFlow, so every step at --steps_per_execution=1. Keras's CallbackList turns each call's "
          "logs into Python floats in the training thread when a callback overrides on_train_batch_end (its "
          "Throughput, Divergence and Progress, the progress bar, do), and Divergence reads float(logs['loss']); "
          "each step also all-reduced the loss's running mean across the replicas (Colorizer._global_results).",
          end="\n\n", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", help="Records of all reference photos (beam_jobs.preprocess); needed by every "
                        "section but --loop_vs_fit's.")
    parser.add_argument("--photos", default=str(REPO.parent / "shared" / "data"),
                        help="The photos those records were made from (<source>/<class>/<file>).")
    parser.add_argument("--seconds", type=float, default=8.0,
                        help="Timed seconds per configuration (at least 3 steps after 3 warm-up steps).")
    parser.add_argument("--quality_minutes", type=float, default=4.0,
                        help="Training minutes per precision for the quality-after-equal-time table.")
    parser.add_argument("--loop_vs_fit", metavar="BASELINE_TREE",
                        help="Run only section 5: this trainer's own loop against BASELINE_TREE's, a checkout of the "
                        "trainer that trained with keras.Model.fit (run with this Python).")
    args = parser.parse_args()
    if not args.loop_vs_fit and not args.data_dir:
        parser.error("--data_dir is needed (by every section but --loop_vs_fit's)")
    work = pathlib.Path(tempfile.mkdtemp(prefix="train-benchmark-"))
    try:
        if args.loop_vs_fit:
            _loop_vs_fit_section(pathlib.Path(args.loop_vs_fit).resolve(), pathlib.Path(args.photos), work)
        else:
            _sections(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
