"""The preprocessing job's PTransforms: photos in, (L, ab) records and an account of every input out.

Only small values (paths, sizes, file names, counts) ever cross a GroupByKey;
each photo is read once, and its pixels stay inside one fused stage from that
read to a staged record file. The local runner holds grouped data in memory,
so this is what keeps the job's memory flat however many photos it reads
(benchmarks/preprocess_benchmark.py shows it).
"""

import collections
import contextlib
import dataclasses
import functools
import gzip
import hashlib
import heapq
import io
import json
import os
import posixpath
import re
import struct
import typing

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes, FileSystem
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.tfrecordio import _TFRecordUtil
from apache_beam.transforms.window import GlobalWindows

from pipeline import ab_bins, color, images, paths, schema, splits
from pipeline.preparation import Preparation

from beam_jobs import facts
from beam_jobs.storage import is_cloud, join

NAMESPACE = "preprocess"
REJECTED = "rejected"
WRITTEN = "written"
DUPLICATE = "duplicate"
HISTOGRAM = "ab_histogram"
DECODE_ERROR = "decode_error"  # the reason of a photo whose preparation failed in a way no reason names


UNKNOWN_SIZE = -1  # a local link that points nowhere has no size


class FileRef(typing.NamedTuple):
    source: str
    path: str
    size: int  # bytes, as listed when matched


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

    def shard_name(self, split: str, digest: str) -> str:
        """The record file a photo goes to, without its suffix: 'train-00003-of-00022'."""
        return f"{split}-{self.rule.shard_of(digest, split):05d}-of-{self.rule.shards_of(split):05d}"


def _count(name: str) -> None:
    _counter(name).inc()


@functools.cache
def _counter(name: str):
    """The job's counter of that name, made once: Beam's counter objects find the running step's metrics
    when incremented, and making one per photo cost more than the increment."""
    return beam.metrics.Metrics.counter(NAMESPACE, name)


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
    """Every file under each (source name, folder or glob), with its size, dangling links included."""

    def __init__(self, inputs: list[tuple[str, str]]):
        super().__init__()
        self._inputs = inputs

    def expand(self, pbegin):
        matched = [
            pbegin
            | f"Match {name}" >> fileio.MatchFiles(pattern)
            | f"Ref {name}" >> beam.Map(lambda meta, name=name: FileRef(name, meta.path, meta.size_in_bytes))
            for name, pattern in self._inputs
        ]
        dangling = (pbegin
                    | "Inputs" >> beam.Create(self._inputs)
                    | "Dangling links" >> beam.FlatMapTuple(
                        lambda name, pattern: [FileRef(name, path, UNKNOWN_SIZE) for path in dangling_links(pattern)]))
        return [*matched, dangling] | "All inputs" >> beam.Flatten()


def _example(spec: ExampleSpec, ref: FileRef, digest: str, data: bytes) -> list:
    """The photo's outputs (`_outputs`), or its reject: any failure is one photo's, never the job's.

    An `ImageError` carries its own reason; anything else a decoder or a step
    after it raises (OpenCV refusing a size it will not allocate, say) is a
    `decode_error` with the exception's type and message. Every output is made
    before any is given, so a photo that fails part-way gives only its reject.
    """
    try:
        return _outputs(spec, ref, digest, data)
    except images.ImageError as error:
        return [_reject(ref, error.reason, error.detail)]
    except Exception as error:  # noqa: BLE001  see above: whatever it is, this photo is rejected, not the job
        return [_reject(ref, DECODE_ERROR, " ".join(f"{type(error).__name__}: {error}".split()))]


def _outputs(spec: ExampleSpec, ref: FileRef, digest: str, data: bytes) -> list:
    """The photo's record, as (record file name, (digest, record)), or its reject; its `written` fact and
    its `ab_histogram` (split, histogram), summed per split before it becomes a fact."""
    prep = spec.preparation
    lab8 = color.rgb_to_lab8(prep.square(prep.decode(data)))
    chroma = color.max_chroma(lab8)
    if chroma <= prep.gray_tolerance and not spec.keep_gray:
        return [_reject(ref, "no_colour", f"|a| and |b| never exceed {chroma}")]
    split = spec.rule.split_of(digest)
    fold = spec.rule.fold_of(digest)
    label = paths.label_of(ref.path)
    lightness, ab = color.planes(lab8)
    record = schema.encode_example({
        schema.L8: lightness.tobytes(),
        schema.AB8: ab.tobytes(),
        schema.HEIGHT: prep.size,
        schema.WIDTH: prep.size,
        schema.FOLD: fold,
        schema.SHA256: digest.encode(),
        schema.SOURCE: ref.source.encode(),
        schema.LABEL: label.encode(),
        schema.PATH: ref.path.encode(),
    })
    histogram = ab_bins.histogram(ab)
    _count(f"{WRITTEN}_{split}")
    return [(spec.shard_name(split, digest), (digest, record)),
            beam.pvalue.TaggedOutput(WRITTEN, facts.Written(split, ref.source, label, fold)),
            beam.pvalue.TaggedOutput(HISTOGRAM, (split, histogram))]


class _ReadSameSized(beam.DoFn):
    """(size, the FileRefs of that size) -> a record per distinct photo, each file read once.

    Every copy of a file has its size, so the group holds all the copies of
    each photo in it: in (source, path) order, the first copy of each content
    is kept and the others are duplicates. A file whose size is no longer the
    one listed changed after it was matched, and its copies may be in another
    group: it is rejected as `changed`.
    """

    def __init__(self, spec: ExampleSpec):
        self._spec = spec

    def process(self, group):
        size, refs = group
        first_copy = {}
        for ref in sorted(refs):
            yield from self._photo(ref, size, first_copy)

    def _photo(self, ref: FileRef, size: int, first_copy: dict[str, str]):
        _count("inputs")
        try:
            data = _read(ref.path)
        except Exception as error:  # any I/O failure is this input's reject reason, not the job's end
            yield _reject(ref, "unreadable", f"{type(error).__name__}: {error}")
            return
        if len(data) != size:
            yield _reject(ref, "changed", f"{size} bytes when listed, {len(data)} when read")
            return
        digest = splits.content_hash(data)
        if digest in first_copy:
            _count(DUPLICATE)
            yield beam.pvalue.TaggedOutput(
                DUPLICATE, Reject(ref.source, ref.path, DUPLICATE, f"same bytes as {first_copy[digest]}"))
            return
        first_copy[digest] = ref.path
        yield from _example(self._spec, ref, digest, data)


class PhotosToExamples(beam.PTransform):
    """FileRef -> (record file name, serialized Example), one per distinct photo;
    outputs `rejected`, `duplicate`, `written`, `ab_histogram`.

    Files are grouped by size (paths, never pixels) so that one worker reads
    every copy of a photo, once each, hashing and decoding the same bytes.
    Photo files rarely share a size unless they are copies; many of one size
    (uncompressed BMPs or TIFFs of one resolution) are read by one worker in turn.
    """

    def __init__(self, spec: ExampleSpec):
        super().__init__()
        self._spec = spec

    def expand(self, refs):
        return (
            refs
            | "By size" >> beam.Map(lambda ref: (ref.size, ref))
            | "Group same-sized files" >> beam.GroupByKey()
            | "Read once" >> beam.ParDo(_ReadSameSized(self._spec)).with_outputs(
                REJECTED, DUPLICATE, WRITTEN, HISTOGRAM, main="records")
        )


STAGE_BYTES = 16 << 20  # records a bundle holds before it writes some out
MERGE_FAN_IN = 64  # staged parts open at once when merging
CLOUD_READ_BUFFER = 16 << 20  # a Cloud Storage reader holds up to this much of its object at once
MERGE_READ_BYTES = 32 << 20  # what the readers of one merge may hold at once
_DIGEST_BYTES = 32
_LENGTH = struct.Struct("<Q")  # a TFRecord's frame starts with its length, then 4 bytes of CRC


def _part_entries(handle):
    """(digest, TFRecord-framed record) of a staged part, in its order: each is the digest's 32 bytes, then
    the framed record, copied as it is (no CRC is computed twice)."""
    while head := handle.read(_DIGEST_BYTES + _LENGTH.size):
        length, = _LENGTH.unpack_from(head, _DIGEST_BYTES)
        yield head[:_DIGEST_BYTES], head[_DIGEST_BYTES:] + handle.read(length + 8)


def _part_path(staging: str, name: str, contents: list[bytes]) -> str:
    """Where a staged part of record file `name` goes, named by what it holds (a hash of `contents`: its
    digests, or the parts merged into it), never at random: a retried bundle writes the same part under
    the same name, with the same records."""
    return join(staging, f"{name}-{hashlib.sha256(b''.join(contents)).hexdigest()[:32]}")


def _write_part(path: str, entries) -> tuple[str, int]:
    """Sorted (digest, framed record) -> the staged part at `path`; (its path, its size in bytes)."""
    size = 0
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        for digest, framed in entries:
            handle.write(digest)
            handle.write(framed)
            size += len(digest) + len(framed)
    return path, size


def _merge_groups(parts: list[tuple[str, int]]) -> list[list[tuple[str, int]]]:
    """(path, size) of parts -> groups of them, in order, each few enough to read at once: at most
    MERGE_FAN_IN, and on Cloud Storage at most MERGE_READ_BYTES of reader buffers (a local reader's is small)."""
    groups, group, held = [], [], 0
    for path, size in parts:
        cost = min(size, CLOUD_READ_BUFFER) if is_cloud(path) else 0
        if group and (len(group) == MERGE_FAN_IN or held + cost > MERGE_READ_BYTES):
            groups.append(group)
            group, held = [], 0
        group.append((path, size))
        held += cost
    return [*groups, group]


def _framed(record: bytes) -> bytes:
    out = io.BytesIO()
    _TFRecordUtil.write_record(out, record)
    return out.getvalue()


class _StageRecords(beam.DoFn):
    """Each bundle's records into staged parts, each part sorted by content hash, one writer open at a time.

    Records wait in memory, by record file name, until they hold STAGE_BYTES;
    then the name holding the most is written out as one part and its writer
    closed, and at the bundle's end every name still waiting is. So a worker
    holds about STAGE_BYTES of records and one writer whatever --num_shards is
    (a Cloud Storage writer buffers up to 16 MiB of what it is given). Each
    part is named, (record file name, (staged path, size)), once written; the parts
    of a failed, retried bundle are never named and go with the staging
    folder when the job ends.
    """

    def __init__(self, staging: str, limit: int = STAGE_BYTES):
        self._staging = staging
        self._limit = limit

    def start_bundle(self):
        self._waiting = collections.defaultdict(list)
        self._bytes = collections.Counter()
        self._held = 0

    def process(self, item):
        name, (digest, record) = item
        framed = _framed(record)
        self._waiting[name].append((bytes.fromhex(digest), framed))
        self._bytes[name] += len(framed)
        self._held += len(framed)
        if self._held > self._limit:
            yield self._flush(self._bytes.most_common(1)[0][0])

    def finish_bundle(self):
        for name in sorted(self._waiting):
            yield GlobalWindows.windowed_value(self._flush(name))

    def _flush(self, name: str) -> tuple[str, tuple[str, int]]:
        entries = sorted(self._waiting.pop(name))
        self._held -= self._bytes.pop(name)
        return name, _write_part(_part_path(self._staging, name, [digest for digest, _ in entries]), entries)


class _MergeStaged(beam.DoFn):
    """(record file name, its staged parts) -> the record file: their records in content-hash order.

    Each part is sorted, so merging them streams: as many parts at a time as
    `_merge_groups` allows (a Cloud Storage reader holds up to 16 MiB of its
    part), in rounds while there are more. The order of records in a file is thus the order of their SHA-256,
    the same on every run on the same photos, however the runner made its
    bundles. GZIP, when asked for, is applied here, once per file, at the
    fastest level: it keeps 97% of the default level's saving on these
    records (a third of the bytes) at half its CPU time, and compression is
    most of the job's CPU.
    """

    def __init__(self, output: str, compression: str):
        self._output = output
        self._compression = compression
        self._staging = staging_dir(output)

    def process(self, item):
        name, parts = item
        groups = _merge_groups(sorted(parts))
        while len(groups) > 1:
            groups = _merge_groups(sorted(self._merge_into_part(name, [p for p, _ in group]) for group in groups))
        parts = [p for p, _ in groups[0]]
        path = join(self._output, name + schema.COMPRESSIONS[self._compression][1])
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            target = (gzip.GzipFile(fileobj=handle, mode="wb", compresslevel=1, mtime=0)
                      if self._compression == "gzip" else handle)
            with _merged(parts) as entries:
                for _, framed in entries:
                    target.write(framed)
            if target is not handle:
                target.close()  # writes the GZIP trailer; the file itself is closed by `with`
        yield posixpath.basename(path)

    def _merge_into_part(self, name: str, parts: list[str]) -> tuple[str, int]:
        with _merged(parts) as entries:
            return _write_part(_part_path(self._staging, name, [p.encode() for p in parts]), entries)


class WriteRecords(beam.PTransform):
    """(record file name, (SHA-256 hex digest, record)) -> one record file per name in `output`, its
    records in digest order; their names.

    Each bundle stages what it is given, and each record file is then made of
    its staged files: a split has its share of --num_shards files however many
    bundles the runner makes (thousands on Dataflow), and records are never
    grouped, only the names of staged files.
    """

    def __init__(self, output: str, compression: str, stage_bytes: int = STAGE_BYTES):
        super().__init__()
        self._output = output
        self._compression = compression
        self._stage_bytes = stage_bytes

    def expand(self, records):
        return (
            records
            | "Stage" >> beam.ParDo(_StageRecords(staging_dir(self._output), self._stage_bytes))
            | "Group staged files" >> beam.GroupByKey()
            | "Merge" >> beam.ParDo(_MergeStaged(self._output, self._compression))
        )


@contextlib.contextmanager
def _merged(parts: list[str]):
    """The entries of sorted staged parts, merged into one sorted stream."""
    with contextlib.ExitStack() as stack:
        handles = [stack.enter_context(FileSystems.open(p, compression_type=CompressionTypes.UNCOMPRESSED))
                   for p in parts]
        yield heapq.merge(*(_part_entries(h) for h in handles))


def staging_dir(output: str) -> str:
    return join(output, ".staging")
