"""Writing manifest.json (`pipeline.manifest`), last: its presence means the job finished."""

import collections
import datetime
import importlib.metadata
import json
import platform

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline import ab_bins, schema, splits
from pipeline.manifest import Manifest, SplitEntry

from beam_jobs import facts, storage, transforms

_VERSIONED = ("apache-beam", "numpy", "opencv-python-headless", "tensorflow", "tensorflow-io")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    return {"python": platform.python_version(), **{p: _version(p) for p in _VERSIONED}}


def build(counted: list[tuple[facts.Fact, int]], spec: transforms.ExampleSpec, compression: str,
          args: dict) -> Manifest:
    """The manifest from the job's facts (`beam_jobs.facts`), each with how many times it happened."""
    shards = {s: [] for s in splits.SPLITS}
    counts = {s: {"by_source": collections.Counter(), "by_label": collections.Counter(),
                  "by_fold": collections.Counter()} for s in splits.SPLITS}
    histograms = {s: (0,) * ab_bins.COUNT for s in splits.SPLITS}
    rejected, inputs, duplicates, rejected_files = collections.Counter(), 0, 0, []
    for fact, count in counted:
        match fact:
            case facts.Input():
                inputs += count
            case facts.Duplicate():
                duplicates += count
            case facts.Rejected(reason):
                rejected[reason] += count
            case facts.Written(split, source, label, fold):
                counts[split]["by_source"][source] += count
                counts[split]["by_label"][label] += count
                counts[split]["by_fold"][fold] += count
            case facts.RecordFile(name):
                shards[name.split("-")[0]].append(name)
            case facts.RejectedFile(name):
                rejected_files.append(name)
            case facts.Histogram(split, histogram):
                histograms[split] = histogram
    entries = {s: SplitEntry(sum(counts[s]["by_source"].values()), tuple(sorted(shards[s])),
                             **{key: dict(sorted(value.items())) for key, value in counts[s].items()},
                             ab_histogram=histograms[s])
               for s in splits.SPLITS}
    return Manifest(
        preparation=spec.preparation, split_rule=spec.rule, compression=schema.COMPRESSIONS[compression][0],
        splits=entries, inputs=inputs, duplicates=duplicates, rejected=dict(rejected),
        rejected_files=tuple(rejected_files),
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        args=args, versions=versions())


def _write(counted, output: str, spec: transforms.ExampleSpec, compression: str, args: dict) -> str:
    manifest = build(counted, spec, compression, args)
    storage.delete_folder(transforms.staging_dir(output))
    path = storage.join(output, schema.MANIFEST)
    with FileSystems.create(path) as handle:
        handle.write(json.dumps(manifest.to_json(), indent=2).encode())
    return path


class WriteManifest(beam.PTransform):
    """Facts (`beam_jobs.facts`, one per event) -> manifest.json, once everything else is written."""

    def __init__(self, output: str, spec: transforms.ExampleSpec, compression: str, args: dict):
        super().__init__()
        self._output, self._spec, self._compression, self._args = output, spec, compression, args

    def expand(self, reported):
        return (
            reported
            | "Count facts" >> beam.combiners.Count.PerElement()
            | "Gather" >> beam.combiners.ToList()
            | "Write" >> beam.Map(_write, self._output, self._spec, self._compression, self._args)
        )
