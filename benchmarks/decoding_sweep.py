"""Choose how a colour-classification model decodes: validation metrics over temperatures and vividness.

    .venv/bin/python benchmarks/decoding_sweep.py --model RUN/model.keras --data_dir RECORDS \
        --reference trainer/default_model/model.keras [--write CHOSEN.keras]

The network runs once per photo; its colour distribution is then decoded at
every (T, vividness) of the grid by the model's own decoding layers. Rule for
the choice (the front between colour and faithfulness): the most colourful
setting among those whose RGB PSNR is at least `MIN_GAIN_DB` over the gray
baseline and whose neutral false colour is no higher than the reference
model's on the same photos. `--write` saves the model decoding that way.
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
from trainer.network import colour_classes, hints, model_file  # noqa: E402
from pipeline.dataset import Records  # noqa: E402
from trainer.evaluation import metrics, scoring  # noqa: E402

TEMPERATURES = (1.0, 0.6, 0.38, 0.2)
VIVIDNESS = (0.0, 0.25, 0.5, 0.75, 1.0)
MIN_GAIN_DB = 1.0


def _head(net: keras.Model):
    """The layers after the logits, as a model of its own (so the network body runs once per photo)."""
    logits = keras.Input(net.get_layer(colour_classes.LOGITS_LAYER).output.shape[1:])
    outputs = {colour_classes.LOGITS_LAYER: logits}
    for layer in net.layers[net.layers.index(net.get_layer(colour_classes.LOGITS_LAYER)) + 1:]:
        inbound = layer._inbound_nodes[0].input_tensors
        outputs[layer.name] = layer(*[outputs[t._keras_history.operation.name] for t in inbound]) if len(
            inbound) == 1 else layer([outputs[t._keras_history.operation.name] for t in inbound])
    return keras.Model(logits, outputs[net.layers[-1].name])


def sweep(net: keras.Model, prep, data_dir: str, split: str) -> tuple[dict, dict]:
    body = keras.Model(net.inputs, net.get_layer(colour_classes.LOGITS_LAYER).output)
    head = _head(net)
    settings = list(itertools.product(TEMPERATURES, VIVIDNESS))
    values = {s: {name: [] for name in metrics.NAMES} for s in settings}
    gray = {name: [] for name in metrics.NAMES}
    compute = tf.function(metrics.per_image)
    for lightness, ab, _ in scoring.record_batches(Records.open(data_dir, split), 32, prep):
        logits = body(hints.network_input(lightness), training=False)
        for setting in settings:
            colour_classes.set_decoding(head, *setting)
            for name, value in compute(lightness, ab, head(logits)).items():
                values[setting][name] += value.numpy().tolist()
        for name, value in compute(lightness, ab, tf.zeros_like(ab)).items():
            gray[name] += value.numpy().tolist()
    return {s: metrics.mean(v) for s, v in values.items()}, metrics.mean(gray)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--reference", required=True, help="The model whose neutral false colour must not be exceeded.")
    parser.add_argument("--split", default="val")
    parser.add_argument("--write", default=None, help="Save the model decoding with the chosen setting here.")
    args = parser.parse_args()
    _, net, prep = scoring.load(args.model)
    results, gray = sweep(net, prep, args.data_dir, args.split)
    reference = scoring.overall(args.reference, args.data_dir, args.split, 32)
    admissible = [s for s, r in results.items() if r["rgb_psnr"] >= gray["rgb_psnr"] + MIN_GAIN_DB
                  and r["neutral_false_colour"] <= reference["neutral_false_colour"]]
    chosen = max(admissible, key=lambda s: results[s]["colourfulness_ratio"]) if admissible else None
    rows = [[t, v, f"{r['rgb_psnr'] - gray['rgb_psnr']:+.2f}", f"{r['rgb_ssim']:.4f}",
             f"{r['colourfulness_ratio']:.2f}", f"{r['neutral_false_colour']:.1f}", f"{r['ab_error_auc']:.4f}",
             "chosen" if (t, v) == chosen else ""] for (t, v), r in results.items()]
    rows.append(["reference", "", f"{reference['rgb_psnr'] - gray['rgb_psnr']:+.2f}", f"{reference['rgb_ssim']:.4f}",
                 f"{reference['colourfulness_ratio']:.2f}", f"{reference['neutral_false_colour']:.1f}",
                 f"{reference['ab_error_auc']:.4f}", ""])
    print(f"{args.split} split of {args.data_dir}; gray baseline RGB PSNR {gray['rgb_psnr']:.2f} dB\n")
    print(measure.table(["T", "vividness", "RGB PSNR - gray (dB)", "RGB SSIM", "colourfulness / truth",
                         "neutral false colour", "ab error AuC", ""], rows))
    if chosen is None:
        print("\nno setting meets the rule")
    elif args.write:
        colour_classes.set_decoding(net, *chosen)
        model_file.save(net, args.write, prep)
        print(f"\nwrote {args.write} decoding at T = {chosen[0]}, vividness = {chosen[1]}")


if __name__ == "__main__":
    main()
