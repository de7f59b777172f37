"""Colourizing photos of any size in batches: loading a model, planning outputs, writing results.

The library behind `python -m trainer.colorize`.
"""

import functools
import os
import posixpath
import sys

import cv2
import keras
import numpy as np
import tensorflow as tf

from pipeline.errors import UsageError
from pipeline import color, color_tf, preparation
from pipeline.preparation import Preparation
from trainer.network import colour_classes, hints, model_file, models, suggestions
from trainer.applying import hint_input, lite, photos, serving, suggesting, upsampling
from trainer.applying.hint_input import Hint
from trainer.evaluation import sheets

_WRITABLE = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def view_lightness(rgb: np.ndarray, prep: Preparation) -> np.ndarray:
    """uint8 RGB at any size -> L in [0, 1] of the network's view of it (`pipeline.preparation`)."""
    lightness, _ = color.planes(color.rgb_to_lab8(prep.view(rgb)))
    return lightness[..., None].astype(np.float32) / color.BYTE_MAX


def hint_planes(rgb: np.ndarray, photo_hints: list[Hint], height: int, width: int) -> np.ndarray:
    """A photo's hints as the hint-aware network's hint planes, over a height x width view (h, w, 3)."""
    if not photo_hints:
        return np.zeros((height, width, 3), np.float32)
    xy = np.array([[(h.x, h.y) for h in photo_hints]], np.float32)
    colours = np.array([[h.rgb for h in photo_hints]], np.uint8)
    return hints.user_planes(xy, colours, rgb.shape[0], rgb.shape[1], height, width)[0].numpy()


def recombine(rgb: np.ndarray, ab: np.ndarray, edge_aware: bool = True) -> np.ndarray:
    """The photo's own L8 with the predicted ab (model scale) brought to its size -> uint8 RGB.

    Edge-aware: guided by the photo's own L (`trainer.applying.upsampling`); else bilinear.
    """
    lightness, _ = color.planes(color.rgb_to_lab8(rgb))
    height, width = lightness.shape
    if edge_aware:
        full = upsampling.guided_upsample(lightness.astype(np.float32) / color.BYTE_MAX, ab)
    else:
        full = cv2.resize(ab, (width, height), interpolation=cv2.INTER_LINEAR)
    return color.lab8_to_rgb(cv2.merge([lightness, *cv2.split(color.ab8(full))]))


class WindowColorizer:
    """Batches photos of any sizes through one network call, then recombines each at its own size.

    Each photo is prepared as the model's training photos were (`pipeline.preparation`): the
    network colours every window of its view, the windows are blended, and the colour is
    brought to the photo's own size. The colour conversions are OpenCV's, as in the Beam job:
    several times faster on a CPU than the TensorFlow ones the SavedModel carries, and equal to
    them within a level or two of 8-bit RGB. The network is a Keras one (`KerasColorizer`) or a
    TensorFlow Lite file's (`LiteColorizer`): each gives `_predict`, windows (n, S, S, c) -> ab (n, S, S, 2).
    """

    def __init__(self, source: str, prep: Preparation, hint_aware: bool, edge_aware: bool = True):
        self.source = source
        self.preparation = prep
        self.hint_aware = hint_aware
        self.edge_aware = edge_aware

    def view_input(self, rgb: np.ndarray, photo_hints: list[Hint]) -> np.ndarray:
        """The network's input over the photo's whole view (h, w, 1 or 4)."""
        lightness = view_lightness(rgb, self.preparation)
        if self.hint_aware:
            return np.concatenate([lightness, hint_planes(rgb, photo_hints, *lightness.shape[:2])], axis=-1)
        if photo_hints:
            raise UsageError("this model takes no colour hints (it was trained without them)")
        return lightness

    def __call__(self, rgbs: list[np.ndarray], photo_hints: list[list[Hint]] | None = None) -> list[np.ndarray]:
        views = [self.view_input(rgb, given) for rgb, given in zip(rgbs, photo_hints or [[] for _ in rgbs])]
        windows = [preparation.cut(self.preparation, view) for view in views]
        predicted = self._predict(np.stack([w for photo in windows for w in photo]).astype(np.float32))
        ends = np.cumsum([len(photo) for photo in windows])
        return [recombine(rgb, preparation.blend(self.preparation, predicted[end - len(photo):end], *view.shape[:2]),
                          self.edge_aware)
                for rgb, view, photo, end in zip(rgbs, views, windows, ends)]


class KerasColorizer(WindowColorizer):
    """A .keras model: its decoding can be changed (temperature, vividness) and, a classifier's, suggest colours.

    The network runs as one function traced once for windows of its size in any number, which returns a
    classifier's colour distribution (`suggestions.distribution_model`) beside the colour, so the network is
    traced once for both. The rest of a suggestion (reading the distribution at the points, its modes, their
    colours) runs operation by operation: for one suggestion that costs less than tracing it. A page that
    answers many calls `warm_up`, which traces it once for photos of every size and any number of points and
    hints. (Traced per photo shape, as it was, the first suggestion on each new size took seconds.)
    """

    def __init__(self, path: str, temperature: float | None = None, edge_aware: bool = True,
                 vividness: float | None = None):
        self.net, prep = model_file.load(path)
        super().__init__(path, prep, hints.is_hint_aware(self.net), edge_aware)
        colour_classes.override_decoding(self.net, temperature, vividness, path)
        outputs = {"ab": self.net.output}
        if colour_classes.is_classifier(self.net):
            outputs["distribution"] = suggestions.distribution_model(self.net).output
        both = keras.Model(self.net.inputs, outputs)
        self._windows = tf.function(lambda windows: both(windows, training=False), input_signature=[
            tf.TensorSpec([None, *self.net.input_shape[1:]], tf.float32)])
        self._suggest = None  # made at the first suggestion (or by warm_up): a regressor has none

    def _suggestion_computation(self):
        """suggestions.suggest on this network: (float RGB photo, points, hint points, hint colours) -> outputs."""
        distribution = suggestions.Distribution(lambda windows: self._windows(windows)["distribution"],
                                                self.net.input_shape)
        return functools.partial(suggestions.suggest, distribution, self.preparation, suggestions.bin_indices(self.net))

    def _predict(self, windows: np.ndarray) -> np.ndarray:
        return self._windows(windows)["ab"].numpy()

    def warm_up(self) -> None:
        """Trace a classifier's suggestions once for photos of any size, points and hints (one graph per
        suggestion from then on), then colourize and suggest once on a small blank photo, with a hint if the
        model takes them, so that nobody waits for the tracing or for TensorFlow making its kernels."""
        blank, given = np.full((48, 64, 3), 128, np.uint8), [Hint(32, 24, (200, 40, 40))] if self.hint_aware else []
        self([blank], [given])
        if colour_classes.is_classifier(self.net):
            self._suggest = tf.function(self._suggestion_computation(), input_signature=[
                tf.TensorSpec([1, None, None, 3], tf.float32), tf.TensorSpec([1, None, 2], tf.float32),
                tf.TensorSpec([1, None, 2], tf.float32), tf.TensorSpec([1, None, 3], tf.uint8)])
            self.suggest(blank, [(10.0, 10.0)], given)

    def suggest(self, rgb: np.ndarray, points: list[tuple[float, float]],
                photo_hints: list[Hint] = ()) -> list[list[suggesting.Suggestion]]:
        """The suggested colours at each point (x, y) of one photo, given the hints already on it."""
        if photo_hints and not self.hint_aware:
            raise UsageError("this model takes no colour hints (it was trained without them)")
        suggestions.check_classifier(self.net)
        self._suggest = self._suggest or self._suggestion_computation()
        hint_xy, hint_rgb = hint_tensors(photo_hints)
        output = self._suggest(color_tf.rgb_to_unit(tf.constant(rgb[None])), tf.constant([points], tf.float32),
                               hint_xy, hint_rgb)
        return suggesting.from_outputs(output["colors"][0].numpy(), output["probabilities"][0].numpy())


class LiteColorizer(WindowColorizer):
    """A TensorFlow Lite file (`trainer.applying.lite`): it colourizes, with hints if the model takes them, as it
    was exported; it holds the decoded colour only, not the distribution suggestions are made from."""

    def __init__(self, path: str, edge_aware: bool = True):
        try:
            self.net = lite.LiteNetwork(path)
        except ValueError as error:
            raise UsageError(f"--model {path}: {error}") from None
        super().__init__(path, self.net.preparation, self.net.hint_aware, edge_aware)

    def _predict(self, windows: np.ndarray) -> np.ndarray:
        return self.net.predict_on_batch(windows)

    def suggest(self, rgb: np.ndarray, points: list[tuple[float, float]],
                photo_hints: list[Hint] = ()) -> list[list[suggesting.Suggestion]]:
        raise UsageError("a TensorFlow Lite file holds the decoded colour only, not the colour distribution "
                         "suggestions come from; suggest with the .keras model it was exported from")


def hint_tensors(photo_hints: list[Hint]) -> tuple[tf.Tensor, tf.Tensor]:
    """One photo's hints as the graph takes them: points (1, k, 2) float32 and colours (1, k, 3) uint8."""
    return (tf.constant(np.reshape([(h.x, h.y) for h in photo_hints], (1, -1, 2)), tf.float32),
            tf.constant(np.reshape([h.rgb for h in photo_hints], (1, -1, 3)), tf.uint8))


class SavedModelColorizer:
    """The exported serving signatures, one photo at a time (they take a batch of one size)."""

    def __init__(self, path: str):
        self.source = path
        self._module = tf.saved_model.load(path)
        self.preparation = serving.preparation(path)

    def __call__(self, rgbs: list[np.ndarray], photo_hints: list[list[Hint]] | None = None) -> list[np.ndarray]:
        photo_hints = photo_hints or [[] for _ in rgbs]
        results = []
        for rgb, given in zip(rgbs, photo_hints):
            if not given:
                output = self._module.signatures[serving.SIGNATURE](images=tf.constant(rgb[None]))
            elif serving.HINTS_SIGNATURE not in self._module.signatures:
                raise UsageError("this SavedModel takes no colour hints (it was exported without them)")
            else:
                output = self._module.signatures[serving.HINTS_SIGNATURE](
                    images=tf.constant(rgb[None]),
                    hint_xy=tf.constant([[(h.x, h.y) for h in given]], tf.float32),
                    hint_rgb=tf.constant([[h.rgb for h in given]], tf.uint8))
            results.append(output["colorized"][0].numpy())
        return results

    def suggest(self, rgb: np.ndarray, points: list[tuple[float, float]],
                photo_hints: list[Hint] = ()) -> list[list[suggesting.Suggestion]]:
        """The exported suggest signatures' colours at each point (x, y) of one photo."""
        name = serving.SUGGEST_WITH_HINTS_SIGNATURE if photo_hints else serving.SUGGEST_SIGNATURE
        if name not in self._module.signatures:
            raise UsageError(f"this SavedModel has no {name} signature (a colour-classification model exported "
                             "with this version has it)")
        hint_inputs = dict(zip(("hint_xy", "hint_rgb"), hint_tensors(photo_hints))) if photo_hints else {}
        output = self._module.signatures[name](images=tf.constant(rgb[None]),
                                               points=tf.constant([points], tf.float32), **hint_inputs)
        return suggesting.from_outputs(output["colors"][0].numpy(), output["probabilities"][0].numpy())


def load(path: str | None, temperature: float | None = None, edge_aware: bool = True,
         vividness: float | None = None, warm: bool = False):
    """A colourizer from a SavedModel folder, a TensorFlow Lite file, a .keras file, a run's model_dir, or the
    shipped default. warm: a .keras model's first colourization and suggestion are made before it is returned
    (`KerasColorizer.warm_up`), for a page whose every click should answer at once."""
    colourizer = _load(path, temperature, edge_aware, vividness)
    if warm and isinstance(colourizer, KerasColorizer):
        colourizer.warm_up()
    return colourizer


def _load(path: str | None, temperature: float | None, edge_aware: bool, vividness: float | None):
    if path and path.endswith(lite.SUFFIX):
        if temperature is not None or vividness is not None:
            raise UsageError("--temperature and --vividness need a .keras model; a TensorFlow Lite file decodes as "
                             "it was exported")
        if not tf.io.gfile.exists(path):
            raise UsageError(f"--model: no file at {path}")
        return LiteColorizer(path, edge_aware)
    if path and tf.io.gfile.exists(f"{path.rstrip('/')}/saved_model.pb"):
        if temperature is not None or vividness is not None or not edge_aware:
            raise UsageError("--temperature, --vividness and --noedge_aware need a .keras model; a SavedModel "
                                    "decodes as it was exported")
        if not tf.io.gfile.exists(f"{path.rstrip('/')}/{serving.PREPARATION_FILE}"):
            raise UsageError(f"--model {path}: no {serving.PREPARATION_FILE}, so how its photos are prepared "
                                    "is unknown; export it again with this version")
        return SavedModelColorizer(path)
    try:
        return KerasColorizer(models.resolve(path), temperature, edge_aware, vividness)
    except FileNotFoundError as error:
        raise UsageError(f"--model: {error}") from None


def suggest(arguments: list[str], colourizer, points: list[tuple[float, float]],
            photo_hints: list[Hint] = ()) -> list[list[suggesting.Suggestion]]:
    """The suggested colours at each point of the one photo named, with the hints given on it."""
    found = photos.find(arguments)
    if len(found) != 1:
        raise UsageError(f"--suggest applies to one photo, but {len(found)} were given")
    rgb = photos.read_rgb(found[0], colourizer.preparation)
    if isinstance(rgb, photos.Failure):
        raise UsageError(f"{rgb.path}: {rgb.reason}: {rgb.detail}")
    suggesting.check_inside(points, rgb.shape[1], rgb.shape[0], found[0].path)
    hint_input.check_inside(found[0], list(photo_hints), *rgb.shape[:2])
    return colourizer.suggest(rgb, points, list(photo_hints))


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


def compare_sheet(source: np.ndarray, colourized: np.ndarray, prep: Preparation) -> np.ndarray:
    """gray | colourized | original (the original only when it had colour), with column titles. RGB."""
    panels, titles = [sheets.gray(source), colourized], ["gray", "colourized"]
    if prep.has_colour(source):
        panels, titles = [*panels, source], [*titles, "original"]
    return sheets.grid([panels], titles)


def plan(arguments: list[str], output: str) -> list[tuple[photos.Photo, str]]:
    """(photo, output path) for every photo; refuses to overwrite any input."""
    found = photos.find(arguments)
    inputs = {os.path.abspath(p.path) if "://" not in p.path else p.path for p in found}
    planned = [(p, f"{output.rstrip('/')}/{output_name(p.relative)}") for p in found]
    targets = [target for _, target in planned]
    clashes = [t for t in targets if (os.path.abspath(t) if "://" not in t else t) in inputs]
    if clashes:
        raise UsageError(f"--output {output} would overwrite input photos, e.g. {clashes[0]}; "
                                "choose another folder")
    if len(set(targets)) != len(targets):
        raise UsageError("two inputs map to the same output name; colourize them into separate folders")
    return planned


def run(arguments: list[str], output: str, model: str | None, *, batch_size: int, compare: bool = False,
        single_hints=(), hints_by_key=None, temperature: float | None = None, edge_aware: bool = True,
        max_pixels: int | None = None, vividness: float | None = None,
        colourizer=None) -> tuple[int, list[photos.Failure]]:
    """Colourize every photo (with its hints, if any); return how many were written and what failed.

    colourizer: the one `load` made of `model` already (the command's --suggest did), else it is loaded here.

    Photos are read and refused (too_small, too_large, ...) by the model's own preparation;
    max_pixels, when given, replaces its pixel limit. A photo that fails later, while being
    colourized or written, is a failure of that photo alone: every other one is still written.
    """
    if not arguments:
        raise UsageError("name at least one photo, folder or glob to colourize")
    planned = plan(arguments, output)
    assigned = hint_input.assign([photo for photo, _ in planned], list(single_hints), hints_by_key or {})
    colourizer = colourizer or load(model, temperature, edge_aware, vividness)
    print(f"colourizing {len(planned)} files with {describe(colourizer.source, model)}", flush=True)
    prep = colourizer.preparation
    for photo, _ in planned:  # every hint is checked before anything is written
        rgb = photos.read_rgb(photo, prep, max_pixels) if assigned.get(photo.path) else None
        if rgb is not None and not isinstance(rgb, photos.Failure):
            hint_input.check_inside(photo, assigned[photo.path], *rgb.shape[:2])
    progress = keras.utils.Progbar(len(planned), verbose=1 if sys.stdout.isatty() else 2, unit_name="photo")
    compare_dir = f"{output.rstrip('/')}/compare" if compare else None
    written, failures = 0, []
    for start in range(0, len(planned), batch_size):
        batch = []
        for photo, target in planned[start:start + batch_size]:
            rgb = photos.read_rgb(photo, prep, max_pixels)
            if isinstance(rgb, photos.Failure):
                failures.append(rgb)
            else:
                batch.append((photo, target, rgb))
        results = _colourize_each(colourizer, [(photo, rgb, assigned.get(photo.path, [])) for photo, _, rgb in batch])
        for (photo, target, rgb), result in zip(batch, results):
            failure = result if isinstance(result, photos.Failure) else _save(photo, target, rgb, result, compare_dir,
                                                                               prep)
            failures += [failure] if failure else []
            written += not failure
        progress.update(min(start + batch_size, len(planned)))
    return written, failures


def describe(source: str, asked: str | None) -> str:
    """Which model colourizes: its file, and whether it is the one shipped with the project."""
    return f"{source} (the model shipped with the project; --model chooses another)" if asked is None else source


def _failure(photo: photos.Photo, reason: str, error: Exception) -> photos.Failure:
    """The failure of one photo, in one line: the error's type and the last line of its message."""
    lines = str(error).strip().splitlines() or [""]
    return photos.Failure(photo.path, reason, f"{type(error).__name__}: {lines[-1]}")


def _colourize_each(colourizer, batch: list[tuple[photos.Photo, np.ndarray, list[Hint]]]) -> list:
    """Each photo's colourization, or its Failure: a batch that fails is colourized again photo by photo,
    so that one photo (one too big to recombine in memory, say) fails alone."""
    if not batch:
        return []
    try:
        return colourizer([rgb for _, rgb, _ in batch], [given for _, _, given in batch])
    except UsageError:
        raise
    except Exception as error:  # noqa: BLE001  whatever it was, it is reported for its photo
        if len(batch) == 1:
            return [_failure(batch[0][0], "colourizing_failed", error)]
        return [result for item in batch for result in _colourize_each(colourizer, [item])]


def _save(photo: photos.Photo, target: str, rgb: np.ndarray, result: np.ndarray, compare_dir: str | None,
          prep: Preparation) -> photos.Failure | None:
    """Write a photo's colourization (and its comparison sheet); the Failure if either cannot be written."""
    try:
        _write(target, result)
        if compare_dir:
            _write(f"{compare_dir}/{posixpath.splitext(photo.relative)[0]}.jpg", compare_sheet(rgb, result, prep))
    except (OSError, tf.errors.OpError, cv2.error) as error:
        return _failure(photo, "unwritable", error)
    return None
