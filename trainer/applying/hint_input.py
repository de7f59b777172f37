"""Colour hints as people give them: `--hint X,Y,#RRGGBB` for one photo, or a JSON file for many.

    {"roses/IMG_1.jpg": [{"x": 120, "y": 45, "color": "#d02030"}, ...], "tulip.png": [...]}

A file's keys are photo paths relative to the folder (or glob root) they were
found in, or bare file names. Every mistake is a one-line `UsageError`
naming the hint, key or photo.
"""

import json
import re

import tensorflow as tf

from pipeline.errors import UsageError
from trainer.applying import photos
from trainer.applying.inference import Hint

_COLOUR = re.compile(r"#?([0-9a-fA-F]{6})")


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
            result[key] = [Hint(float(e["x"]), float(e["y"]), parse_colour(str(e["color"]))) for e in entries]
        except (TypeError, KeyError, ValueError) as error:
            raise UsageError(f"--hints {path}: {key!r}: each hint needs x, y and color ({error})") from None
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
