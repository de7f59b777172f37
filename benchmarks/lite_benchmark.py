"""The shipped model exported to TensorFlow Lite against the Keras model: file size, latency, colour.

    .venv/bin/python benchmarks/lite_benchmark.py [--model PATH] [--photos ../shared/data] [--count 24]

Exports the model with `python -m trainer.export` at each --quantize (none,
float16, dynamic), then, each model in a fresh process, colourizes the same
real flower photos resized to 1024x768 one at a time as `trainer.colorize`
does (`trainer.applying.inference`: preparation, network, edge-aware
recombination), after two warm-up photos. Latency is per photo, median and
mean; the colour is the outputs' RGB PSNR to the Keras model's (8-bit,
worst photo and mean, each photo's capped at 100 dB: identical outputs). Prints a Markdown table.
"""

import argparse
import os
import pathlib
import sys
import tempfile

import cv2
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import measure  # noqa: E402

QUANTIZATIONS = ("none", "float16", "dynamic")

TIMING = """
import glob, sys, time
import cv2, numpy as np
from trainer.applying import inference
folder, model, output = sys.argv[1:4]
colourizer = inference.load(model)
paths = sorted(glob.glob(folder + "/*.png"))
rgbs = [cv2.imread(p)[..., ::-1].copy() for p in paths]
for rgb in rgbs[:2]:
    colourizer([rgb])
seconds, results = [], []
for rgb in rgbs:
    start = time.perf_counter()
    results.append(colourizer([rgb])[0])
    seconds.append(time.perf_counter() - start)
np.save(output, np.stack(results))
print(np.median(seconds), np.mean(seconds))
"""


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 100.0 if mse == 0 else min(100.0, float(10 * np.log10(255.0**2 / mse)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(REPO / "trainer" / "default_model" / "model.keras"))
    parser.add_argument("--photos", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--count", type=int, default=24, help="Photos timed per model.")
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="lite-benchmark-"))
    sources = sorted(pathlib.Path(args.photos).glob("flowers/*/*.jpg"))[::97][:args.count]
    for i, source in enumerate(sources):
        cv2.imwrite(str(work / f"photo{i:03d}.png"), cv2.resize(cv2.imread(str(source)), (1024, 768)))
    models = {"Keras (.keras)": args.model}
    for quantize in QUANTIZATIONS:
        path = str(work / f"colorizer_{quantize}.tflite")
        measure.python("-m", "trainer.export", "--format=tflite", f"--output={path}", f"--model={args.model}",
                       f"--quantize={quantize}", env={"PYTHONPATH": str(REPO)})
        models[f"TensorFlow Lite, {'float32' if quantize == 'none' else quantize}"] = path
    rows, reference = [], None
    for label, path in models.items():
        output = work / f"{len(rows)}.npy"
        run = measure.python("-c", TIMING, str(work), path, str(output), env={"PYTHONPATH": str(REPO)})
        median, mean = (float(v) for v in run.output.split()[-2:])
        results = np.load(output)
        reference = results if reference is None else reference
        scores = [_psnr(a, b) for a, b in zip(reference, results)]
        rows.append([label, f"{os.path.getsize(path) / 1e6:.2f}", f"{median * 1000:.0f}", f"{mean * 1000:.0f}",
                     f"{min(scores):.1f}", f"{np.mean(scores):.1f}"])
    print(f"{len(sources)} real flower photos at 1024x768, one at a time, {os.cpu_count()} CPU cores\n")
    print(measure.table(["model", "file MB", "median ms/photo", "mean ms/photo", "worst PSNR to Keras, dB",
                         "mean PSNR to Keras, dB"], rows))


if __name__ == "__main__":
    main()
