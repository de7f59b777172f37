"""What a report writes: metrics.json, metrics.md (the table `python -m trainer.evaluate` prints) and
contact_sheet.png."""

import json

import cv2
import numpy as np
import tensorflow as tf

from trainer.evaluation import metrics, scoring

COLUMNS = ("rgb_psnr", "rgb_ssim", "ab_psnr", "ab_ssim", "colourfulness", "colourfulness_ratio", "ab_error_auc",
           "neutral_false_colour")  # the table's, titled by metrics.TITLES
AB_SSIM_NOTE = ("ab SSIM is below the gray baseline's in some rows, as it often is: on the seed scale (ab/128 + 1, "
                "values near 1.0) a wrong colour barely lowers SSIM's mean term, so the score is mostly its structure "
                "term, which a flat plane keeps high wherever the truth's colour is locally even, and which any colour "
                "variation the truth lacks (blotches, edges in the wrong place) lowers. It is the original project's "
                "measure, kept for comparison; judge colour by RGB PSNR, ab error AuC and colourfulness.\n")


def _groups(summary: dict) -> list[tuple[str, dict]]:
    """(label, group) per class, then ("all", the overall group with its count)."""
    return [*summary["per_class"].items(), ("all", {"count": summary["count"], **summary["overall"]})]


def _cells(label: str, group: dict) -> list[str]:
    cells = [label, str(group["count"])]
    for name in COLUMNS:
        if name == "colourfulness_ratio":
            cells.append(f"{group['model'][name]:.2f}")
            continue
        other = group["model"]["colourfulness_true"] if name == "colourfulness" else group["gray"][name]
        cells.append(f"{group['model'][name]:.4f} / {other:.4f}")
    return cells


def markdown(summary: dict) -> str:
    """One row per class and one overall: each metric as model / gray baseline (colourfulness: model / truth);
    then the class the model helps least, and why ab SSIM may favour gray when it does."""
    header = ["class", "photos"] + [metrics.TITLES[name] for name in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cells(label, group)) + " |" for label, group in _groups(summary)]
    text = "\n".join(lines)
    text += "\n\nEach cell: model / gray baseline (colourfulness: model / ground truth).\n"
    worst = scoring.worst_class(summary)
    if worst:
        text += f"Worst class: {worst[0]}, RGB PSNR {worst[1]:+.2f} dB over the gray baseline.\n"
    if any(group["model"]["ab_ssim"] < group["gray"]["ab_ssim"] for _, group in _groups(summary)):
        text += AB_SSIM_NOTE
    return text


def write(output: str, summary: dict, sheet: np.ndarray) -> None:
    """metrics.json, metrics.md and contact_sheet.png into `output` (local or gs://)."""
    tf.io.gfile.makedirs(output)
    with tf.io.gfile.GFile(f"{output}/metrics.json", "w") as handle:
        json.dump(summary, handle, indent=2)
    with tf.io.gfile.GFile(f"{output}/metrics.md", "w") as handle:
        handle.write(markdown(summary))
    with tf.io.gfile.GFile(f"{output}/contact_sheet.png", "wb") as handle:
        handle.write(cv2.imencode(".png", sheet[..., ::-1])[1].tobytes())
