"""Halos: false colour where the truth is neutral, and colour error at edges, on full-size photos.

    .venv/bin/python benchmarks/halo_benchmark.py [--model PATH] [--photos ../shared/data] [--test 40] [--held_out 20]

Each full-size original of the test split (by the Beam job's split rule) and of the held-out species is
colourized by `trainer.colorize`'s own code with no hints, with the colour brought to full size
bilinearly and edge-aware (guided by the photo's lightness), and at the network's own 200x200 view
(no upsampling at all: what the network itself predicts). Neutral false colour: the mean chroma (Lab
units) of the result where the original's is below 5 (white paper, sky, gray); edge error: the mean ab
error within 4 px of a strong lightness edge. The truth's own neutral chroma is 0 by definition; for
scale, the 200x200 view of the original has some from resizing.
"""

import argparse
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import full_size, measure  # noqa: E402
from trainer.applying import inference  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="A .keras model or run dir (default: the shipped model).")
    parser.add_argument("--photos", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--test", type=int, default=40)
    parser.add_argument("--held_out", type=int, default=20)
    args = parser.parse_args()
    folder = pathlib.Path(args.photos)
    ways = {"edge-aware": inference.load(args.model), "bilinear": inference.load(args.model, edge_aware=False)}
    view = ways["bilinear"].preparation.view
    photos = full_size.test_photos(folder, args.test) + full_size.held_out_photos(folder, args.held_out)
    results = {name: [] for name in [*ways, "network's 200x200 view"]}
    for index, photo in enumerate(photos):
        rgb = photo.read()
        for name, colourizer in ways.items():
            results[name].append(full_size.scores(rgb, colourizer([rgb])[0]))
        small = view(rgb)
        results["network's 200x200 view"].append(full_size.scores(small, ways["bilinear"]([small])[0]))
        print(f"  {index + 1}/{len(photos)} photos", file=sys.stderr, flush=True)
    rows = []
    for name, scored in results.items():
        got = full_size.summary(scored)
        rows.append([name, f"{got['neutral_false_colour']:.2f}", f"{got['edge_error']:.2f}", f"{got['rgb_psnr']:.2f}",
                     f"{got['colourfulness_ratio']:.2f}"])
    print(f"{ways['bilinear'].source}, {len(photos)} full-size originals in {folder} "
          f"(test split and held-out species), no hints\n")
    print(measure.table(["colour brought to", "neutral false colour (Lab)", "error within 4 px of edges (Lab)",
                         "RGB PSNR (dB)", "colourfulness / truth"], rows))


if __name__ == "__main__":
    main()
