"""A labelled before/after picture: the same fixed test photos through two models, beside gray and the truth.

    .venv/bin/python benchmarks/before_after.py --data_dir RECORDS --before OLD.keras --after NEW.keras \
        --output docs/before_after.jpg [--photos 24]

The photos are evenly spaced through the split's fixed evaluation order, so
the same command picks the same photos. Each row: gray | before | after | truth.
"""

import argparse
import pathlib
import sys

import cv2
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline import color_tf  # noqa: E402
from pipeline.dataset import Records  # noqa: E402
from trainer.evaluation import scoring, sheets  # noqa: E402


def fixed_photos(data_dir: str, split: str, count: int, prep):
    """(lightness, ab, label) of `count` photos evenly spaced through the split."""
    everything = [(l, a, lab) for ls, abs_, labels in scoring.record_batches(Records.open(data_dir, split), 64, prep)
                  for l, a, lab in zip(ls.numpy(), abs_.numpy(), labels)]
    step = len(everything) / count
    return [everything[int(i * step)] for i in range(count)]


def _rgb(lightness, ab) -> np.ndarray:
    return color_tf.unit_to_rgb(color_tf.to_rgb(lightness[None], ab[None])[0]).numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--before_name", default="previous default")
    parser.add_argument("--after_name", default="new default")
    parser.add_argument("--output", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--photos", type=int, default=24)
    parser.add_argument("--per_row", type=int, default=2, help="Photos side by side in one row of the picture.")
    args = parser.parse_args()
    models = [scoring.load(path) for path in (args.before, args.after)]
    chosen = fixed_photos(args.data_dir, args.split, args.photos, models[1][2])
    lightness = np.stack([c[0] for c in chosen])
    ab = np.stack([c[1] for c in chosen])
    predicted = [scoring.predict(net, lightness, ab).numpy() for _, net, _ in models]
    rows = [[sheets.gray(_rgb(lightness[i], ab[i] * 0)), _rgb(lightness[i], predicted[0][i]),
             _rgb(lightness[i], predicted[1][i]), _rgb(lightness[i], ab[i])] for i in range(len(chosen))]
    titles = ["gray", args.before_name, args.after_name, "truth"]
    groups = [rows[i:i + args.per_row] for i in range(0, len(rows), args.per_row)]
    labels = [" | ".join(chosen[i][2] for i in range(g, min(g + args.per_row, len(chosen))))
              for g in range(0, len(rows), args.per_row)]
    picture = sheets.grid([sum(group, []) for group in groups], titles * args.per_row, labels, height=160)
    cv2.imwrite(args.output, picture[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"{args.output}: {len(chosen)} photos of the {args.split} split, {picture.shape[1]}x{picture.shape[0]}")


if __name__ == "__main__":
    main()
