"""Colourizing speed and memory, against the original notebook's way of predicting.

    .venv/bin/python benchmarks/colorize_benchmark.py [--model PATH] [--photos ../shared/data]

Makes folders of real flower photos resized to 200x200 and to 1024x768, then,
each in a fresh process: `trainer.colorize`'s own loop (`inference.run`) at
batch 1 and batch 32 (images/s after a warm-up), its peak memory on 250 and
1,000 photos (streaming: flat), and the notebook's way on the same 1,000
photos (every photo loaded into one array in RAM, `model.predict` on it, a
fixed 200x200 output). Prints Markdown tables.
"""

import argparse
import pathlib
import shutil
import sys
import tempfile

import cv2

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import measure  # noqa: E402

SPEED = """
import sys, time
from trainer.applying import inference
folder, output, model, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
inference.run([folder + "/warmup"], output + "/warmup", model, batch_size=batch)
start = time.perf_counter()
written, _ = inference.run([folder + "/timed"], output + "/timed", model, batch_size=batch)
print(written / (time.perf_counter() - start))
"""

NOTEBOOK = """
import glob, sys, time
import cv2, keras, numpy as np
from trainer.network import hints, models
paths = sorted(glob.glob(sys.argv[1] + "/*.jpg"))
net = keras.models.load_model(models.resolve(sys.argv[2]), compile=False)
start = time.perf_counter()
lightness = np.array([cv2.cvtColor(cv2.resize(cv2.imread(p), (200, 200)), cv2.COLOR_BGR2LAB)[..., :1] / 255.0
                      for p in paths], np.float32)
inputs = hints.network_input(lightness).numpy() if hints.is_hint_aware(net) else lightness  # no hints given
ab = net.predict(inputs, batch_size=32, verbose=0)
lab = np.concatenate([lightness * 255.0, ab * 128.0 + 128.0], axis=-1).clip(0, 255).astype(np.uint8)
rgb = [cv2.cvtColor(x, cv2.COLOR_LAB2BGR) for x in lab]
print(len(rgb) / (time.perf_counter() - start))
"""


def _photo_set(sources: list[pathlib.Path], folder: pathlib.Path, size: tuple[int, int], count: int) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        image = cv2.resize(cv2.imread(str(sources[i % len(sources)])), size, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f"photo{i:04d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 92])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="A .keras model or run dir (default: the shipped model).")
    parser.add_argument("--photos", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--timed", type=int, default=96, help="Photos timed per throughput measurement.")
    args = parser.parse_args()
    sources = sorted(pathlib.Path(args.photos).glob("flowers/*/*.jpg"))[::4]
    model = args.model or str(REPO / "trainer" / "default_model" / "model.keras")
    work = pathlib.Path(tempfile.mkdtemp(prefix="colorize-benchmark-"))
    env = {"PYTHONPATH": str(REPO)}
    try:
        speed_rows = []
        for label, size in (("200x200", (200, 200)), ("1024x768", (1024, 768))):
            _photo_set(sources, work / label / "warmup", size, 8)
            _photo_set(sources, work / label / "timed", size, args.timed)
            row = [label]
            for batch in (1, 32):
                run = measure.python("-c", SPEED, str(work / label), str(work / f"out-{label}-{batch}"), model,
                                     str(batch), env=env)
                row.append(f"{float(run.output.split()[-1]):.1f}")
            speed_rows.append(row)
        memory_rows = []
        for count in (250, 1000):
            folder = work / f"folder{count}"
            _photo_set(sources, folder, (320, 240), count)
            run = measure.python("-m", "trainer.colorize", str(folder), f"--output={work / f'out{count}'}",
                                 f"--model={model}", "--batch_size=32", env=env)
            memory_rows.append(["trainer.colorize (streaming, photo's own size out)", count,
                                f"{run.peak_mb:.0f}", f"{count / run.seconds:.1f} (start-up included)"])
            notebook = measure.python("-c", NOTEBOOK, str(folder), model, env=env)
            memory_rows.append(["notebook way (array in RAM, 200x200 out)", count, f"{notebook.peak_mb:.0f}",
                                f"{float(notebook.output.split()[-1]):.1f} (start-up excluded)"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(measure.table(["photos", "images/s, batch 1", "images/s, batch 32"], speed_rows))
    print()
    print(measure.table(["how", "photos (320x240)", "peak MB", "images/s"], memory_rows))


if __name__ == "__main__":
    main()
