"""Colour hints as people give them: `--hint X,Y,#RRGGBB` for one photo, or a JSON file for many.

    {"roses/IMG_1.jpg": [{"x": 120, "y": 45, "color": "#d02030"}, ...], "tulip.png": [...]}

A file's keys are photo paths relative to the folder (or glob root) they were
found in, or bare file names. Every mistake is a one-line `UsageError`
naming the hint, key or photo.
"""

import dataclasses
import json
import math
import re

import tensorflow as tf

from pipeline.errors import UsageError
from trainer.applying import photos

_COLOUR = re.compile(r"#?([0-9a-fA-F]{6})")
_KEYS = ("x", "y", "color")


@dataclasses.dataclass(frozen=True)
class Hint:
    """A person's colour hint: this colour's chroma at (x, y), in the photo's own pixels, origin top-left."""

    x: float
    y: float
    rgb: tuple[int, int, int]


def parse_colour(text: str) -> tuple[int, int, int]:
    match = _COLOUR.fullmatch(text.strip())
    if not match:
        raise UsageError(f"colour {text!r} is not of the form #RRGGBB")
    value = match.group(1)
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def parse_hint(text: str) -> Hint:
    """'X,Y,#RRGGBB' -> Hint."""
    parts = text.split(",")
    if len(parts) != 3:
        raise UsageError(f"--hint {text!r}: expected X,Y,#RRGGBB, e.g. 120,45,#d02030")
    try:
        x, y = float(parts[0]), float(parts[1])
    except ValueError:
        raise UsageError(f"--hint {text!r}: X and Y must be numbers (pixels of the photo)") from None
    return Hint(x, y, parse_colour(parts[2]))


def coordinate(name: str, value) -> float:
    """A JSON number as a pixel coordinate; true, "12", 1e400 or a number of 400 digits are mistakes."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{name} must be a number, not {json.dumps(value)[:40]}")
    try:
        number = float(value)
    except OverflowError:
        raise UsageError(f"{name} is too large a number") from None
    if not math.isfinite(number):
        raise UsageError(f"{name} must be a finite number")
    return number


def hint_from_json(entry) -> Hint:
    """{"x": 120, "y": 45, "color": "#d02030"} -> Hint, as a hints file and the web page send them."""
    if not isinstance(entry, dict) or not all(key in entry for key in _KEYS):
        raise UsageError('each hint needs x, y and color, e.g. {"x": 120, "y": 45, "color": "#d02030"}')
    if not isinstance(entry["color"], str):
        raise UsageError(f"color must be a string #RRGGBB, not {json.dumps(entry['color'])[:40]}")
    return Hint(coordinate("x", entry["x"]), coordinate("y", entry["y"]), parse_colour(entry["color"]))


def read_hints_file(path: str) -> dict[str, list[Hint]]:
    """A hints JSON file -> {photo key: hints}."""
    try:
        with tf.io.gfile.GFile(path) as handle:
            content = json.load(handle)
    except (OSError, tf.errors.OpError, ValueError) as error:
        raise UsageError(f"--hints {path}: {str(error).splitlines()[0]}") from None
    if not isinstance(content, dict):
        raise UsageError(f"--hints {path}: expected an object of photo names to lists of hints")
    result = {}
    for key, entries in content.items():
        try:
            if not isinstance(entries, list):
                raise UsageError("expected a list of hints")
            result[key] = [hint_from_json(entry) for entry in entries]
        except UsageError as error:
            raise UsageError(f"--hints {path}: {key!r}: {error}") from None
    return result


def assign(found: list[photos.Photo], single: list[Hint], by_key: dict[str, list[Hint]]) -> dict[str, list[Hint]]:
    """{photo path: its hints}; --hint needs exactly one photo; every file key must match a photo."""
    if single and len(found) != 1:
        raise UsageError(f"--hint applies to one photo, but {len(found)} were given; use --hints FILE.json")
    assigned = {found[0].path: single} if single else {}
    for key, given in by_key.items():
        matches = [p for p in found if p.relative == key] or [p for p in found if p.relative.split("/")[-1] == key]
        if not matches:
            raise UsageError(f"--hints: {key!r} matches no photo given")
        if len(matches) > 1:
            raise UsageError(f"--hints: {key!r} matches {len(matches)} photos; use its relative path")
        assigned[matches[0].path] = given
    return assigned


def check_inside(photo: photos.Photo, given: list[Hint], height: int, width: int) -> None:
    for hint in given:
        if not (0 <= hint.x < width and 0 <= hint.y < height):
            raise UsageError(f"hint ({hint.x:g}, {hint.y:g}) is outside {photo.path} ({width}x{height})")
