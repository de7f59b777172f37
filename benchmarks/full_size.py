"""Full-size photos and what the benchmarks measure on them, as a person sees the result of `trainer.colorize`.

The photos are the reference originals at their own size (`../shared/data`), chosen by the Beam job's own
content-hash split rule, so that "test" here means the photos the model never trained on; and every photo of
the species a model held out (windflower and pansy for the shipped one). Each is scored against its own
colours after the command's whole path (view, windows, network, edge-aware upsampling, recombination).
"""

import dataclasses
import pathlib

import cv2
import numpy as np
import tensorflow as tf

from pipeline import color, splits
from trainer.evaluation import metrics

HELD_OUT = ("windflower", "pansy")  # the species the shipped model never saw
NEUTRAL_CHROMA = 5.0  # Lab units: a pixel whose true chroma is below this is neutral (white, gray, black)
EDGE_BAND = 4  # pixels either side of a strong lightness edge (Canny on L8, thresholds 50/150)


@dataclasses.dataclass(frozen=True)
class Photo:
    path: pathlib.Path
    label: str

    @property
    def held_out(self) -> bool:
        return self.label in HELD_OUT

    def read(self) -> np.ndarray:
        return cv2.imread(str(self.path))[..., ::-1].copy()


def test_photos(folder: pathlib.Path, count: int) -> list[Photo]:
    """`count` photos of the test split (by the Beam job's rule) spread over every class, held-out species apart."""
    rule = splits.SplitRule()
    chosen = [p for p in sorted(folder.glob("*/*/*.jpg")) if p.parent.name not in HELD_OUT
              and rule.split_of(splits.content_hash(p.read_bytes())) == "test"]
    return [Photo(p, p.parent.name) for p in chosen[:: max(1, len(chosen) // count)][:count]]


def held_out_photos(folder: pathlib.Path, count: int) -> list[Photo]:
    """`count` photos of the held-out species, from every split (the model saw none), half of each species."""
    found = []
    for label in HELD_OUT:
        paths = sorted(folder.glob(f"*/{label}/*.jpg"))
        found += [Photo(p, label) for p in paths[:: max(1, len(paths) // (count // len(HELD_OUT)))][:count // len(HELD_OUT)]]
    return found


def _chroma(lab8: np.ndarray) -> np.ndarray:
    return np.linalg.norm(lab8[..., 1:].astype(np.float32) - color.AB_OFFSET, axis=-1)


def scores(truth: np.ndarray, result: np.ndarray) -> dict[str, float]:
    """RGB PSNR (dB, capped at 50), colourfulness of both, false colour on neutral pixels and chroma error
    near strong edges (Lab units) of a colourized photo against its original, both uint8 RGB at full size."""
    pair = tf.constant(np.stack([truth, result]).astype(np.float32))
    truth_cf, result_cf = metrics.colourfulness(pair).numpy()
    true_lab, result_lab = color.rgb_to_lab8(truth), color.rgb_to_lab8(result)
    neutral = _chroma(true_lab) < NEUTRAL_CHROMA
    edges = cv2.dilate(cv2.Canny(true_lab[..., 0], 50, 150), np.ones((2 * EDGE_BAND + 1,) * 2, np.uint8)) > 0
    error = np.linalg.norm(true_lab[..., 1:].astype(np.float32) - result_lab[..., 1:], axis=-1)
    return {"rgb_psnr": float(metrics.rgb_psnr(pair[:1], pair[1:])[0]),
            "colourfulness": float(result_cf), "colourfulness_true": float(truth_cf),
            "neutral_false_colour": float(_chroma(result_lab)[neutral].mean()) if neutral.any() else float("nan"),
            "edge_error": float(error[edges].mean()) if edges.any() else float("nan")}


def summary(rows: list[dict[str, float]]) -> dict[str, float]:
    """Means over photos; colourfulness also as the ratio of the means (model / truth), as DDColor reports it."""
    mean = {name: float(np.nanmean([row[name] for row in rows])) for name in rows[0]}
    return {**mean, "colourfulness_ratio": mean["colourfulness"] / mean["colourfulness_true"]}


def _patch_colour(rgb: np.ndarray, x: int, y: int, half: int = 2) -> tuple[int, int, int]:
    """The mean colour of the 5x5 pixels around (x, y): what a person picking the colour there would give."""
    patch = rgb[max(y - half, 0):y + half + 1, max(x - half, 0):x + half + 1].reshape(-1, 3)
    return tuple(int(v) for v in np.round(patch.mean(axis=0)))


def random_points(rgb: np.ndarray, count: int, seed: int) -> list[tuple[int, int, tuple[int, int, int]]]:
    """`count` points (x, y, true colour) drawn uniformly over the photo."""
    rng = np.random.default_rng(seed)
    height, width = rgb.shape[:2]
    xs, ys = rng.integers(0, width, count), rng.integers(0, height, count)
    return [(int(x), int(y), _patch_colour(rgb, int(x), int(y))) for x, y in zip(xs, ys)]


REGION_STEP = 15.0  # Lab units: colours this close count as one when finding regions of one colour
REGION_SIDE = 200  # regions are found on the photo shrunk to this long side


def person_points(rgb: np.ndarray, count: int) -> list[tuple[int, int, tuple[int, int, int]]]:
    """Where a person would click: the middle (the point farthest from its border) of each of the `count`
    largest connected regions of one colour (ab quantized in steps of REGION_STEP), with its true colour."""
    height, width = rgb.shape[:2]
    scale = min(1.0, REGION_SIDE / max(height, width))
    small = cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    ab = color.rgb_to_lab8(small)[..., 1:].astype(np.float32) - color.AB_OFFSET
    quantized = np.floor(ab / REGION_STEP).astype(np.int32)
    keys = (quantized[..., 0] + 64) * 128 + quantized[..., 1] + 64
    regions = []
    for key in np.unique(keys):
        found, labels, stats, _ = cv2.connectedComponentsWithStats((keys == key).astype(np.uint8), connectivity=4)
        regions += [(stats[i, cv2.CC_STAT_AREA], labels == i) for i in range(1, found)]
    points = []
    for _, region in sorted(regions, key=lambda r: -r[0])[:count]:
        inside = cv2.distanceTransform(np.pad(region, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
        y, x = np.unravel_index(np.argmax(inside), inside.shape)
        x, y = min(int((x + 0.5) / scale), width - 1), min(int((y + 0.5) / scale), height - 1)
        points.append((x, y, _patch_colour(rgb, x, y)))
    return points


def white_share(rgb: np.ndarray) -> float:
    """The share of bright neutral pixels (L8 over 200, chroma under 6): white paper, white sky, white petals."""
    lab = color.rgb_to_lab8(rgb)
    return float(((lab[..., 0] > 200) & (_chroma(lab) < 6)).mean())


def white_background_photos(folder: pathlib.Path, count: int) -> list[Photo]:
    """The `count` test photos with the most white (`white_share`): where halos and tinted whites show."""
    photos = test_photos(folder, 10 ** 9)
    return sorted(photos, key=lambda photo: -white_share(photo.read()))[:count]
