"""Suggested colours as people ask for them: `--suggest X,Y` on the command line, a click on the page.

The colours themselves come from `trainer.network.suggestions`; this module
reads the points, checks them against the photo, and writes the answers.
"""

import dataclasses

import numpy as np

from pipeline.errors import UsageError
from trainer.applying import hint_input


@dataclasses.dataclass(frozen=True)
class Suggestion:
    """One suggested colour at a point, at the photo's lightness there, and the model's probability of it."""

    rgb: tuple[int, int, int]
    probability: float

    @property
    def hex(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.rgb)

    def to_json(self) -> dict:
        return {"color": self.hex, "probability": round(self.probability, 4)}


def parse_point(text: str) -> tuple[float, float]:
    """'X,Y' (pixels of the photo, origin top-left) -> (x, y)."""
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise UsageError(f"--suggest {text!r}: expected X,Y, pixels of the photo, e.g. 120,45") from None


def check_inside(points: list[tuple[float, float]], width: int, height: int, name: str) -> None:
    for x, y in points:
        if not (0 <= x < width and 0 <= y < height):
            raise UsageError(f"--suggest {x:g},{y:g} is outside {name} ({width}x{height})")


def point_from_json(payload, width: int, height: int) -> tuple[float, float]:
    """{"x": .., "y": .., ...} as the page sends a click -> (x, y) inside a width x height photo."""
    if not isinstance(payload, dict) or "x" not in payload or "y" not in payload:
        raise UsageError('expected {"x": .., "y": .., "hints": [...]}, the point in the photo\'s pixels')
    x, y = (hint_input.coordinate(name, payload[name]) for name in ("x", "y"))
    if not (0 <= x < width and 0 <= y < height):
        raise UsageError(f"the point ({x:g}, {y:g}) is outside the {width}x{height} photo")
    return x, y


def from_outputs(colours: np.ndarray, probabilities: np.ndarray) -> list[list[Suggestion]]:
    """The suggest computation's colours (k, n, 3) and probabilities (k, n) -> each point's suggestions,
    most likely first, without the absent ones (probability 0)."""
    return [[Suggestion(tuple(int(v) for v in rgb), float(p)) for rgb, p in zip(point_colours, point_probabilities)
             if p > 0]
            for point_colours, point_probabilities in zip(colours, probabilities)]


def line(point: tuple[float, float], found: list[Suggestion]) -> str:
    """'X,Y #RRGGBB (0.62) #RRGGBB (0.21) ...': one point's suggestions, as the command prints them."""
    colours = " ".join(f"{s.hex} ({s.probability:.2f})" for s in found) or "no suggestion"
    return f"{point[0]:g},{point[1]:g} {colours}"
