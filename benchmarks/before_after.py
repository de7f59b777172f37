"""A labelled before/after picture: the same fixed photos through two models, beside gray and the truth.

    .venv/bin/python benchmarks/before_after.py --data_dir RECORDS --before OLD.keras --after NEW.keras \
        --holdout_labels windflower,pansy --white daisy --output docs/before_after.jpg

Three groups of rows, the hard cases included: photos of the test split (without
the held-out classes), photos of the classes the new model never saw
(`--holdout_labels`, from every split), and photos of a mostly white flower class
(`--white`, from the test split; some of its photos are of other colours), where a
confident wrong colour shows most. Photos
are evenly spaced through each group's fixed order, so the same command picks the
same photos. Each photo: gray | before | after | truth.
"""

import argparse
import itertools
import pathlib
import sys

import cv2
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline import color_tf, dataset  # noqa: E402
from trainer.evaluation import photo_sets, sheets  # noqa: E402
from trainer.evaluation.loading import load  # noqa: E402
from trainer.evaluation.evaluator import Evaluator  # noqa: E402


def _spaced(batches, count: int, keep=lambda origin: True) -> list:
    """(lightness, ab, photo_sets.Origin) of `count` photos evenly spaced through the batches' photos that `keep`."""
    everything = [(l, a, o) for ls, abs_, origins in batches for l, a, o in zip(ls.numpy(), abs_.numpy(), origins)
                  if keep(o)]
    step = len(everything) / count
    return [everything[int(i * step)] for i in range(min(count, len(everything)))]


def groups(args, prep) -> list[tuple[str, list]]:
    """(group name, photos) for the three groups of the module docstring."""
    holdout = dataset.Holdout(tuple(filter(None, args.holdout_labels.split(","))))
    test = dataset.Records.open(args.data_dir, args.split)
    found = [(f"{args.split} photos", _spaced(photo_sets.record_batches(test, 64, prep, holdout), args.photos))]
    if holdout:
        unseen = photo_sets.labelled_batches(dataset.held_out_dataset(args.data_dir, holdout, 64, with_labels=True))
        found.append(("never seen in training", _spaced(unseen, args.unseen)))
    if args.white:
        white = photo_sets.record_batches(test, 64, prep)
        found.append((f"{args.white}, a mostly white class",
                      _spaced(white, args.unseen, lambda origin: origin.label == args.white)))
    return found


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
    parser.add_argument("--photos", type=int, default=12, help="Photos of the split.")
    parser.add_argument("--holdout_labels", default="", help="Classes the new model was trained without.")
    parser.add_argument("--white", default="", help="A class of mostly white flowers in the split.")
    parser.add_argument("--unseen", type=int, default=6, help="Photos of the held-out classes, and white ones.")
    parser.add_argument("--per_row", type=int, default=2, help="Photos side by side in one row of the picture.")
    args = parser.parse_args()
    models = [load(path) for path in (args.before, args.after)]
    chosen = [(name, photo) for name, photos in groups(args, models[1][2]) for photo in photos]
    lightness = np.stack([photo[0] for _, photo in chosen])
    ab = np.stack([photo[1] for _, photo in chosen])
    predicted = [Evaluator(net).scores(lightness, ab)["predicted"].numpy() for _, net, _ in models]
    panels = [[sheets.gray(_rgb(lightness[i], ab[i] * 0)), _rgb(lightness[i], predicted[0][i]),
               _rgb(lightness[i], predicted[1][i]), _rgb(lightness[i], ab[i])] for i in range(len(chosen))]
    rows, labels = [], []
    for name, members in itertools.groupby(range(len(chosen)), key=lambda i: chosen[i][0]):
        members = list(members)
        for start in range(0, len(members), args.per_row):
            row = members[start:start + args.per_row]
            rows.append(sum((panels[i] for i in row), []) + [np.full_like(panels[0][0], 255)] * 4 * (
                args.per_row - len(row)))
            labels.append(f"{name}: " + " | ".join(chosen[i][1][2].caption() for i in row))
    titles = ["gray", args.before_name, args.after_name, "truth"]
    picture = sheets.grid(rows, titles * args.per_row, labels, height=160)
    cv2.imwrite(args.output, picture[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"{args.output}: {len(chosen)} photos ({', '.join(sorted({name for name, _ in chosen}))}), "
          f"{picture.shape[1]}x{picture.shape[0]}")


if __name__ == "__main__":
    main()
