"""How much a few colour hints help: test-split metrics with N points of the truth revealed per photo.

    .venv/bin/python benchmarks/hints_quality.py --data_dir RECORDS [--model PATH] [--hints 0,1,2,5,10,20]

Each hint reveals the mean true colour of a small patch (as in training),
at positions fixed by a seed, through `trainer.evaluation.scoring` (the code behind
`python -m trainer.evaluate --hints N`). Prints a Markdown table beside the
gray baseline.
"""

import argparse
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import measure  # noqa: E402
from pipeline.dataset import Records  # noqa: E402
from trainer.evaluation import metrics, photo_sets, scoring  # noqa: E402
from trainer.evaluation.loading import Decoding, load  # noqa: E402
from trainer.evaluation.evaluator import Evaluator  # noqa: E402

SHOWN = ("rgb_psnr", "rgb_ssim", "colourfulness_ratio", "ab_error_auc", "neutral_false_colour")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--model", default=None, help="A .keras model or run dir (default: the shipped model).")
    parser.add_argument("--split", default="test")
    parser.add_argument("--hints", default="0,1,2,5,10,20")
    args = parser.parse_args()
    rows, gray = [], None
    for count in (int(n) for n in args.hints.split(",")):
        path, net, prep = load(args.model, Decoding(num_hints=count))
        scores, _ = scoring.score(Evaluator(net, num_hints=count),
                                  photo_sets.record_batches(Records.open(args.data_dir, args.split), 32, prep), 1)
        summary = scoring.summarize(scores)["overall"]
        gray = summary["gray"]
        rows.append([count, *[f"{summary['model'][name]:.4f}" for name in SHOWN]])
        print(f"{count} hints per photo: RGB PSNR {summary['model']['rgb_psnr']:.2f} dB", file=sys.stderr, flush=True)
    rows.append(["gray baseline", *[f"{gray[name]:.4f}" for name in SHOWN]])
    print(f"{path}, {args.split} split of {args.data_dir}, {scores and len(scores.labels)} photos\n")
    print(measure.table(["hints per photo", *[metrics.TITLES[name] for name in SHOWN]], rows))


if __name__ == "__main__":
    main()
