"""Choose how a colour-classification model decodes, by its worst class on seen and on unseen photos.

    .venv/bin/python benchmarks/decoding_sweep.py --model RUN/model.keras --data_dir RECORDS \
        --holdout_labels windflower,pansy --reference trainer/default_model/model.keras [--write CHOSEN.keras]

The model was trained without the `--holdout_labels` classes. Two sets of photos:
*seen*, the validation split without those classes (the species it trained on),
and *unseen*, every photo of those classes (species it never saw). The network
runs once per photo (and once more on its mirror image); its colour
distribution is then decoded at every (T, vividness, mirror) of the grid by the
model's own decoding layers. *mirror*: the logits of the photo and of its mirror
image (mirrored back) averaged before decoding; where the two views disagree
(a white petal that might be yellow) the colour stays near the mean instead of
following one view's guess.

The rule, by the worst case (a confidently wrong colour looks worse than a muted
right one) and by colour (a nearly gray result is what people complain about
most): among the settings at least as colourful on seen photos as the reference
model, those whose worst class, seen or unseen, does no worse against the gray
baseline than the reference model's worst class on the same photos (and than
gray itself, when the reference's worst class is above it); of them, the most
colourful on seen photos; if none, the setting whose worst class loses least
(among the colourful enough ones, if any). `--write` saves the model decoding that way.
"""

import argparse
import itertools
import pathlib
import sys

import keras
import tensorflow as tf

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import measure  # noqa: E402
from pipeline import dataset  # noqa: E402
from trainer.network import colour_classes, hints, model_file, models  # noqa: E402
from trainer.evaluation import metrics, photo_sets, scoring  # noqa: E402
from trainer.evaluation.loading import load  # noqa: E402
from trainer.evaluation.evaluator import Evaluator  # noqa: E402

TEMPERATURES = (1.0, 0.6, 0.38, 0.2)
VIVIDNESS = (0.0, 0.25, 0.5)
MIRROR = (False, True)
BATCH = 32


def _head(net: keras.Model) -> keras.Model:
    """The layers after the logits, as a model of its own (so the network body runs once per photo)."""
    logits = keras.Input(net.get_layer(colour_classes.LOGITS_LAYER).output.shape[1:])
    return keras.Model(logits, models.decode_logits(net, logits))


def _sets(data_dir: str, holdout: dataset.Holdout, prep) -> dict:
    seen = photo_sets.record_batches(dataset.Records.open(data_dir, "val"), BATCH, prep, holdout)
    unseen = photo_sets.labelled_batches(dataset.held_out_dataset(data_dir, holdout, BATCH, with_labels=True))
    return {"seen": seen, "unseen": unseen}


def sweep(net: keras.Model, batches) -> dict:
    """{(T, vividness, mirror): summary (overall and per class, model and gray)} over `batches`."""
    body = keras.Model(net.inputs, net.get_layer(colour_classes.LOGITS_LAYER).output)
    head = _head(net)
    settings = list(itertools.product(TEMPERATURES, VIVIDNESS, MIRROR))
    scores = {setting: scoring.Scores() for setting in settings}
    compute = tf.function(metrics.per_image)
    for lightness, ab, labels in batches:
        inputs = hints.network_input(lightness)
        logits = {False: body(inputs, training=False)}
        logits[True] = (logits[False] + tf.reverse(body(tf.reverse(inputs, [2]), training=False), [2])) / 2
        gray = compute(lightness, ab, tf.zeros_like(ab))
        for temperature, vividness, mirror in settings:
            colour_classes.set_decoding(head, temperature, vividness)
            values = compute(lightness, ab, head(logits[mirror]))
            scores[(temperature, vividness, mirror)].add(values, gray, labels)
    return {setting: scoring.summarize(s) for setting, s in scores.items()}


def _gain(group: dict) -> float:
    return group["model"]["rgb_psnr"] - group["gray"]["rgb_psnr"]


def worst(summary: dict) -> tuple[str, float]:
    return scoring.worst_class(summary) or ("all", _gain(summary["overall"]))


def choose(results: dict, reference: dict) -> tuple:
    """The rule of the module docstring, over {set name: {setting: summary}} and the reference's {set name: summary}."""
    settings = list(results["seen"])
    floor = {s: min(worst(results[name][s])[1] for name in results) for s in settings}
    bar = min(0.0, min(worst(summary)[1] for summary in reference.values()))
    colour = {s: results["seen"][s]["overall"]["model"]["colourfulness_ratio"] for s in settings}
    vivid = [s for s in settings if colour[s] >= reference["seen"]["overall"]["model"]["colourfulness_ratio"]]
    admissible = [s for s in vivid if floor[s] >= bar]
    if admissible:
        return max(admissible, key=colour.get)
    return max(vivid or settings, key=floor.get)


def _row(name: str, seen: dict, unseen: dict, note: str = "") -> list:
    cells = [name]
    for summary in (seen, unseen):
        model = summary["overall"]["model"]
        label, gain = worst(summary)
        cells += [f"{_gain(summary['overall']):+.2f}", f"{model['colourfulness_ratio']:.2f}",
                  f"{model['neutral_false_colour']:.1f}", f"{label} {gain:+.2f}"]
    return cells + [note]


def per_class_table(results: dict) -> str:
    """RGB PSNR over gray per class, seen and unseen, one column per result."""
    names = list(results)
    classes = sorted({(set_name, label) for summaries in results.values() for set_name, summary in summaries.items()
                      for label in summary["per_class"]})
    rows = [[f"{label} ({set_name})"] + [f"{_gain(results[n][set_name]['per_class'][label]):+.2f}" for n in names]
            for set_name, label in classes]
    return measure.table(["class", *names], rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--holdout_labels", required=True, help="The classes the model was trained without.")
    parser.add_argument("--reference", required=True, help="Another model, scored on the same photos as it decodes.")
    parser.add_argument("--write", default=None, help="Save the model decoding with the chosen setting here.")
    args = parser.parse_args()
    holdout = dataset.Holdout(tuple(args.holdout_labels.split(",")))
    _, net, prep = load(args.model)
    results = {name: sweep(net, batches) for name, batches in _sets(args.data_dir, holdout, prep).items()}
    _, reference, reference_prep = load(args.reference)
    referenced = {name: scoring.summarize(scoring.score(Evaluator(reference), batches, 1)[0])
                  for name, batches in _sets(args.data_dir, holdout, reference_prep).items()}
    chosen = choose(results, referenced)
    header = ["T, vividness, mirror"] + [f"{which} {what}" for which in ("seen", "unseen") for what in (
        "RGB PSNR - gray (dB)", "colourfulness / truth", "neutral false colour", "worst class (dB)")] + [""]
    rows = [_row(f"{t}, {v}, {'yes' if m else 'no'}", results["seen"][(t, v, m)], results["unseen"][(t, v, m)],
                 "chosen" if (t, v, m) == chosen else "") for t, v, m in results["seen"]]
    rows.append(_row("reference", referenced["seen"], referenced["unseen"]))
    print(f"seen: val split without {holdout.describe()}; unseen: every photo of them\n")
    print(measure.table(header, rows))
    print("\nRGB PSNR over gray per class, chosen setting and reference:\n")
    print(per_class_table({"chosen": {name: results[name][chosen] for name in results}, "reference": referenced}))
    if args.write:
        colour_classes.set_decoding(net, *chosen[:2])
        if chosen[2]:
            net = models.mirror_averaged(net)
        model_file.save(net, args.write, prep)
        print(f"\nwrote {args.write} decoding at T = {chosen[0]}, vividness = {chosen[1]}, mirror = {chosen[2]}")


if __name__ == "__main__":
    main()
