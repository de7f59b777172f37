"""Where a training run keeps its files, and how they are written and read.

| file | what |
| --- | --- |
| run_config.json | the flags it started with; a resumed run must use the same ones (see `run._MAY_CHANGE`) |
| backup/ | the latest checkpoint (weights, optimizer, data position, callback state): what a re-run resumes from |
| checkpoints/best.weights.h5 | the weights with the best validation loss so far |
| logs/ | TensorBoard: train/ and validation/ scalars per epoch, images/ photos every N epochs, a profile if asked |
| history.csv | one row of metrics per epoch, numbered from 1 as the console and curves.png number them |
| curves.png | loss, PSNR and SSIM per epoch |
| model.keras | the best network, loadable with Keras alone, carrying the records' photo preparation |
| saved_model/ | the best network as a SavedModel: any photo in, colour photo out (`trainer.applying.serving`) |
| evaluation/ | the test photos' report, as `python -m trainer.evaluate` writes it: metrics per class, contact sheet |
| metrics.json | final validation and test metrics beside the gray baseline's, or where the run diverged; written last |

Every file a run resumes from is written whole or not at all (`write_atomically`),
so a run killed at any moment, even mid-write, resumes where it left off.
"""

import csv
import json
from collections.abc import Callable

import tensorflow as tf


class RunFiles:
    """The paths of one run's files (see the module docstring)."""

    def __init__(self, model_dir: str):
        self.root = model_dir.rstrip("/")
        self.config = f"{self.root}/run_config.json"
        self.backup = f"{self.root}/backup"
        self.best_weights = f"{self.root}/checkpoints/best.weights.h5"
        self.logs = f"{self.root}/logs"
        self.history = f"{self.root}/history.csv"
        self.curves = f"{self.root}/curves.png"
        self.keras_model = f"{self.root}/model.keras"
        self.saved_model = f"{self.root}/saved_model"
        self.evaluation = f"{self.root}/evaluation"
        self.unseen_evaluation = f"{self.root}/evaluation/unseen"
        self.metrics = f"{self.root}/metrics.json"


def write_atomically(path: str, write: Callable[[str], None]) -> None:
    """`write(temporary)`, then rename the temporary file over `path`.

    Whoever reads `path` (a resumed run) finds the old file or the new one, never a
    torn one. The temporary file sits in the same folder, so the rename stays within
    one file system, and its name ends like `path` (Keras wants `.weights.h5`).
    """
    folder, name = path.rsplit("/", 1)
    tf.io.gfile.makedirs(folder)
    temporary = f"{folder}/.tmp-{name}"
    write(temporary)
    tf.io.gfile.rename(temporary, path, overwrite=True)


def write_text_atomically(path: str, text: str) -> None:
    def write(temporary):
        with tf.io.gfile.GFile(temporary, "w") as handle:
            handle.write(text)

    write_atomically(path, write)


def write_json(path: str, value: dict) -> None:
    """Whole or not at all: a run killed while writing metrics.json must not pass for finished."""
    write_text_atomically(path, json.dumps(value, indent=2, default=float))


def read_json(path: str) -> dict | None:
    """The file's JSON, None if there is no such file."""
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)


def history_rows(path: str) -> list[dict]:
    """history.csv's rows as written (strings), in epoch order; [] before the first epoch ends."""
    if not tf.io.gfile.exists(path):
        return []
    with tf.io.gfile.GFile(path) as handle:
        return list(csv.DictReader(handle))
