"""Command-line options of the preprocessing job, the Beam way (a PipelineOptions subclass)."""

import argparse
import re

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from pipeline import paths, preparation, schema

_NAMED_INPUT = re.compile(r"^([A-Za-z0-9_.-]+)=(.+)$")


class PreprocessOptions(PipelineOptions):
    """Flags of `python -m beam_jobs.preprocess`; Beam's own flags (runner, ...) also apply."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--input", action="append", default=[],
            help="Photos to read, repeatable: [NAME=]FOLDER_OR_GLOB, local or gs://. A folder "
            "is read recursively. NAME (default: the folder's name) is recorded as each "
            "example's source; the class label is each photo's parent folder name.")
        parser.add_argument("--output", help="Directory for the records and manifest.json.")
        parser.add_argument(
            "--overwrite", action="store_true",
            help="Delete what the output directory holds before writing.")
        parser.add_argument("--size", type=int, default=preparation.Preparation.size,
                            help="Side of the square images written, and of the trained network's input.")
        parser.add_argument(
            "--max_pixels", type=int, default=preparation.Preparation.max_pixels,
            help="Photos whose header declares more pixels are rejected as too_large, before decoding.")
        parser.add_argument(
            "--resize", choices=preparation.RESIZE_MODES, default=preparation.Preparation.resize,
            help="stretch: squash the whole photo to a square (as the original project); "
            "crop: keep the aspect ratio and take the centre square. Models trained on the records "
            "colourize photos prepared the same way.")
        parser.add_argument(
            "--min_side", type=int, default=preparation.Preparation.min_side,
            help="Photos whose shorter side is below this many pixels are rejected as too_small.")
        parser.add_argument(
            "--split", default="70/15/15",
            help="train/val/test percentages, assigned by a hash of each file's bytes.")
        parser.add_argument("--folds", type=int, default=5, help="Cross-validation folds recorded per example.")
        parser.add_argument(
            "--num_shards", type=int, default=32,
            help="Record files, shared among the splits by their percentages, however many bundles the "
            "runner makes (a shard that no photo falls in has no file).")
        parser.add_argument(
            "--compression", choices=sorted(schema.COMPRESSIONS), default="none",
            help="none (default): fastest to read, the CPU being the limit; gzip: a third smaller, for slow storage.")
        parser.add_argument(
            "--keep_gray", action="store_true",
            help="Keep photos with no colour (they only teach the model to predict none).")
        parser.add_argument(
            "--gray_tolerance", type=int, default=preparation.Preparation.gray_tolerance,
            help="A photo whose |a| and |b| never exceed this (8-bit Lab units) has no colour.")
        parser.add_argument(
            "--verbose", action="store_true",
            help="Show Beam's own log (runner and worker harness) besides the job's progress and summary.")


def help_text() -> str:
    """The job's own flags for --help (Beam's parser would list none of them)."""
    parser = argparse.ArgumentParser(
        prog="python -m beam_jobs.preprocess", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Photos -> sharded (L, ab) TFRecords, rejected list and manifest.json.",
        epilog="Beam's own flags also apply: --runner, --direct_num_workers, --direct_running_mode, and for "
        "Dataflow --project, --region, --temp_location, --setup_file, ...")
    PreprocessOptions._add_argparse_args(parser)
    return parser.format_help()


def parse_inputs(values: list[str]) -> list[tuple[str, str]]:
    """['flowers=/data/flowers', '/data/own'] -> [('flowers', '/data/flowers'), ('own', '/data/own')]."""
    inputs = []
    for value in values:
        match = _NAMED_INPUT.match(value)
        inputs.append(match.groups() if match else (_default_name(value), value))
    names = [name for name, _ in inputs]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ValueError(f"--input names must differ, {duplicated} given twice: name them NAME=PATH")
    return inputs


def _default_name(location: str) -> str:
    """The last path component that is not a wildcard: '/data/flowers/*/*.jpg' -> 'flowers'."""
    parts = [part for part in location.split("/") if part and not paths.has_wildcard(part)]
    return parts[-1] if parts else "input"


def unknown_flags(options: PipelineOptions) -> list[str]:
    """Flags no PipelineOptions class knows: Beam would only log and drop them."""
    known = options.get_all_options()
    everything = options.get_all_options(retain_unknown_options=True)
    return sorted(f"--{name}" for name in everything.keys() - known.keys())


def with_local_defaults(argv: list[str]) -> list[str]:
    """Locally, run on the FnApiRunner with every core, in worker processes, unless told otherwise.

    The FnApiRunner is what Beam's DirectRunner runs batch pipelines on; asked
    for by name, it runs the same whether or not the machine can download the
    Prism runner, which the DirectRunner of Beam 2.77 tries first.
    """
    runner = PipelineOptions(argv).view_as(StandardOptions).runner
    if runner not in (None, "DirectRunner", "direct", "FnApiRunner"):
        return argv
    defaults = {"--runner": "FnApiRunner", "--direct_num_workers": "0", "--direct_running_mode": "multi_processing"}
    given = {arg.split("=")[0] for arg in argv}
    return argv + [f"{flag}={value}" for flag, value in defaults.items() if flag not in given]
