"""manifest.json: the job's account of what it wrote, written last.

Its presence means the job finished; the reader trusts nothing else. Every
input is accounted for: inputs = written + rejected + duplicates.
"""

import collections
import datetime
import importlib.metadata
import json
import platform

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline import ab_bins, color, schema, splits

from beam_jobs import transforms

FORMAT = "lab8-pairs/2"
_VERSIONED = ("apache-beam", "numpy", "opencv-python-headless", "tensorflow", "tensorflow-io")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    return {"python": platform.python_version(), **{p: _version(p) for p in _VERSIONED}}


def build(facts: list[tuple[tuple, int]], spec: transforms.ExampleSpec, compression: str,
          args: dict) -> dict:
    """The manifest from counted facts: ('shard', split, file), ('example', split, source, label, fold), ..."""
    per_split = {s: {"examples": 0, "shards": [], "by_source": collections.Counter(),
                     "by_label": collections.Counter(), "by_fold": collections.Counter(),
                     transforms.HISTOGRAM: [0] * ab_bins.COUNT}
                 for s in splits.SPLITS}
    rejected, totals, rejected_files = collections.Counter(), collections.Counter(), []
    for fact, count in facts:
        kind = fact[0]
        if kind == "shard":
            per_split[fact[1].split("-")[0]]["shards"].append(fact[1])
        elif kind == "rejected_file":
            rejected_files.append(fact[1])
        elif kind == "example":
            _, split, source, label, fold = fact
            entry = per_split[split]
            entry["examples"] += count
            entry["by_source"][source] += count
            entry["by_label"][label] += count
            entry["by_fold"][str(fold)] += count
        elif kind == transforms.HISTOGRAM:
            per_split[fact[1]][transforms.HISTOGRAM] = list(fact[2])
        elif kind == transforms.REJECTED:
            rejected[fact[1]] += count
        else:
            totals[kind] += count
    for entry in per_split.values():
        entry["shards"].sort()
        for key in ("by_source", "by_label", "by_fold"):
            entry[key] = dict(sorted(entry[key].items()))
    written = sum(entry["examples"] for entry in per_split.values())
    return {
        "format": FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "image_size": [spec.size, spec.size],
        "resize": spec.resize,
        "color": color.CONVENTION,
        "compression": schema.COMPRESSIONS[compression][0],
        "features": {"bytes": list(schema.BYTES_FEATURES), "int64": list(schema.INT_FEATURES)},
        "ab_bins": {"step": ab_bins.STEP, "axis_centres": ab_bins.AXIS.tolist(),
                    "index": "a_index * len(axis_centres) + b_index, nearest centre"},
        "split_rule": {"by": "sha256 of the file's bytes", "percentages": list(spec.rule.percentages),
                       "folds": spec.rule.folds, "num_shards": spec.rule.num_shards},
        "counts": {"inputs": totals["inputs"], "written": written,
                   "rejected": sum(rejected.values()), "duplicates": totals[transforms.DUPLICATE]},
        "rejected": dict(sorted(rejected.items())),
        "rejected_files": sorted(rejected_files),
        "splits": per_split,
        "args": args,
        "versions": versions(),
    }


def _write(facts, output: str, spec: transforms.ExampleSpec, compression: str, args: dict) -> str:
    manifest = build(facts, spec, compression, args)
    path = transforms.join(output, schema.MANIFEST)
    with FileSystems.create(path) as handle:
        handle.write(json.dumps(manifest, indent=2).encode())
    staging = transforms.staging_dir(output)
    if FileSystems.exists(staging):
        FileSystems.delete([staging])
    return path


class WriteManifest(beam.PTransform):
    """Facts (small tuples, one per event) -> manifest.json, once everything else is written."""

    def __init__(self, output: str, spec: transforms.ExampleSpec, compression: str, args: dict):
        super().__init__()
        self._output, self._spec, self._compression, self._args = output, spec, compression, args

    def expand(self, facts):
        return (
            facts
            | "Count facts" >> beam.combiners.Count.PerElement()
            | "Gather" >> beam.combiners.ToList()
            | "Write" >> beam.Map(_write, self._output, self._spec, self._compression, self._args)
        )
