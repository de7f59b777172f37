"""Shared fixtures: photos the tests draw themselves, and the reference photos in ../shared/data.

Most tests run on `made_photos`, flower photos drawn here at test time (seeded, so the
same on every run), and on `tiny_records`, the real Beam job's records of them. Only
end-to-end tests about real photos need ../shared/data (fixture `shared_data`):
test_default_model.py (the shipped model's colours on a real daisy), the Beam job on
real photos in test_preprocess.py, and the real-photo half of test_color.py.
"""

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
    """../shared/data (or $SHARED_DATA_DIR): real photos, read in place, for the end-to-end tests about them.

    Those are test_default_model.py, test_preprocess.py's test of the Beam job on real
    photos, and test_color.py's round trips on real photos; everything else runs on
    `made_photos`. Without the photos those tests are skipped on a developer's machine,
    but fail under CI=true: a CI run that skipped them would pass without testing them.
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


# Class-typical colours of the made photos, BGR: petals, flower centres, the ground (two ends of a gradient)
# and leaves. Each class's colours go with its own lightness and shapes, so a network can learn them.
PHOTO_STYLES = {
    "marigold": {"petal": (20, 165, 245), "centre": (20, 60, 120), "ground": ((40, 110, 45), (90, 170, 110)),
                 "leaf": (30, 90, 40)},
    "cornflower": {"petal": (215, 115, 70), "centre": (110, 40, 80), "ground": ((150, 160, 150), (90, 120, 95)),
                   "leaf": (70, 110, 60)},
    "poppy": {"petal": (45, 40, 205), "centre": (25, 25, 35), "ground": ((120, 185, 215), (80, 150, 190)),
              "leaf": (40, 120, 80)},
    "violet": {"petal": (150, 50, 120), "centre": (40, 200, 230), "ground": ((30, 70, 35), (60, 120, 70)),
               "leaf": (50, 140, 70)},
}
# made_photos: source folder -> class folder -> how many photos (tests draw violets for themselves).
MADE_PHOTOS = {"garden": {"marigold": 36, "cornflower": 36}, "own": {"poppy": 30}}


def _bgr(colour, scale: float = 1.0) -> tuple:
    return tuple(float(v) for v in np.clip(np.asarray(colour, np.float64) * scale, 0, 255))


def draw_photo(label: str, seed: int, height: int, width: int) -> np.ndarray:
    """A flower photo of class `label` (a PHOTO_STYLES key), height x width uint8 BGR, the same for the same seed.

    Leaves and 1-3 flowers (petals around a centre) on a lit, textured gradient of the class's ground colour.
    """
    style = PHOTO_STYLES[label]
    rng = np.random.default_rng([sorted(PHOTO_STYLES).index(label), seed])
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * x / width + np.sin(angle) * y / height
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    near, far = (np.float32(rng.uniform(0.85, 1.15)) * np.array(end, np.float32) for end in style["ground"])
    image = near + ramp[..., None] * (far - near)
    side = min(height, width)
    for _ in range(rng.integers(2, 6)):  # leaves
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(side * rng.uniform(0.1, 0.3)), int(side * rng.uniform(0.04, 0.1)))
        cv2.ellipse(image, centre, axes, rng.uniform(0, 180), 0, 360, _bgr(style["leaf"], rng.uniform(0.7, 1.2)),
                    -1, cv2.LINE_AA)
    for _ in range(rng.integers(1, 4)):  # flowers
        cx, cy = int(rng.uniform(0.2, 0.8) * width), int(rng.uniform(0.2, 0.8) * height)
        radius = side * rng.uniform(0.3, 0.5)
        petal, petals, turn = _bgr(style["petal"], rng.uniform(0.8, 1.1)), int(rng.integers(5, 12)), rng.uniform(0, 360)
        for k in range(petals):
            a = np.deg2rad(turn + 360 * k / petals)
            cv2.ellipse(image, (int(cx + 0.55 * radius * np.cos(a)), int(cy + 0.55 * radius * np.sin(a))),
                        (max(2, int(radius * 0.5)), max(1, int(radius * 0.22))), np.rad2deg(a), 0, 360, petal, -1,
                        cv2.LINE_AA)
        cv2.circle(image, (cx, cy), max(2, int(radius * 0.28)), _bgr(style["centre"], rng.uniform(0.8, 1.2)), -1,
                   cv2.LINE_AA)
    light = 1 + 0.15 * (np.cos(rng.uniform(0, 2 * np.pi)) * (x / width - 0.5)
                        + np.sin(rng.uniform(0, 2 * np.pi)) * (y / height - 0.5))
    texture = cv2.GaussianBlur(rng.normal(0, 14, (height, width)).astype(np.float32), (0, 0), rng.uniform(0.8, 2.5))
    image = cv2.GaussianBlur(image * light[..., None] + texture[..., None], (0, 0), 0.7)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def made_photos(tmp_path_factory) -> pathlib.Path:
    """102 distinct, colourful flower photos drawn for the tests: a folder of SOURCE/CLASS/PHOTO files.

    Sources and classes as in MADE_PHOTOS (garden: marigold and cornflower; own: poppy), named
    CLASS_NNN; sides of 60-300 pixels, most not square; every fourth a PNG, the rest JPEGs of
    quality 85-95. The same files on every run.
    """
    root = tmp_path_factory.mktemp("made_photos")
    for source, classes in MADE_PHOTOS.items():
        for label, count in classes.items():
            rng = np.random.default_rng(sorted(PHOTO_STYLES).index(label))
            for index in range(count):
                height = int(rng.integers(60, 301))
                width = height if index % 5 == 0 else int(rng.integers(60, 301))
                photo = draw_photo(label, index, height, width)
                name = root / source / label / f"{label}_{index:03d}"
                if index % 4 == 3:
                    write_image(name.with_suffix(".png"), photo)
                else:
                    write_image(name.with_suffix(".jpg"), photo, cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(85, 96)))
    return root


TINY_SIZE = 32


@pytest.fixture(scope="session")
def tiny_records(made_photos, tmp_path_factory) -> pathlib.Path:
    """The made photos (three classes, two sources) as 32x32 records in few shards, by the real Beam job."""
    output = tmp_path_factory.mktemp("tiny_records")
    run_preprocess(output, f"--input=garden={made_photos / 'garden'}", f"--input=own={made_photos / 'own'}",
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
