"""Edge-aware upsampling: colour stops at lightness edges, flat colour stays flat, the two twins agree."""

import cv2
import numpy as np

from trainer.applying import upsampling


def _edge_scene(height=1500, width=2000, edge=1037):
    """A photo whose right part is lighter and red; the model sees it at 200x200 and predicts colour at 50x50."""
    lightness = np.full((height, width), 0.3, np.float32)
    lightness[:, edge:] = 0.8
    truth = np.zeros((height, width, 2), np.float32)
    truth[:, edge:, 0] = 0.5
    seen = cv2.resize(truth, (200, 200), interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(cv2.resize(seen, (50, 50), interpolation=cv2.INTER_AREA), (200, 200))
    return lightness, truth, coarse, slice(edge - 60, edge + 60)


def test_a_sharp_colour_edge_stays_sharp_at_a_sharp_lightness_edge():
    lightness, truth, predicted, near_edge = _edge_scene()
    guided = upsampling.guided_upsample(lightness, predicted)
    bilinear = cv2.resize(predicted, (lightness.shape[1], lightness.shape[0]), interpolation=cv2.INTER_LINEAR)
    guided_error = np.abs(guided - truth)[:, near_edge].mean()
    bilinear_error = np.abs(bilinear - truth)[:, near_edge].mean()
    assert guided_error < 0.7 * bilinear_error


def test_flat_colour_stays_flat():
    rng = np.random.default_rng(0)
    lightness = rng.random((300, 400)).astype(np.float32)
    flat = np.full((200, 200, 2), (0.2, -0.1), np.float32)
    np.testing.assert_allclose(upsampling.guided_upsample(lightness, flat), np.broadcast_to((0.2, -0.1), (
        300, 400, 2)), atol=1e-4)


def test_tensorflow_twin_agrees_with_opencv():
    rng = np.random.default_rng(1)
    lightness = rng.random((333, 517)).astype(np.float32)
    ab = (rng.random((200, 200, 2)) - 0.5).astype(np.float32)
    ours = upsampling.guided_upsample(lightness, ab)
    twin = upsampling.guided_upsample_tf(lightness[None, ..., None], ab[None])[0].numpy()
    np.testing.assert_allclose(twin, ours, atol=2e-3)
