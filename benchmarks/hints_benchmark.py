"""Colour hints as people give them: full-size photos through `trainer.colorize --hints`'s own code.

    .venv/bin/python benchmarks/hints_benchmark.py [--model PATH] [--photos ../shared/data] [--test 40] [--held_out 20]

For each full-size original of the test split (by the Beam job's split rule) and of the species the
model never saw, 0, 1, 3 and 10 hints of the true colour (the 5x5 mean at the point, as a colour picker
gives it) at random points and at the points a person would pick (the middle of the largest regions of
one colour), colourized by `trainer.applying.inference` (what the command and the page run). Prints RGB
PSNR, its gain over no hints and the colourfulness ratio, for each group of photos.
"""

import argparse
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import full_size, measure  # noqa: E402
from trainer.applying import inference  # noqa: E402
from trainer.applying.hint_input import Hint  # noqa: E402

COUNTS = (0, 1, 3, 10)
PLACEMENTS = {"random": lambda rgb, n, seed: full_size.random_points(rgb, n, seed),
              "person": lambda rgb, n, seed: full_size.person_points(rgb, n)}


def measure_photos(colourizer, photos: list[full_size.Photo]) -> dict[tuple[str, int], list[dict]]:
    """{(placement, hints): per-photo scores}; no hints is scored once, under both placements."""
    results: dict[tuple[str, int], list[dict]] = {}
    for index, photo in enumerate(photos):
        rgb = photo.read()
        plain = full_size.scores(rgb, colourizer([rgb])[0])
        for placement, pick in PLACEMENTS.items():
            results.setdefault((placement, 0), []).append(plain)
            for count in COUNTS[1:]:
                given = [Hint(x, y, colour) for x, y, colour in pick(rgb, count, index)]
                results.setdefault((placement, count), []).append(full_size.scores(rgb, colourizer([rgb], [given])[0]))
        print(f"  {index + 1}/{len(photos)} photos", file=sys.stderr, flush=True)
    return results


def rows(group: str, results: dict) -> list[list[str]]:
    table = []
    for placement in PLACEMENTS:
        base = full_size.summary(results[(placement, 0)])
        for count in COUNTS:
            got = full_size.summary(results[(placement, count)])
            table.append([group, placement, str(count), f"{got['rgb_psnr']:.2f}",
                          f"{got['rgb_psnr'] - base['rgb_psnr']:+.2f}", f"{got['colourfulness_ratio']:.2f}"])
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="A .keras model or run dir (default: the shipped model).")
    parser.add_argument("--photos", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--test", type=int, default=40, help="Photos of the test split.")
    parser.add_argument("--held_out", type=int, default=20, help="Photos of the held-out species.")
    args = parser.parse_args()
    colourizer = inference.load(args.model)
    folder = pathlib.Path(args.photos)
    groups = {"test split": full_size.test_photos(folder, args.test),
              "held-out species": full_size.held_out_photos(folder, args.held_out)}
    table = []
    for group, photos in groups.items():
        table += rows(f"{group} ({len(photos)})", measure_photos(colourizer, photos))
    print(f"{colourizer.source}, full-size originals in {folder}; hints: the true 5x5 mean colour at each point\n")
    print(measure.table(["photos", "points", "hints", "RGB PSNR (dB)", "gain over none", "colourfulness / truth"],
                        table))


if __name__ == "__main__":
    main()
