"""Line charts of training curves as PNG, drawn with OpenCV (no plotting library needed)."""

import math

import cv2
import numpy as np
import tensorflow as tf

_SIZE = (360, 480)  # height, width of one panel
_MARGIN = 48
_COLOURS = [(200, 90, 30), (40, 130, 240), (60, 170, 60), (150, 60, 180), (40, 40, 200), (140, 140, 140)]  # BGR
_GRID = (225, 225, 225)
_Y_TICKS = 5
_MAX_X_TICKS = 10




def _padded(low: float, high: float) -> tuple[float, float]:
    """The range widened by 8% each side, so no point sits on the frame."""
    if high - low < 1e-9:
        return low - 0.5, high + 0.5
    pad = 0.08 * (high - low)
    return low - pad, high + pad


def _ticks(low: float, high: float, count: int, whole: bool = False) -> list[tuple[float, str]]:
    """About `count` round values inside [low, high] (1, 2 or 5 times a power of ten apart), with their labels;
    whole: no step below 1 (epochs)."""
    raw = (high - low) / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(power * m for m in (1, 2, 5, 10) if power * m >= raw)
    step = max(step, 1.0) if whole else step
    decimals = max(0, -math.floor(math.log10(step)))
    values = np.arange(math.ceil(low / step) * step, high + step * 1e-9, step)
    return [(float(v), f"{v:.{decimals}f}") for v in values]


def panel(title: str, xs: list, series: dict[str, list[float]], x_label: str = "epoch",
          points_only: bool = False, xs_by_series: dict[str, list] | None = None) -> np.ndarray:
    """One chart: a line (or just points) per named series over xs (or each over its own, `xs_by_series`, within
    the range of xs), on a labelled grid, with a legend. BGR."""
    height, width = _SIZE
    image = np.full((height, width, 3), 255, np.uint8)
    values = np.array([v for ys in series.values() for v in ys if v is not None and np.isfinite(v)], np.float64)
    low, high = _padded(*((values.min(), values.max()) if values.size else (0.0, 1.0)))
    x_low, x_high = _padded(min(xs), max(xs))
    left, right, top, bottom = _MARGIN + 16, width - 16, _MARGIN, height - _MARGIN

    def point(x, y):
        px = left + (x - x_low) / (x_high - x_low) * (right - left)
        py = bottom - (y - low) / (high - low) * (bottom - top)
        return int(round(px)), int(round(py))

    font = cv2.FONT_HERSHEY_SIMPLEX
    for value, text in _ticks(low, high, _Y_TICKS):
        y = point(x_low, value)[1]
        cv2.line(image, (left, y), (right, y), _GRID, 1)
        cv2.putText(image, text, (4, y + 4), font, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    for value, text in _ticks(x_low, x_high, _MAX_X_TICKS, whole=all(float(x).is_integer() for x in xs)):
        x = point(value, low)[0]
        cv2.line(image, (x, top), (x, bottom), _GRID, 1)
        cv2.putText(image, text, (x - 4 * len(text), bottom + 16), font, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(image, (left, top), (right, bottom), (0, 0, 0), 1)
    cv2.putText(image, title, (left, top - 24), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, x_label, ((left + right) // 2 - 4 * len(x_label), height - 10), font, 0.45, (0, 0, 0), 1,
                cv2.LINE_AA)
    for i, (name, ys) in enumerate(series.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        points = [point(x, y) for x, y in zip(xs_by_series[name] if xs_by_series else xs, ys)
                  if y is not None and np.isfinite(y)]
        for a, b in zip(points, points[1:]) if not points_only else []:
            cv2.line(image, a, b, colour, 2, cv2.LINE_AA)
        for p in points:
            cv2.circle(image, p, 3, colour, -1, cv2.LINE_AA)
        if len(series) > 1:  # the legend sits above the frame, where no line can run under it
            cv2.putText(image, name, (right - 110 * (len(series) - i), top - 4), font, 0.42, colour, 1, cv2.LINE_AA)
    return image


def bars(title: str, names: list[str], values: list[float]) -> np.ndarray:
    """One bar per name, labelled with its value; the axis starts just below the smallest bar. BGR."""
    height, width = _SIZE
    image = np.full((height, width, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(image, title, (16, _MARGIN - 16), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    low, high = min(values), max(values)
    floor = low - 0.25 * (high - low or abs(high) or 1.0)
    top, bottom, step = _MARGIN + 16, height - _MARGIN, (width - 32) / max(len(values), 1)
    for i, (name, value) in enumerate(zip(names, values)):
        left = int(16 + i * step + step * 0.15)
        right = int(16 + (i + 1) * step - step * 0.15)
        y = int(bottom - (value - floor) / ((high - floor) or 1.0) * (bottom - top))
        cv2.rectangle(image, (left, y), (right, bottom), _COLOURS[i % len(_COLOURS)], -1)
        cv2.putText(image, f"{value:.3f}", (left, y - 6), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        name_width = cv2.getTextSize(name, font, 0.4, 1)[0][0]
        scale = 0.4 * min(1.0, 0.95 * step / name_width)
        cv2.putText(image, name, (int(16 + i * step), height - 18), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return image


def save_panels(path: str, panels: list[np.ndarray]) -> None:
    """Write panels side by side as one PNG."""
    ok, encoded = cv2.imencode(".png", np.concatenate(panels, axis=1))
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    with tf.io.gfile.GFile(path, "wb") as handle:
        handle.write(encoded.tobytes())


def training_curves(path: str, history: list[dict]) -> None:
    """Per epoch, one quantity per panel (each on its own axis): loss, and the validation RGB PSNR, RGB SSIM,
    colourfulness (beside the truth's) and neutral false colour."""
    epochs = [int(row["epoch"]) for row in history]  # history.csv numbers epochs from 1

    def column(name):
        return [float(row.get(name, "nan") or "nan") for row in history]

    save_panels(path, [
        panel("loss (lower is better)", epochs, {"train": column("loss"), "validation": column("val_loss")}),
        panel("validation RGB PSNR, dB (higher is better)", epochs, {"model": column("val_rgb_psnr")}),
        panel("validation RGB SSIM (higher is better)", epochs, {"model": column("val_rgb_ssim")}),
        panel("validation colourfulness (nearer truth: better)", epochs,
              {"model": column("val_colourfulness"), "truth": column("val_colourfulness_true")}),
        panel("validation neutral false colour (lower is better)", epochs,
              {"model": column("val_neutral_false_colour")}),
    ])
