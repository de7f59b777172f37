"""The records' splits a training run uses, and the checks that they fit the run."""

import functools

import tensorflow as tf

from pipeline import dataset
from pipeline.errors import ConfigError, DataError
from trainer.network import colour_classes
from trainer.training import species
from trainer.training.config import RunConfig


class Splits:
    """Training, validation (the val split or a cross-validation fold), test and held-out photos, and their colour bins."""

    def __init__(self, config: RunConfig, global_batch: int):
        data_dir, fold = config.data_dir, config.cv_fold
        self.holdout = dataset.Holdout(config.holdout_labels, config.holdout_sources)
        self.train = dataset.Records.open(data_dir, "train")
        self.size = self.train.image_size[0]
        if fold is None:
            self.train_folds, self.val, self.val_folds = None, dataset.Records.open(data_dir, "val"), None
        else:
            folds = self.train.manifest.split_rule.folds
            if fold >= folds:
                raise ConfigError(f"--cv_fold={fold}, but the records have {folds} folds (0-{folds - 1})")
            self.train_folds = set(range(folds)) - {fold}
            self.val, self.val_folds = self.train, {fold}
        self.test = dataset.Records.open(data_dir, "test")
        self.bins = colour_classes.ColourBins.from_histogram(self.train.ab_histogram())
        self.species = species.names(self.train.manifest, self.holdout.labels)
        self.train_examples = self.train.num_examples(self.train_folds, self.holdout)
        if self.train_examples < global_batch:
            raise DataError(f"the training data has {self.train_examples} examples, fewer than one "
                            f"batch of {global_batch}")

    def evaluation(self, batch_size: int, with_labels: bool = False) -> tf.data.Dataset:
        """The validation photos the run may see (held-out ones excluded), in a fixed order."""
        return dataset.make_dataset(self.val, batch_size, training=False, folds=self.val_folds, holdout=self.holdout,
                                    with_labels=with_labels)

    def unseen(self, batch_size: int, with_labels: bool = False) -> tf.data.Dataset | None:
        """Every photo of the held-out classes or sources, from all three splits (None without a holdout)."""
        if not self.holdout:
            return None
        parts = [dataset.make_dataset(records, batch_size, training=False, holdout=self.holdout, held_out=True,
                                      with_labels=with_labels)
                 for records in (self.train, self.val, self.test)
                 if records.num_examples(holdout=self.holdout, held_out=True)]
        return functools.reduce(tf.data.Dataset.concatenate, parts)

    def unseen_examples(self) -> int:
        return sum(r.num_examples(holdout=self.holdout, held_out=True) for r in (self.train, self.val, self.test))

    def describe(self) -> dict:
        return {"data_dir": self.train.data_dir, "image_size": [self.size, self.size],
                "train_examples": self.train_examples,
                "validation": "val split" if self.val_folds is None else f"fold {min(self.val_folds)} of train",
                "val_examples": self.val.num_examples(self.val_folds, self.holdout),
                "test_examples": self.test.num_examples(holdout=self.holdout),
                **({"held_out": self.holdout.describe(), "unseen_examples": self.unseen_examples()}
                   if self.holdout else {})}
