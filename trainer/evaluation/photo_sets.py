"""The photos a report scores, as batches in model tensors: a split of records, the held-out photos, or files.

Every source yields the same (lightness, ab, origins) batches, so scoring needs to know nothing of
where photos come from.
"""

import dataclasses
import posixpath
from typing import Iterable

import numpy as np
import tensorflow as tf

from pipeline import color, color_tf, dataset
from pipeline.errors import UsageError
from pipeline.preparation import Preparation
from trainer.applying import photos


@dataclasses.dataclass(frozen=True)
class Origin:
    """Where a scored photo comes from: its class and, when the source gives it, its file's name.

    Batches carry one per photo: the class for the per-class tables, both for the contact sheet's captions.
    """

    label: str
    name: str | None = None

    def caption(self) -> str:
        return f"{self.label} ({self.name})" if self.name else self.label


@dataclasses.dataclass(frozen=True)
class PhotoSet:
    """Photos to score: their batches, what they are (the report's `source`) and how many (None: unknown).

    `batches` yields (lightness, ab, [Origin]) once. `failures` lists the photos that could not be read,
    filled as the batches are read (photo files only; records were checked by the Beam job).
    """

    batches: Iterable
    description: str
    count: int | None = None
    failures: list = dataclasses.field(default_factory=list)


def record_batches(records: dataset.Records, batch_size: int, prep: Preparation,
                   holdout: dataset.Holdout = dataset.Holdout(), held_out: bool = False):
    """A split's records in model tensors (the held-out photos `holdout` names, or the others, by `held_out`);
    refused unless they were prepared as the model's own were."""
    refuse_other_preparation(records, prep)
    return labelled_batches(dataset.make_dataset(records, batch_size, training=False, with_labels=True,
                                                 holdout=holdout, held_out=held_out))


def refuse_other_preparation(records: dataset.Records, prep: Preparation) -> None:
    """A model scores only photos prepared as its training photos were (size and resize)."""
    made = records.preparation
    if (made.size, made.resize) != (prep.size, prep.resize):
        raise UsageError(f"{records.data_dir} holds {made.size}x{made.size} {made.resize} photos, the model was "
                         f"trained on {prep.size}x{prep.size} {prep.resize} ones")


def labelled_batches(batches: tf.data.Dataset):
    """(L8, ab8, label) uint8 record batches -> model tensors and each photo's Origin (its class)."""
    for l8, ab8, labels in batches:
        yield (color_tf.l8_to_input(l8), color_tf.ab8_to_target(ab8),
               [Origin(label.decode()) for label in labels.numpy()])


def photo_set(arguments: list[str], prep: Preparation, batch_size: int) -> PhotoSet:
    """Photo files, folders or globs, prepared as the Beam job prepares them; unreadable ones become failures."""
    failures = []
    return PhotoSet(photo_batches(arguments, prep, batch_size, failures), " ".join(arguments), failures=failures)


def photo_batches(arguments: list[str], prep: Preparation, batch_size: int, failures: list):
    """Photos prepared as the Beam job prepares them (`Preparation.square`, Lab8), in model tensors, and
    each photo's Origin (its class and file name); those that cannot be read are appended to `failures`."""
    found = photos.find(arguments)
    for start in range(0, len(found), batch_size):
        lab8, origins = [], []
        for photo in found[start:start + batch_size]:
            rgb = photos.read_rgb(photo, prep)
            if isinstance(rgb, photos.Failure):
                failures.append(rgb)
                continue
            lab8.append(color.rgb_to_lab8(prep.square(rgb)))
            origins.append(Origin(photo.label, posixpath.basename(photo.path)))
        if lab8:
            lab8 = np.stack(lab8)
            yield color_tf.l8_to_input(lab8[..., :1]), color_tf.ab8_to_target(lab8[..., 1:]), origins
