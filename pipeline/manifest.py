"""manifest.json, the Beam job's account of what it wrote, as a typed object.

Written last by the job (`beam_jobs.manifest` counts what goes in it), read by
the trainer, evaluation and studies through `Manifest.from_json`: nothing else
reads or writes its keys. Its presence means the job finished. Every input is
accounted for: inputs = written + rejected + duplicates.

No TensorFlow here (Beam workers import this module); callers do the file I/O.
"""

import dataclasses

from pipeline import ab_bins, color, schema, splits
from pipeline.errors import DataError
from pipeline.preparation import Preparation

FORMAT = "lab8-pairs/3"


@dataclasses.dataclass(frozen=True)
class SplitEntry:
    """One split's record files and what is in them."""

    examples: int = 0
    shards: tuple[str, ...] = ()
    by_source: dict[str, int] = dataclasses.field(default_factory=dict)
    by_label: dict[str, int] = dataclasses.field(default_factory=dict)
    by_fold: dict[int, int] = dataclasses.field(default_factory=dict)
    ab_histogram: tuple[int, ...] = (0,) * ab_bins.COUNT  # pixels per bin of `pipeline.ab_bins`

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "shards": list(self.shards), "ab_histogram": list(self.ab_histogram),
                "by_fold": {str(fold): count for fold, count in sorted(self.by_fold.items())}}

    @classmethod
    def from_json(cls, value: dict) -> "SplitEntry":
        return cls(value["examples"], tuple(value["shards"]), value["by_source"], value["by_label"],
                   {int(fold): count for fold, count in value["by_fold"].items()}, tuple(value["ab_histogram"]))


@dataclasses.dataclass(frozen=True)
class Manifest:
    """What a finished Beam job wrote: how photos were prepared, split and stored, and what was refused."""

    preparation: Preparation
    split_rule: splits.SplitRule
    compression: str  # as tf.data reads it: "" or "GZIP"
    splits: dict[str, SplitEntry]
    inputs: int = 0
    duplicates: int = 0
    rejected: dict[str, int] = dataclasses.field(default_factory=dict)  # reason -> count
    rejected_files: tuple[str, ...] = ()  # JSON-lines files listing each refused photo and why
    created: str = ""
    args: dict = dataclasses.field(default_factory=dict)
    versions: dict = dataclasses.field(default_factory=dict)

    @property
    def written(self) -> int:
        return sum(entry.examples for entry in self.splits.values())

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "created": self.created,
            "preparation": self.preparation.to_json(),
            "color": color.CONVENTION,
            "compression": self.compression,
            "features": {"bytes": list(schema.BYTES_FEATURES), "int64": list(schema.INT_FEATURES)},
            "ab_bins": {"step": ab_bins.STEP, "axis_centres": ab_bins.AXIS.tolist(),
                        "index": "a_index * len(axis_centres) + b_index, nearest centre"},
            "split_rule": {"by": "sha256 of the file's bytes", "percentages": list(self.split_rule.percentages),
                           "folds": self.split_rule.folds, "num_shards": self.split_rule.num_shards},
            "counts": {"inputs": self.inputs, "written": self.written, "rejected": sum(self.rejected.values()),
                       "duplicates": self.duplicates},
            "rejected": dict(sorted(self.rejected.items())),
            "rejected_files": sorted(self.rejected_files),
            "splits": {name: entry.to_json() for name, entry in self.splits.items()},
            "args": self.args,
            "versions": self.versions,
        }

    @classmethod
    def from_json(cls, value: dict, where: str = schema.MANIFEST) -> "Manifest":
        """The manifest, or a DataError saying why these records cannot be read (written by another version)."""
        if value.get("format") != FORMAT:
            raise DataError(f"{where} is format {value.get('format')!r}, this version reads {FORMAT!r}: "
                            "run `python -m beam_jobs.preprocess` again")
        rule = value["split_rule"]
        return cls(
            preparation=Preparation.from_json(value["preparation"]),
            split_rule=splits.SplitRule(tuple(rule["percentages"]), rule["folds"], rule["num_shards"]),
            compression=value["compression"],
            splits={name: SplitEntry.from_json(entry) for name, entry in value["splits"].items()},
            inputs=value["counts"]["inputs"], duplicates=value["counts"]["duplicates"],
            rejected=value["rejected"], rejected_files=tuple(value["rejected_files"]),
            created=value["created"], args=value["args"], versions=value["versions"])
