"""Edge-aware against bilinear upsampling of the predicted colour, on large photos: accuracy at edges and speed.

    .venv/bin/python benchmarks/edge_benchmark.py [--model PATH] [--photos ../shared/data] [--count 40]

The reference photos are at most 320 px, so the test-split photos (chosen by
the Beam job's own content-hash rule) are enlarged to a long side of 1,200 px
(bicubic): their edges are softer than a camera's, which favours bilinear.
For each photo the model predicts colour once; it is brought to full size
bilinearly and edge-aware (`trainer.applying.upsampling`), and compared with the
photo's true ab: over all pixels, and over pixels within 4 px of a strong
lightness edge (Canny on L8, thresholds 50/150). Then `trainer.colorize`'s
loop colourizes 1024x768 photos both ways (photos/s after a warm-up).
"""

import argparse
import pathlib
import sys
import tempfile
import time

import cv2
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import full_size, measure  # noqa: E402
from pipeline import color  # noqa: E402
from trainer.applying import inference, upsampling  # noqa: E402

LONG_SIDE = 1200
EDGE_BAND = full_size.EDGE_BAND


def _enlarge(rgb: np.ndarray) -> np.ndarray:
    scale = LONG_SIDE / max(rgb.shape[:2])
    return cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_CUBIC)


def _errors(rgb: np.ndarray, ab_small: np.ndarray) -> dict[str, tuple[float, float]]:
    """Mean chroma error (Lab units) near edges and everywhere, for each way of upsampling."""
    lab8 = color.rgb_to_lab8(rgb)
    lightness, truth = lab8[..., 0], lab8[..., 1:].astype(np.float32) - color.AB_OFFSET
    edges = cv2.dilate(cv2.Canny(lightness, 50, 150), np.ones((2 * EDGE_BAND + 1,) * 2, np.uint8)) > 0
    ways = {"bilinear": cv2.resize(ab_small, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR),
            "edge-aware": upsampling.guided_upsample(lightness.astype(np.float32) / 255.0, ab_small)}
    result = {}
    for name, ab in ways.items():
        error = np.linalg.norm(np.round(ab * 128.0) - truth, axis=-1)
        result[name] = (float(error[edges].mean()), float(error.mean()))
    return result


def _speed(model: str, folder: pathlib.Path, edge_aware: bool, batch: int = 16) -> float:
    inference.run([str(folder / "warmup")], tempfile.mkdtemp(), model, batch_size=batch, edge_aware=edge_aware)
    start = time.perf_counter()
    written, _ = inference.run([str(folder / "timed")], tempfile.mkdtemp(), model, batch_size=batch,
                               edge_aware=edge_aware)
    return written / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="A .keras model or run dir (default: the shipped model).")
    parser.add_argument("--photos", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--count", type=int, default=40)
    args = parser.parse_args()
    colourizer = inference.load(args.model)
    photos = full_size.test_photos(pathlib.Path(args.photos), args.count)
    totals = {"bilinear": [], "edge-aware": []}
    for photo in photos:
        rgb = _enlarge(photo.read())
        ab_small = colourizer.net.predict_on_batch(colourizer.view_input(rgb, [])[None])[0]
        for name, values in _errors(rgb, ab_small).items():
            totals[name].append(values)
    rows = [[name, f"{np.mean([v[0] for v in values]):.2f}", f"{np.mean([v[1] for v in values]):.2f}"]
            for name, values in totals.items()]
    print(f"{len(photos)} test photos enlarged to a long side of {LONG_SIDE} px; chroma error in Lab units\n")
    print(measure.table(["upsampling", f"error within {EDGE_BAND} px of strong L edges", "error, all pixels"], rows))
    work = pathlib.Path(tempfile.mkdtemp(prefix="edge-benchmark-"))
    sources = sorted(pathlib.Path(args.photos).glob("flowers/*/*.jpg"))[::8]
    for part, count in (("warmup", 16), ("timed", 96)):
        (work / part).mkdir()
        for i in range(count):
            image = cv2.resize(cv2.imread(str(sources[i % len(sources)])), (1024, 768), interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(work / part / f"photo{i:03d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    model = args.model
    speeds = [[name, f"{_speed(model, work, edge_aware):.1f}"] for name, edge_aware in
              (("bilinear", False), ("edge-aware", True))]
    print()
    print(measure.table(["upsampling", "photos/s at 1024x768 (trainer.colorize loop, batch 16)"], speeds))


if __name__ == "__main__":
    main()
