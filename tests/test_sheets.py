"""Labelled picture grids: titles over columns, captions legible on white photos, panels fitted to one height;
the contact sheet's best and worst photos keep no batch alive."""

import gc
import tracemalloc
import weakref

import numpy as np

from trainer.evaluation import sheets
from trainer.evaluation.extremes import Extremes
from trainer.evaluation.photo_sets import Origin

SIDE = 64
PHOTO_BYTES = SIDE * SIDE * (1 + 2 + 2) * 4  # float32 lightness, true ab, predicted ab


def test_titles_and_captions_stay_legible_on_white_photos():
    white = np.full((50, 40, 3), 255, np.uint8)
    picture = sheets.grid([[white, white]], ["gray", "colourized"], ["a caption"])
    assert picture.shape == (2 * sheets.BAND + 50, 80, 3)
    for band in (picture[:sheets.BAND], picture[sheets.BAND:2 * sheets.BAND]):
        background, text = np.median(band), band.max()
        assert background < 64 and text > 192  # light text on a dark band


def test_panels_are_scaled_to_one_height_keeping_their_shape():
    tall, wide = np.zeros((100, 50, 3), np.uint8), np.zeros((50, 100, 3), np.uint8)
    picture = sheets.grid([[tall, wide]], ["tall", "wide"], height=60)
    assert picture.shape == (sheets.BAND + 60, 30 + 120, 3)


def _batch(count: int, seed: int = 0) -> tuple:
    """(RGB PSNR, lightness, true ab, predicted ab, origins) of `count` made photos, as `Extremes.offer` takes them."""
    rng = np.random.default_rng(seed)
    planes = [rng.random((count, SIDE, SIDE, channels), np.float32) for channels in (1, 2, 2)]
    return rng.uniform(10, 30, count), *planes, [Origin("made", f"{i}.png") for i in range(count)]


def test_kept_photos_do_not_keep_their_batch_alive():
    extremes, batch = Extremes(2), _batch(32)
    batch_refs = [weakref.ref(plane) for plane in batch[1:4]]
    extremes.offer(*batch)
    del batch
    gc.collect()
    assert all(ref() is None for ref in batch_refs)
    kept = [plane for _, planes in extremes.ranked() for plane in planes]
    assert len(kept) == 12 and all(plane.base is None for plane in kept)


def test_memory_kept_does_not_grow_with_the_batch():
    kept = {}
    for count in (8, 256):
        tracemalloc.start()
        extremes = Extremes(2)
        extremes.offer(*_batch(count))  # the batch is freed when the call returns
        kept[count] = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert len(extremes.ranked()) == 4
    assert kept[256] < 5 * PHOTO_BYTES, kept  # 2 best and 2 worst photos, not 256
    assert kept[256] < kept[8] + PHOTO_BYTES, kept
