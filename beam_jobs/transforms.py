"""The preprocessing job's PTransforms: photos in, (L, ab) records and an account of every input out.

Only small values (paths, hashes, counts) ever cross a GroupByKey; the pixels
stay inside one fused stage from file read to record write. The DirectRunner
holds grouped data in memory, so this is what keeps the job's memory flat
however many photos it reads (benchmarks/preprocess_benchmark.py shows it).
"""

import dataclasses
import gzip
import json
import os
import posixpath
import re
import typing

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes, FileSystem
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.tfrecordio import _TFRecordUtil
from apache_beam.options.value_provider import StaticValueProvider

from pipeline import ab_bins, color, images, schema, splits
from pipeline.preparation import Preparation

from beam_jobs.storage import join

NAMESPACE = "preprocess"
REJECTED = "rejected"
WRITTEN = "written"
DUPLICATE = "duplicate"
HISTOGRAM = "ab_histogram"


class FileRef(typing.NamedTuple):
    source: str
    path: str

    @property
    def label(self) -> str:
        return posixpath.basename(posixpath.dirname(self.path))


class Reject(typing.NamedTuple):
    source: str
    path: str
    reason: str
    detail: str

    def to_json(self) -> str:
        return json.dumps(self._asdict())


@dataclasses.dataclass(frozen=True)
class ExampleSpec:
    """How a photo becomes a record (`pipeline.preparation`), and which split it goes to."""

    preparation: Preparation = Preparation()
    keep_gray: bool = False
    rule: splits.SplitRule = splits.SplitRule()

    def destinations(self) -> list[str]:
        return [shard_name(s, k) for s in splits.SPLITS for k in range(self.rule.shards_of(s))]


def shard_name(split: str, shard: int) -> str:
    return f"{split}-{shard:03d}"


def _count(name: str) -> None:
    beam.metrics.Metrics.counter(NAMESPACE, name).inc()


def _reject(ref: FileRef, reason: str, detail: str) -> beam.pvalue.TaggedOutput:
    _count(f"rejected_{reason}")
    return beam.pvalue.TaggedOutput(REJECTED, Reject(ref.source, ref.path, reason, detail))


def _read(path: str) -> bytes:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return handle.read()


def dangling_links(pattern: str) -> list[str]:
    """Local symbolic links matching `pattern` (as Beam matches it) that point nowhere.

    Beam's match leaves them out without a word; listed, they fail to read and are
    accounted for as `unreadable` like any other input. Object stores have no links.
    """
    if "://" in pattern:
        return []
    prefix = re.match(r"[^*?\[]*", pattern).group(0)
    root = prefix if os.path.isdir(prefix) else os.path.dirname(prefix)
    matches = re.compile(FileSystem.translate_pattern(pattern)).match
    return sorted(path for folder, _, names in os.walk(root) for path in (os.path.join(folder, n) for n in names)
                  if os.path.islink(path) and not os.path.exists(path) and matches(path))


class MatchPhotos(beam.PTransform):
    """Every file under each (source name, folder or glob), dangling links included, spread across workers."""

    def __init__(self, inputs: list[tuple[str, str]]):
        super().__init__()
        self._inputs = inputs

    def expand(self, pbegin):
        matched = [
            pbegin
            | f"Match {name}" >> fileio.MatchFiles(pattern)
            | f"Ref {name}" >> beam.Map(lambda meta, name=name: FileRef(name, meta.path))
            for name, pattern in self._inputs
        ]
        dangling = (pbegin
                    | "Inputs" >> beam.Create(self._inputs)
                    | "Dangling links" >> beam.FlatMapTuple(
                        lambda name, pattern: [FileRef(name, path) for path in dangling_links(pattern)]))
        return [*matched, dangling] | "All inputs" >> beam.Flatten() | beam.Reshuffle()


class _HashFile(beam.DoFn):
    def process(self, ref: FileRef):
        _count("inputs")
        try:
            data = _read(ref.path)
        except Exception as error:  # any I/O failure is this input's reject reason, not the job's end
            yield _reject(ref, "unreadable", f"{type(error).__name__}: {error}")
            return
        yield splits.content_hash(data), ref


def _keep_first_copy(item):
    """One photo per content hash: the first by (source, path); the rest are duplicates."""
    digest, refs = item
    first, *copies = sorted(refs)
    yield digest, first
    for copy in copies:
        _count(DUPLICATE)
        yield beam.pvalue.TaggedOutput(
            DUPLICATE, Reject(copy.source, copy.path, DUPLICATE, f"same bytes as {first.path}"))


class DropDuplicates(beam.PTransform):
    """FileRef -> (sha256, FileRef) of one copy per content; outputs `rejected`, `duplicate`."""

    def expand(self, refs):
        hashed = refs | "Hash" >> beam.ParDo(_HashFile()).with_outputs(REJECTED, main="hashed")
        unique = (
            hashed.hashed
            | "Group copies" >> beam.GroupByKey()
            | "Keep first" >> beam.FlatMap(_keep_first_copy).with_outputs(DUPLICATE, main="unique")
        )
        return {"unique": unique.unique, REJECTED: hashed[REJECTED], DUPLICATE: unique[DUPLICATE]}


class _PhotoToExample(beam.DoFn):
    def __init__(self, spec: ExampleSpec):
        self._spec = spec

    def process(self, item):
        digest, ref = item
        spec, prep = self._spec, self._spec.preparation
        try:
            data = _read(ref.path)
        except Exception as error:  # the file went away or became unreadable since it was hashed
            yield _reject(ref, "unreadable", f"{type(error).__name__}: {error}")
            return
        if splits.content_hash(data) != digest:
            yield _reject(ref, "changed", "the file changed while the job was reading it")
            return
        try:
            lab8 = color.rgb_to_lab8(prep.square(prep.decode(data)))
        except images.ImageError as error:
            yield _reject(ref, error.reason, error.detail)
            return
        chroma = color.max_chroma(lab8)
        if chroma <= prep.gray_tolerance and not spec.keep_gray:
            yield _reject(ref, "no_colour", f"|a| and |b| never exceed {chroma}")
            return
        split = spec.rule.split_of(digest)
        fold = spec.rule.fold_of(digest)
        lightness, ab = color.planes(lab8)
        record = schema.encode_example({
            schema.L8: lightness.tobytes(),
            schema.AB8: ab.tobytes(),
            schema.HEIGHT: prep.size,
            schema.WIDTH: prep.size,
            schema.FOLD: fold,
            schema.SHA256: digest.encode(),
            schema.SOURCE: ref.source.encode(),
            schema.LABEL: ref.label.encode(),
            schema.PATH: ref.path.encode(),
        })
        _count(f"{WRITTEN}_{split}")
        yield shard_name(split, spec.rule.shard_of(digest, split)), record
        yield beam.pvalue.TaggedOutput(WRITTEN, (split, ref.source, ref.label, fold))
        yield beam.pvalue.TaggedOutput(HISTOGRAM, (split, ab_bins.histogram(ab)))


class PhotosToExamples(beam.PTransform):
    """(sha256, FileRef) -> (shard name, serialized Example); outputs `rejected`, `written`, `ab_histogram`."""

    def __init__(self, spec: ExampleSpec):
        super().__init__()
        self._spec = spec

    def expand(self, unique):
        return unique | beam.ParDo(_PhotoToExample(self._spec)).with_outputs(
            REJECTED, WRITTEN, HISTOGRAM, main="records")


class _TFRecordSink(fileio.FileSink):
    """TFRecord framing, in a GZIP stream at the fastest level or uncompressed.

    Level 1 keeps 97% of the default level's saving on these records (a third
    of the bytes) at half its CPU time, and compression is most of the job's CPU.
    """

    def __init__(self, compression: str):
        self._compression = compression

    def open(self, fh):
        self._fh = fh
        self._gzip = (gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=1, mtime=0)
                      if self._compression == "gzip" else None)

    def write(self, record):
        _TFRecordUtil.write_record(self._gzip or self._fh, record[1])

    def flush(self):
        if self._gzip:
            self._gzip.close()  # writes the GZIP trailer; the file itself stays open
        self._fh.flush()


class WriteRecords(beam.PTransform):
    """(shard name, record) -> record files `<split>-<shard>-<n>-of-<m>.tfrecord[.gz]` in `output`.

    Each worker bundle writes one file per shard name, so the job never groups
    records: the file count is shards x bundles and the manifest lists them all.
    """

    def __init__(self, output: str, spec: ExampleSpec, compression: str):
        super().__init__()
        self._output = output
        self._spec = spec
        self._compression = compression

    def expand(self, records):
        _, suffix = schema.COMPRESSIONS[self._compression]
        written = records | fileio.WriteToFiles(
            path=self._output,
            destination=lambda record: record[0],
            sink=lambda destination: _TFRecordSink(self._compression),
            file_naming=fileio.destination_prefix_naming(suffix),
            temp_directory=StaticValueProvider(str, staging_dir(self._output)),
            max_writers_per_bundle=len(self._spec.destinations()),
        )
        return written | beam.Map(lambda result: posixpath.basename(result.file_name))


def staging_dir(output: str) -> str:
    return join(output, ".staging")
