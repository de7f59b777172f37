"""Shared fixtures: the reference photos in ../shared/data, and images the tests make."""

import os
import pathlib
import struct
import zlib

import cv2
import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = pathlib.Path(os.environ.get("SHARED_DATA_DIR", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """../shared/data (or $SHARED_DATA_DIR): real photos, read in place.

    Without them the tests that need them are skipped on a developer's machine, but
    fail under CI=true: a CI run that skipped them would pass without testing much.
    """
    if not (SHARED_DATA / "flowers").is_dir():
        missing = f"reference photos not found at {SHARED_DATA} (set SHARED_DATA_DIR)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{missing}; CI=true requires them", pytrace=False)
        pytest.skip(missing)
    return SHARED_DATA


def colourful_photos(folder: pathlib.Path, count: int) -> list[pathlib.Path]:
    """The first `count` photos (sorted) in `folder` that clearly have colour."""
    chosen = []
    for path in sorted(folder.iterdir()):
        lab = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2LAB).astype(np.int16)
        if np.abs(lab[..., 1:] - 128).mean() > 5:
            chosen.append(path)
        if len(chosen) == count:
            return chosen
    raise AssertionError(f"{folder} has fewer than {count} colourful photos")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def write_image(path: pathlib.Path, image: np.ndarray, *params) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image, list(params)), path
    return path


def png_declaring(width: int, height: int) -> bytes:
    """A complete PNG file (signature, IHDR, a tiny IDAT, IEND) whose header declares width x height."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


TINY_SIZE = 32


@pytest.fixture(scope="session")
def tiny_records(shared_data, tmp_path_factory) -> pathlib.Path:
    """About 100 real photos (two classes, two sources) as 32x32 records in few shards."""
    output = tmp_path_factory.mktemp("tiny_records")
    run_preprocess(output, f"--input=flowers={shared_data / 'flowers' / 'sunflower' / '2[0-4]*.jpg'}",
                   f"--input=own={shared_data / 'extra_plants' / 'pansy' / 'image_12*.jpg'}",
                   f"--size={TINY_SIZE}", "--num_shards=6")
    return output


def run_preprocess(output: pathlib.Path, *flags: str, workers: int = 1):
    """The real Beam job, in this process (DirectRunner), on `flags`; returns (manifest, counters)."""
    from beam_jobs import preprocess

    runner = ["--direct_num_workers=1", "--direct_running_mode=in_memory"] if workers == 1 else [
        f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    return preprocess.run([*flags, f"--output={output}", *runner])


def read_examples(data_dir: pathlib.Path, split: str) -> list[dict]:
    """Every record of a split, parsed with TensorFlow's own tf.train.Example."""
    import json

    import tensorflow as tf

    manifest = json.loads((data_dir / "manifest.json").read_text())
    files = [str(data_dir / name) for name in manifest["splits"][split]["shards"]]
    examples = []
    for record in tf.data.TFRecordDataset(files, compression_type=manifest["compression"]):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        examples.append({name: (value.bytes_list.value[0] if value.bytes_list.value
                                else value.int64_list.value[0]) for name, value in feature.items()})
    return examples


def run_module(module: str, *flags: str, env: dict | None = None, timeout: float = 600):
    """`python -m module flags...` in a fresh process (as a user runs it); returns the CompletedProcess."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", module, *flags], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env={**os.environ, **(env or {})})
