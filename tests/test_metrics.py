"""The in-graph metrics equal independent NumPy / scikit-image computations on fixed arrays."""

import cv2
import numpy as np
import pytest
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from trainer.evaluation import metrics

RNG = np.random.default_rng(7)


def _smooth(shape, low, high):
    """Random but image-like values: noise blurred, scaled into [low, high]."""
    noise = ndimage.gaussian_filter(RNG.random(shape), sigma=(0, 2, 2, 0))
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    return (low + noise * (high - low)).astype(np.float32)


@pytest.fixture(scope="module")
def rgb_pair():
    truth = np.round(_smooth((3, 40, 48, 3), 0, 255))
    predicted = np.clip(truth + np.round(RNG.normal(0, 12, truth.shape)), 0, 255)
    return truth.astype(np.float32), predicted.astype(np.float32)


def _colourfulness(rgb):
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg, yb = red - green, 0.5 * (red + green) - blue
    return np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)


def _ssim(a, b, data_range):
    return structural_similarity(a, b, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=data_range)


def test_rgb_psnr_matches_skimage_and_is_capped(rgb_pair):
    truth, predicted = rgb_pair
    ours = metrics.rgb_psnr(truth, predicted).numpy()
    reference = [peak_signal_noise_ratio(t, p, data_range=255) for t, p in zip(truth, predicted)]
    np.testing.assert_allclose(ours, reference, rtol=1e-4)
    assert metrics.rgb_psnr(truth, truth).numpy().tolist() == [metrics.PSNR_CAP_DB] * 3


def test_rgb_ssim_matches_skimage_gaussian_ssim(rgb_pair):
    truth, predicted = rgb_pair
    ours = metrics.rgb_ssim(truth, predicted).numpy()
    reference = [_ssim(t, p, 255) for t, p in zip(truth, predicted)]
    np.testing.assert_allclose(ours, reference, atol=2e-4)


def test_colourfulness_matches_hasler_suesstrunk(rgb_pair):
    truth, _ = rgb_pair
    np.testing.assert_allclose(metrics.colourfulness(truth).numpy(), [_colourfulness(t) for t in truth],
                               rtol=1e-4)
    gray = np.repeat(truth[..., :1], 3, axis=-1)
    np.testing.assert_allclose(metrics.colourfulness(gray).numpy(), 0.0, atol=1e-3)


def test_seed_scale_is_the_original_projects_ab_over_128():
    lightness = _smooth((2, 32, 32, 1), 0.2, 0.9)
    ab_true = _smooth((2, 32, 32, 2), -0.4, 0.5)
    ab_pred = np.clip(ab_true + RNG.normal(0, 0.05, ab_true.shape), -1, 1).astype(np.float32)
    values = metrics.per_image(lightness, ab_true, ab_pred)
    seed_true, seed_pred = ab_true + 1.0, ab_pred + 1.0  # (ab8 - 128) / 128 + 1 = ab8 / 128
    np.testing.assert_allclose(values["ab_psnr"], [peak_signal_noise_ratio(t, p, data_range=1.0)
                                                   for t, p in zip(seed_true, seed_pred)], rtol=1e-4)
    np.testing.assert_allclose(values["ab_ssim"], [_ssim(t, p, 1.0) for t, p in zip(seed_true, seed_pred)],
                               atol=2e-4)


def test_seed_scale_ab_ssim_ranks_a_flat_plane_above_right_colours_with_blotches():
    """What the report's ab SSIM note says: the colours right on average, with blotches of about 10 Lab units
    the truth lacks, beat gray by far on RGB PSNR but lose to it on ab SSIM, the flat plane's structure term
    staying high where the truth's colour is even, and the mean term hardly seeing the colour."""
    rng = np.random.default_rng(0)
    lightness = np.full((2, 64, 64, 1), 0.6, np.float32)
    rows, columns = np.mgrid[:64, :64]
    disc = (rows - 32) ** 2 + (columns - 32) ** 2 < 15 ** 2  # a flower of strong colour on an even background
    ab_true = np.zeros((2, 64, 64, 2), np.float32)
    ab_true[..., 0], ab_true[..., 1] = np.where(disc, 0.45, -0.25), np.where(disc, 0.35, 0.25)
    blotches = ndimage.gaussian_filter(rng.normal(0, 1, ab_true.shape), sigma=(0, 4, 4, 0))
    blotchy = (ab_true + blotches * (10 / 128) / blotches.std()).astype(np.float32)
    model, gray = (metrics.per_image(lightness, ab_true, ab) for ab in (blotchy, np.zeros_like(ab_true)))
    assert np.all(model["rgb_psnr"] > gray["rgb_psnr"] + 5)
    assert np.all(model["ab_ssim"] < gray["ab_ssim"])


def test_rgb_metrics_rebuild_rgb_from_true_lightness_and_predicted_ab():
    """Against an OpenCV Lab -> RGB rebuild: integer rounding may differ by one level here and there."""
    lightness = _smooth((2, 32, 32, 1), 0.2, 0.9)
    ab_true = _smooth((2, 32, 32, 2), -0.3, 0.4)
    ab_pred = (0.5 * ab_true).astype(np.float32)

    def opencv_rgb(ab):
        lab = np.concatenate([lightness * 100, ab * 128], axis=-1)
        return np.stack([np.round(np.clip(cv2.cvtColor(x, cv2.COLOR_LAB2RGB), 0, 1) * 255) for x in lab])

    values = metrics.per_image(lightness, ab_true, ab_pred)
    truth, predicted = opencv_rgb(ab_true), opencv_rgb(ab_pred)
    reference = [peak_signal_noise_ratio(t, p, data_range=255) for t, p in zip(truth, predicted)]
    np.testing.assert_allclose(values["rgb_psnr"], reference, atol=0.3)
    np.testing.assert_allclose(values["colourfulness_true"], [_colourfulness(t) for t in truth], rtol=0.02)
    np.testing.assert_allclose(values["colourfulness_gap"],
                               values["colourfulness_true"] - values["colourfulness"], atol=1e-4)
    assert np.all(values["colourfulness_gap"] > 0)  # half the chroma: duller than the truth


def test_colour_errors_match_numpy():
    lightness = _smooth((3, 24, 24, 1), 0.2, 0.9)
    ab_true = _smooth((3, 24, 24, 2), -0.3, 0.3)
    ab_true[0, :8] = 0.01  # a near-white band: neutral pixels
    ab_pred = (ab_true + RNG.normal(0, 0.1, ab_true.shape)).astype(np.float32)
    values = {name: value.numpy() for name, value in metrics.per_image(lightness, ab_true, ab_pred).items()}
    error = np.hypot(*np.moveaxis((ab_true - ab_pred) * 128.0, -1, 0))
    auc = [np.mean([(e <= t).mean() for t in range(151)]) for e in error]
    np.testing.assert_allclose(values["ab_error_auc"], auc, rtol=1e-5)
    neutral = np.hypot(*np.moveaxis(ab_true * 128.0, -1, 0)) < 5
    chroma = np.hypot(*np.moveaxis(ab_pred * 128.0, -1, 0))
    for i in range(3):
        expected = chroma[i][neutral[i]].mean() if neutral[i].any() else 0.0
        assert values["neutral_false_colour"][i] == pytest.approx(expected, rel=1e-4)
        assert values["neutral_share"][i] == pytest.approx(neutral[i].mean(), rel=1e-6)
    assert values["neutral_share"][0] >= 8 / 24


def test_set_metrics_weight_neutral_pixels_and_compare_colourfulness_to_the_truth():
    per_image = {name: [1.0, 3.0] for name in metrics.NAMES}
    per_image.update(neutral_false_colour=[10.0, 40.0], neutral_share=[0.3, 0.1],
                     colourfulness=[20.0, 40.0], colourfulness_true=[50.0, 70.0], colourfulness_gap=[30.0, 30.0])
    result = metrics.mean(per_image)
    assert result["neutral_false_colour"] == pytest.approx((10 * 0.3 + 40 * 0.1) / 0.4)
    assert result["colourfulness_ratio"] == pytest.approx(30.0 / 60.0)
    # DDColor's delta-CF is the set's colourfulness gap without its sign: one quantity, one name
    assert result["colourfulness_gap"] == pytest.approx(result["colourfulness_true"] - result["colourfulness"])
    assert "delta_cf" not in result and "delta_cf" not in metrics.TITLES
