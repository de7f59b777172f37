"""Labelled picture grids: one renderer for contact sheets, comparisons and before/after pictures.

Column titles sit on a dark header band and each row's caption on a dark
band above the row, so text stays legible on white and on dark photos alike.
"""

import cv2
import numpy as np

_FONT = cv2.FONT_HERSHEY_SIMPLEX
BAND = 28  # pixels: the height of a title or caption band
_SCALE = 0.65  # the text's size, unless the band is too narrow for it
_BACKGROUND = (32, 32, 32)
_TEXT = (240, 240, 240)


def _band(width: int, text: str) -> np.ndarray:
    """A dark band with the text as large as fits its width, up to _SCALE."""
    band = np.full((BAND, width, 3), _BACKGROUND, np.uint8)
    text_width = cv2.getTextSize(text, _FONT, 1.0, 1)[0][0]
    scale = min(_SCALE, (width - 8) / max(text_width, 1))
    cv2.putText(band, text, (4, BAND - 9), _FONT, scale, _TEXT, 1, cv2.LINE_AA)
    return band


def _fit(panel: np.ndarray, height: int) -> np.ndarray:
    """Scale to `height` rows, keeping the aspect ratio."""
    if panel.shape[0] == height:
        return panel
    width = max(1, round(panel.shape[1] * height / panel.shape[0]))
    return cv2.resize(panel, (width, height), interpolation=cv2.INTER_AREA)


def grid(rows: list[list[np.ndarray]], titles: list[str], captions: list[str] | None = None,
         height: int | None = None) -> np.ndarray:
    """uint8 RGB panels in rows -> one uint8 RGB picture with a title over each column.

    Panels are scaled to `height` (default: the first panel's); every row must have one panel per title.
    """
    height = height or rows[0][0].shape[0]
    rows = [[_fit(panel, height) for panel in row] for row in rows]
    widths = [max(row[i].shape[1] for row in rows) for i in range(len(titles))]
    padded = [[np.pad(p, ((0, 0), (0, w - p.shape[1]), (0, 0)), constant_values=255) for p, w in zip(row, widths)]
              for row in rows]
    header = np.concatenate([_band(w, t) for w, t in zip(widths, titles)], axis=1)
    parts = [header]
    for index, row in enumerate(padded):
        if captions:
            parts.append(_band(sum(widths), captions[index]))
        parts.append(np.concatenate(row, axis=1))
    return np.concatenate(parts, axis=0)


def gray(rgb: np.ndarray) -> np.ndarray:
    """The photo as a person sees it in black and white, as RGB."""
    return np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=-1)
