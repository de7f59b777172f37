"""Colourizing photos of any size in batches: loading a model, planning outputs, writing results.

The library behind `python -m trainer.colorize`.
"""

import os
import posixpath
import sys

import cv2
import keras
import numpy as np
import tensorflow as tf

from pipeline import color, images
from trainer import models, photos, serving

_WRITABLE = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def model_input(rgb: np.ndarray, size: int) -> np.ndarray:
    """uint8 RGB at any size -> the network's L in [0, 1] at size x size, exactly as the Beam job makes it."""
    lightness, _ = color.planes(color.rgb_to_lab8(images.resize(rgb, size)))
    return lightness[..., None].astype(np.float32) / 255.0


def recombine(rgb: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """The photo's own L8 with the predicted ab (model scale) upsampled bilinearly to its size -> uint8 RGB."""
    lightness, _ = color.planes(color.rgb_to_lab8(rgb))
    height, width = lightness.shape
    ab8 = np.clip(np.round(cv2.resize(ab, (width, height), interpolation=cv2.INTER_LINEAR) * 128.0 + 128.0), 0, 255)
    return color.lab8_to_rgb(cv2.merge([lightness, *cv2.split(ab8.astype(np.uint8))]))


class KerasColorizer:
    """Batches photos of any sizes through one network call, then recombines each at its own size.

    The colour conversions are OpenCV's, as in the Beam job: several times faster on a CPU than the
    TensorFlow ones the SavedModel carries, and equal to them within a level or two of 8-bit RGB.
    """

    def __init__(self, path: str):
        self.net = keras.models.load_model(path, compile=False)
        self.size = self.net.input_shape[1]

    def __call__(self, rgbs: list[np.ndarray]) -> list[np.ndarray]:
        ab = self.net.predict_on_batch(np.stack([model_input(rgb, self.size) for rgb in rgbs]))
        return [recombine(rgb, ab[i]) for i, rgb in enumerate(rgbs)]


class SavedModelColorizer:
    """The exported serving signature, one photo at a time (it takes a batch of one size)."""

    def __init__(self, path: str):
        self._signature = tf.saved_model.load(path).signatures[serving.SIGNATURE]

    def __call__(self, rgbs: list[np.ndarray]) -> list[np.ndarray]:
        return [self._signature(images=tf.constant(rgb[None]))["colorized"][0].numpy() for rgb in rgbs]


def load(path: str | None):
    """A colourizer from a SavedModel folder, a .keras file, a run's model_dir, or the shipped default."""
    if path and tf.io.gfile.exists(f"{path.rstrip('/')}/saved_model.pb"):
        return SavedModelColorizer(path)
    try:
        return KerasColorizer(models.resolve(path))
    except FileNotFoundError as error:
        raise photos.UsageError(f"--model: {error}") from None


def output_name(relative: str) -> str:
    """Same relative path and name; photos in formats OpenCV cannot write become .png."""
    extension = posixpath.splitext(relative)[1]
    return relative if extension.lower() in _WRITABLE else f"{relative}.png"


def _write(path: str, rgb: np.ndarray) -> None:
    ok, encoded = cv2.imencode(posixpath.splitext(path)[1] or ".png", rgb[..., ::-1])
    if not ok:
        raise OSError(f"OpenCV could not encode {path}")
    tf.io.gfile.makedirs(posixpath.dirname(path))
    with tf.io.gfile.GFile(path, "wb") as handle:
        handle.write(encoded.tobytes())


def compare_sheet(source: np.ndarray, colourized: np.ndarray) -> np.ndarray:
    """gray | colourized | original (the original only when it had colour)."""
    gray = np.repeat(cv2.cvtColor(source, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=-1)
    panels = [gray, colourized]
    if color.max_chroma(color.rgb_to_lab8(source)) > 2:
        panels.append(source)
    return np.concatenate(panels, axis=1)


def plan(arguments: list[str], output: str) -> list[tuple[photos.Photo, str]]:
    """(photo, output path) for every photo; refuses to overwrite any input."""
    found = photos.find(arguments)
    inputs = {os.path.abspath(p.path) if "://" not in p.path else p.path for p in found}
    planned = [(p, f"{output.rstrip('/')}/{output_name(p.relative)}") for p in found]
    targets = [target for _, target in planned]
    clashes = [t for t in targets if (os.path.abspath(t) if "://" not in t else t) in inputs]
    if clashes:
        raise photos.UsageError(f"--output {output} would overwrite input photos, e.g. {clashes[0]}; "
                                "choose another folder")
    if len(set(targets)) != len(targets):
        raise photos.UsageError("two inputs map to the same output name; colourize them into separate folders")
    return planned


def run(arguments: list[str], output: str, model: str | None, compare: bool, batch_size: int,
        min_side: int) -> tuple[int, list[photos.Failure]]:
    """Colourize every photo; return how many were written and what failed."""
    if not arguments:
        raise photos.UsageError("name at least one photo, folder or glob to colourize")
    planned = plan(arguments, output)
    colourizer = load(model)
    progress = keras.utils.Progbar(len(planned), verbose=1 if sys.stdout.isatty() else 2, unit_name="photo")
    written, failures = 0, []
    for start in range(0, len(planned), batch_size):
        batch = []
        for photo, target in planned[start:start + batch_size]:
            rgb = photos.read_rgb(photo, min_side)
            if isinstance(rgb, photos.Failure):
                failures.append(rgb)
            else:
                batch.append((photo, target, rgb))
        for (photo, target, rgb), result in zip(batch, colourizer([rgb for _, _, rgb in batch]) if batch else []):
            _write(target, result)
            if compare:
                _write(f"{output.rstrip('/')}/compare/{posixpath.splitext(photo.relative)[0]}.jpg",
                       compare_sheet(rgb, result))
            written += 1
        progress.update(min(start + batch_size, len(planned)))
    return written, failures
