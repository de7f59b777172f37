"""Photos -> sharded (L, ab) TFRecords + rejected list + manifest.json, on any Beam runner.

    python -m beam_jobs.preprocess --input flowers=PATH --input own=PATH --output OUT_DIR
    python -m beam_jobs.preprocess ... --runner DataflowRunner --project P --region R \\
        --temp_location gs://BUCKET/tmp --setup_file ./setup.py
"""

import contextlib
import json
import logging
import os
import sys
import time

if __name__ == "__main__":  # before Beam is imported: it logs a warning on import (apitools) that means nothing here
    logging.basicConfig(level=logging.ERROR)

import apache_beam as beam  # noqa: E402
from apache_beam.io.filesystems import FileSystems  # noqa: E402
from apache_beam.metrics.metric import MetricsFilter  # noqa: E402
from apache_beam.options.pipeline_options import (  # noqa: E402
    DirectOptions, GoogleCloudOptions, PipelineOptions, StandardOptions)

from pipeline import paths, schema, splits  # noqa: E402
from pipeline import errors  # noqa: E402
from pipeline.errors import UsageError  # noqa: E402
from pipeline.preparation import Preparation  # noqa: E402

from beam_jobs import facts, manifest, options as job_options, storage, transforms  # noqa: E402


def _spec(opts: job_options.PreprocessOptions) -> transforms.ExampleSpec:
    try:
        prep = Preparation(opts.size, opts.resize, opts.min_side, opts.max_pixels, opts.gray_tolerance)
    except ValueError as error:  # its message starts with the flag's name
        raise UsageError(f"--{error}") from None
    try:
        rule = splits.SplitRule.parse(opts.split, folds=opts.folds, num_shards=opts.num_shards)
    except ValueError as error:
        raise UsageError(f"--split/--folds/--num_shards: {error}") from None
    return transforms.ExampleSpec(prep, opts.keep_gray, rule)


def _pattern(location: str) -> str:
    """A folder means every file below it; a file or a glob means itself."""
    if paths.has_wildcard(location):
        return location
    below = storage.join(location, "**")
    return below if storage.matches(below) else location


def _resolve_inputs(values: list[str]) -> list[tuple[str, str]]:
    if not values:
        raise UsageError("--input is required: a folder or glob of photos, e.g. --input flowers=~/flowers")
    try:
        inputs = job_options.parse_inputs(values)
    except ValueError as error:
        raise UsageError(str(error)) from None
    resolved = []
    for name, location in inputs:
        pattern = _pattern(location)
        if not storage.matches(pattern):
            raise UsageError(f"--input {name}={location}: no files found")
        resolved.append((name, pattern))
    return resolved


def _on_dataflow(pipeline_options: PipelineOptions) -> bool:
    """--runner=DataflowRunner, or any spelling Beam takes for it ('dataflow', 'Dataflow')."""
    runner = (pipeline_options.view_as(StandardOptions).runner or "").lower()
    return runner.removesuffix("runner") == "dataflow"


def check_cloud(opts: job_options.PreprocessOptions, pipeline_options: PipelineOptions) -> None:
    """Settings that only fail later, on the cloud, fail here instead; every gs:// location must answer.

    Dataflow workers have their own disks: a local path given to them is read
    or written there, where the launcher never sees it.
    """
    temp = pipeline_options.view_as(GoogleCloudOptions).temp_location
    dataflow = _on_dataflow(pipeline_options)
    if not temp and (dataflow or (opts.output and storage.is_cloud(opts.output))):
        needing = "--runner DataflowRunner" if dataflow else f"--output {opts.output}"
        raise UsageError(f"{needing} needs --temp_location gs://BUCKET/tmp, where Beam stages files")
    if dataflow:
        local = [f"--input {value}" for value in opts.input if "gs://" not in value]
        local += [f"--{flag} {value}" for flag, value in (("output", opts.output), ("temp_location", temp))
                  if value and not storage.is_cloud(value)]
        if local:
            raise UsageError(f"Dataflow workers cannot use local {local[0]}: give a gs:// path")
    if temp and storage.is_cloud(temp):
        storage.check_reachable(temp)


def prepare_output(output: str | None, overwrite: bool) -> None:
    """Refuse a non-empty output directory unless --overwrite, which empties it first, manifest.json first."""
    if not output:
        raise UsageError("--output is required: the directory to write records into")
    existing = storage.matches(storage.join(output, "**"))
    if existing and not overwrite:
        raise UsageError(f"--output {output} is not empty; pass --overwrite to replace what it holds")
    if existing:
        manifest_file = storage.join(output, schema.MANIFEST)
        if FileSystems.exists(manifest_file):  # first: while the rest goes, the folder is not a finished run
            FileSystems.delete([manifest_file])
        storage.delete_folder(output)


def build_pipeline(pipeline: beam.Pipeline, inputs, output: str, spec, compression: str,
                   args: dict) -> None:
    """Wire the job: match -> read once, dedupe, prepare -> records, rejects, manifest."""
    refs = pipeline | "Match photos" >> transforms.MatchPhotos(inputs)
    examples = refs | "To examples" >> transforms.PhotosToExamples(spec)
    shards = examples.records | "Write records" >> transforms.WriteRecords(output, compression)
    rejected_files = (
        (examples[transforms.REJECTED], examples[transforms.DUPLICATE])
        | "All rejects" >> beam.Flatten()
        | "To JSON" >> beam.Map(transforms.Reject.to_json)
        | "Write rejects" >> beam.io.WriteToText(storage.join(output, "rejected"), file_name_suffix=".jsonl",
                                                 num_shards=1)
    )
    reported = (
        refs | "Input facts" >> beam.Map(lambda _: facts.Input()),
        examples[transforms.DUPLICATE] | "Duplicate facts" >> beam.Map(lambda _: facts.Duplicate()),
        examples[transforms.REJECTED] | "Reject facts" >> beam.Map(lambda reject: facts.Rejected(reject.reason)),
        examples[transforms.WRITTEN],
        shards | "Shard facts" >> beam.Map(facts.RecordFile),
        examples[transforms.HISTOGRAM]
        | "Sum histograms" >> beam.CombinePerKey(sum)
        | "Histogram facts" >> beam.MapTuple(lambda split, counts: facts.Histogram(split, tuple(counts.tolist()))),
        rejected_files | "Rejected file facts" >> beam.Map(lambda path: facts.RejectedFile(path.rsplit("/", 1)[-1])),
    )
    _ = reported | "All facts" >> beam.Flatten() | "Manifest" >> manifest.WriteManifest(output, spec, compression, args)


def _say(line: str) -> None:
    print(line, flush=True)


@contextlib.contextmanager
def _beam_log(shown: bool, local_processes: bool):
    """Beam logs every step of its runner and of each worker's harness: hidden unless --verbose.

    Local worker processes (--direct_running_mode=multi_processing) set up their
    own logging and write straight to the stderr they inherit, so while they run
    that points at /dev/null; what fails still ends the job with Beam's error.
    """
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO if shown else logging.ERROR)
    saved = None
    if local_processes and not shown:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    try:
        yield
    finally:
        root.setLevel(level)
        if saved is not None:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _describe_runner(pipeline_options: PipelineOptions) -> str:
    runner = pipeline_options.view_as(StandardOptions).runner
    direct = pipeline_options.view_as(DirectOptions)
    if runner != "FnApiRunner" or direct.direct_running_mode == "in_memory":
        return runner
    kind = "processes" if direct.direct_running_mode == "multi_processing" else "threads"
    return f"{runner}, {direct.direct_num_workers or os.cpu_count()} worker {kind}"


def run(argv: list[str]) -> tuple[dict, dict[str, int]]:
    """Run the job to completion, saying what it does in a few lines; return its manifest and its Beam counters."""
    argv = job_options.with_local_defaults(argv)
    pipeline_options = PipelineOptions(argv)
    unknown = job_options.unknown_flags(pipeline_options)
    if unknown:
        raise UsageError(f"unknown flag(s): {' '.join(unknown)} (see --help)")
    opts = pipeline_options.view_as(job_options.PreprocessOptions)
    spec = _spec(opts)
    check_cloud(opts, pipeline_options)
    inputs = _resolve_inputs(opts.input)
    prepare_output(opts.output, opts.overwrite)
    args = {"argv": argv, "inputs": dict(inputs)}
    pipeline = beam.Pipeline(options=pipeline_options)
    build_pipeline(pipeline, inputs, opts.output, spec, opts.compression, args)
    _say(f"reading {', '.join(f'{name}={pattern}' for name, pattern in inputs)}")
    _say(f"writing {opts.size}x{opts.size} records to {opts.output} ({_describe_runner(pipeline_options)}"
         f"{'' if opts.verbose else '; --verbose shows its log'})")
    start = time.perf_counter()
    local_processes = pipeline_options.view_as(DirectOptions).direct_running_mode == "multi_processing"
    with _beam_log(opts.verbose, local_processes):
        result = pipeline.run()
        result.wait_until_finish()
    _say(f"done in {time.perf_counter() - start:.0f} s")
    counters = {c.key.metric.name: c.committed
                for c in result.metrics().query(MetricsFilter().with_namespace(transforms.NAMESPACE))["counters"]}
    with FileSystems.open(storage.join(opts.output, schema.MANIFEST)) as handle:
        return json.load(handle), counters


def _summary(result: dict) -> str:
    counts = result["counts"]
    lines = [f"{counts['inputs']} photos: {counts['written']} written, "
             f"{counts['rejected']} rejected, {counts['duplicates']} duplicates"]
    lines += [f"  {split}: {entry['examples']} examples in {len(entry['shards'])} files"
              for split, entry in result["splits"].items()]
    lines += [f"  rejected as {reason}: {count}" for reason, count in result["rejected"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if {"-h", "--help"} & set(argv):
        print(job_options.help_text())
        return 0
    try:
        result, _ = run(argv)
    except UsageError as error:
        return errors.report(error)
    print(_summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
