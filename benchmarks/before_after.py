"""A labelled before/after picture: the same full-size photos through two models' `trainer.colorize` path.

    .venv/bin/python benchmarks/before_after.py --before OLD.keras --after NEW.keras --output docs/before_after.jpg

Four groups of rows, the hard cases included, chosen by fixed rules (the same command picks the same photos):
photos of the test split (by the Beam job's split rule, spread over every class), photos of the species the
new model never saw, the test photos with the most white (leaves and flowers on white paper or sky: where
halos and tinted whites show), and test photos given 10 hints of their true colour where a person would click
(the middle of the largest one-colour regions; both models get the same hints, drawn as dots on the gray
panel). Each photo: gray | before | after | truth, colourized at full size by `trainer.applying.inference`.
"""

import argparse
import pathlib
import sys

import cv2
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import full_size  # noqa: E402
from trainer.applying import inference  # noqa: E402
from trainer.applying.hint_input import Hint  # noqa: E402
from trainer.evaluation import sheets  # noqa: E402

HINTS = 10


def groups(folder: pathlib.Path, args) -> list[tuple[str, list[full_size.Photo], bool]]:
    """(group name, photos, hinted) for the four groups of the module docstring."""
    test = full_size.test_photos(folder, args.photos + args.hinted)
    return [("test photos", test[:args.photos], False),
            ("species never seen", full_size.held_out_photos(folder, args.unseen), False),
            ("most white", full_size.white_background_photos(folder, args.white), False),
            (f"{HINTS} hints (dots)", test[args.photos:], True)]


def _dotted(gray: np.ndarray, given: list[Hint]) -> np.ndarray:
    radius = max(3, round(max(gray.shape[:2]) / 45))
    for hint in given:
        cv2.circle(gray, (int(hint.x), int(hint.y)), radius + 1, (255, 255, 255), -1)
        cv2.circle(gray, (int(hint.x), int(hint.y)), radius, tuple(int(c) for c in hint.rgb), -1)
    return gray


def panels(colourizers, photo: full_size.Photo, hinted: bool) -> list[np.ndarray]:
    rgb = photo.read()
    given = [Hint(x, y, colour) for x, y, colour in full_size.person_points(rgb, HINTS)] if hinted else []
    results = [colourizer([rgb], [given])[0] for colourizer in colourizers]
    return [_dotted(sheets.gray(rgb), given), *results, rgb]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--before_name", default="previous default")
    parser.add_argument("--after_name", default="new default")
    parser.add_argument("--output", required=True)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="The reference photos.")
    parser.add_argument("--photos", type=int, default=8, help="Photos of the test split.")
    parser.add_argument("--unseen", type=int, default=4, help="Photos of the held-out species.")
    parser.add_argument("--white", type=int, default=4, help="Test photos with the most white.")
    parser.add_argument("--hinted", type=int, default=4, help="Test photos given hints.")
    parser.add_argument("--per_row", type=int, default=2, help="Photos side by side in one row of the picture.")
    args = parser.parse_args()
    colourizers = [inference.load(path) for path in (args.before, args.after)]
    rows, labels = [], []
    for name, photos, hinted in groups(pathlib.Path(args.data), args):
        for start in range(0, len(photos), args.per_row):
            chosen = photos[start:start + args.per_row]
            row = [panel for photo in chosen for panel in panels(colourizers, photo, hinted)]
            blank = np.full((160, 160, 3), 255, np.uint8)
            rows.append(row + [blank] * 4 * (args.per_row - len(chosen)))
            labels.append(f"{name}: " + " | ".join(f"{p.label} ({p.path.name})" for p in chosen))
        print(f"  {name}: {len(photos)} photos", file=sys.stderr, flush=True)
    titles = ["gray", args.before_name, args.after_name, "truth"]
    picture = sheets.grid(rows, titles * args.per_row, labels, height=160)
    cv2.imwrite(args.output, picture[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"{args.output}: {picture.shape[1]}x{picture.shape[0]}")


if __name__ == "__main__":
    main()
