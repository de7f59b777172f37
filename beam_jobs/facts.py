"""What the Beam job reports for manifest.json: one small fact per event, counted by equality.

Frozen dataclasses, so that Beam can count them (a GroupByKey needs a
deterministic encoding, which Beam gives frozen dataclasses) and
`beam_jobs.manifest` can tell them apart by type, not by a string in a tuple.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Input:
    """A file matched under an --input."""


@dataclasses.dataclass(frozen=True)
class Duplicate:
    """A file with the same bytes as one kept."""


@dataclasses.dataclass(frozen=True)
class Rejected:
    """A file not written, and why (`pipeline.images` reasons, `no_colour`, `changed`, ...)."""

    reason: str


@dataclasses.dataclass(frozen=True)
class Written:
    """A photo written as a record: where it went and what it is."""

    split: str
    source: str
    label: str
    fold: int


@dataclasses.dataclass(frozen=True)
class RecordFile:
    """A record file written: 'train-00003-of-00022.tfrecord'."""

    name: str


@dataclasses.dataclass(frozen=True)
class RejectedFile:
    """The file listing the rejects, by name."""

    name: str


@dataclasses.dataclass(frozen=True)
class Histogram:
    """A split's ab colour histogram, summed over its photos (`pipeline.ab_bins`)."""

    split: str
    counts: tuple[int, ...]


Fact = Input | Duplicate | Rejected | Written | RecordFile | RejectedFile | Histogram
