"""Labelled picture grids: titles over columns, captions legible on white photos, panels fitted to one height."""

import numpy as np

from trainer.evaluation import sheets


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
