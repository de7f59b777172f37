"""How often the true colour at a random point is among the suggested colours there, on full-size photos.

    .venv/bin/python benchmarks/suggestions_benchmark.py --data_dir RECORDS [--model PATH] [--count 300]
        [--points 10] [--vividness model] [--seed 0]

The test split's photos are read at their own size from the files the records
name (each record carries its source file's path). At `--points` random pixels
of each (fixed seed), the true colour is the ab of the original's 5x5 mean
there (OpenCV's Lab, as the project's); the suggestions are
`trainer.colorize --suggest`'s (`trainer.applying.inference`), no hints. A
point counts as a hit when a suggestion lies within 15 Lab units (ab
distance) of the truth, for the first suggestion and for any of the first 3.
Each `--vividness` entry is a row: the distribution's vividness, `model` (the
model's own) or a number from 0 to 1. The gray row is
the share of points whose truth lies within 15 of no colour at all.
"""

import argparse
import collections
import pathlib
import sys

import cv2
import numpy as np
import tensorflow as tf

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import measure  # noqa: E402
from pipeline import dataset  # noqa: E402
from trainer.applying import inference  # noqa: E402

RADIUS = 15.0  # Lab units of ab distance
HALF = 2  # the truth is the mean over 5x5 pixels
FIRST = (1, 3)


def test_photos(data_dir: str, split: str) -> list[tuple[pathlib.Path, str]]:
    """(original file, class) of every record of the split; paths relative to the repository, as the Beam job ran."""
    records = dataset.Records.open(data_dir, split)
    spec = {name: tf.io.FixedLenFeature([], tf.string) for name in ("path", "label")}
    found = []
    for serialized in tf.data.TFRecordDataset(records.files, records.compression):
        example = tf.io.parse_single_example(serialized, spec)
        path = pathlib.Path(example["path"].numpy().decode())
        found.append((path if path.is_absolute() else REPO / path, example["label"].numpy().decode()))
    return sorted(found)


def true_ab(rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
    """ab (n, 2) in Lab units of the 5x5 mean colour around each point (x, y)."""
    blurred = cv2.blur(rgb.astype(np.float32) / 255.0, (2 * HALF + 1, 2 * HALF + 1), borderType=cv2.BORDER_REFLECT)
    lab = cv2.cvtColor(blurred, cv2.COLOR_RGB2LAB)
    return lab[points[:, 1], points[:, 0], 1:]


def ab_of(rgbs: list[tuple[int, int, int]]) -> np.ndarray:
    """uint8 RGB colours -> their ab (n, 2) in Lab units."""
    unit = np.asarray(rgbs, np.float32).reshape(1, -1, 3) / 255.0
    return cv2.cvtColor(unit, cv2.COLOR_RGB2LAB)[0, :, 1:]


def hits(truth: np.ndarray, suggested: list) -> dict[int, bool]:
    """Whether a suggestion among the first 1 and 3 lies within RADIUS of the true ab."""
    if not suggested:
        return {n: False for n in FIRST}
    distance = np.linalg.norm(ab_of([s.rgb for s in suggested]) - truth, axis=-1)
    return {n: bool((distance[:n] <= RADIUS).any()) for n in FIRST}




def measure_decoding(model, photos, points_per_photo: int, seed: int, text: str):
    """Hits per class ({class: {n: [bool]}}) and suggestions offered per point."""
    colourizer = inference.load(model, vividness=None if text == "model" else float(text))
    random = np.random.default_rng(seed)
    by_class, offered = collections.defaultdict(lambda: collections.defaultdict(list)), []
    for path, label in photos:
        rgb = cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1].copy()
        height, width = rgb.shape[:2]
        points = np.stack([random.integers(0, width, points_per_photo), random.integers(0, height, points_per_photo)], 1)
        found = colourizer.suggest(rgb, [(float(x), float(y)) for x, y in points])
        for truth, suggested in zip(true_ab(rgb, points), found):
            offered.append(len(suggested))
            for n, hit in hits(truth, suggested).items():
                by_class[label][n].append(hit)
    return colourizer.source, by_class, offered


def gray_share(photos, points_per_photo: int, seed: int) -> float:
    """Share of the same points whose true colour is within RADIUS of no colour (ab 0)."""
    random, near = np.random.default_rng(seed), []
    for path, _ in photos:
        rgb = cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1].copy()
        height, width = rgb.shape[:2]
        points = np.stack([random.integers(0, width, points_per_photo), random.integers(0, height, points_per_photo)], 1)
        near += list(np.linalg.norm(true_ab(rgb, points), axis=-1) <= RADIUS)
    return float(np.mean(near))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", default=None, help="A .keras model or run dir (default: the shipped model).")
    parser.add_argument("--count", type=int, default=300, help="Photos, spread evenly over the split.")
    parser.add_argument("--points", type=int, default=10, help="Random points per photo.")
    parser.add_argument("--vividness", default="model", help="Comma-separated: model, or numbers from 0 to 1.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    everything = test_photos(args.data_dir, args.split)
    photos = everything[:: max(1, len(everything) // args.count)][:args.count]
    rows, per_class = [], {}
    for text in args.vividness.split(","):
        source, by_class, offered = measure_decoding(args.model, photos, args.points, args.seed, text)
        overall = {n: np.mean([hit for hits_ in by_class.values() for hit in hits_[n]]) for n in FIRST}
        rows.append([text, f"{overall[1]:.3f}", f"{overall[3]:.3f}", f"{np.mean(offered):.2f}"])
        per_class[text] = {label: np.mean(hits_[3]) for label, hits_ in by_class.items()}
        print(f"{text}: first {overall[1]:.3f}, first 3 {overall[3]:.3f}", file=sys.stderr, flush=True)
    rows.append(["gray (no colour)", f"{gray_share(photos, args.points, args.seed):.3f}", "", ""])
    print(f"{source}; {len(photos)} photos of the {args.split} split of {args.data_dir} at full size, "
          f"{args.points} random points each (seed {args.seed}); hit: within {RADIUS:g} Lab units (ab)\n")
    print(measure.table(["vividness", "true colour is the first", "among the first 3",
                         "suggestions per point"], rows))
    labels = sorted(next(iter(per_class.values())))
    print("\nAmong the first 3, per class:\n")
    print(measure.table(["class", *per_class], [[label, *[f"{per_class[t][label]:.3f}" for t in per_class]]
                                                for label in labels]))


if __name__ == "__main__":
    main()
