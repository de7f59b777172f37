"""Colour classification: bins, soft encoding, rebalancing, annealed-mean decoding, the manifest's histogram."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline import ab_bins, color
from trainer.network import colour_classes, models

from tests.conftest import read_examples


def _histogram(seed: int = 0) -> np.ndarray:
    """A plausible colour histogram: most pixels near gray, a tail of saturated colours."""
    rng = np.random.default_rng(seed)
    ab8 = np.clip(np.round(rng.normal(128, 25, (20000, 2))), 0, 255).astype(np.uint8)
    return ab_bins.histogram(ab8)


@pytest.fixture(scope="module")
def bins():
    return colour_classes.ColourBins.from_histogram(_histogram())


def test_bin_centres_map_back_to_their_own_bins(bins):
    centres8 = np.round(ab_bins.centres(bins.indices) + color.AB_OFFSET).astype(np.uint8)
    np.testing.assert_array_equal(ab_bins.index_of(centres8), bins.indices)


def test_every_ab_value_falls_in_the_bin_of_its_nearest_centre():
    ab8 = np.stack(np.meshgrid(np.arange(256), np.arange(256), indexing="ij"), axis=-1).astype(np.uint8)
    centres = ab_bins.centres(ab_bins.index_of(ab8))
    distance = np.abs(ab8.astype(np.float32) - color.AB_OFFSET - centres)
    assert distance.max() <= ab_bins.STEP / 2 + 3  # the grid's outermost centres stop at +-120


def test_soft_encoding_sums_to_one_and_peaks_at_the_true_colours_bin(bins):
    ab = (ab_bins.centres(bins.indices[::7]) + np.float32(1.5)) / 128.0
    nearest, weights = colour_classes.soft_encode(tf.constant(ab, tf.float32), bins)
    np.testing.assert_allclose(weights.numpy().sum(axis=-1), 1.0, rtol=1e-6)
    assert nearest.shape[-1] == colour_classes.NEIGHBOURS
    np.testing.assert_array_equal(bins.indices[nearest.numpy()[:, 0]], bins.indices[::7])
    assert np.all(weights.numpy()[:, 0] == weights.numpy().max(axis=-1))


@pytest.mark.parametrize("rebalancing", [0.0, 0.5, 1.0])
def test_rebalancing_weights_average_one_over_the_training_pixels(bins, rebalancing):
    weights = bins.weights(rebalancing)
    assert np.sum(bins.frequency * weights) == pytest.approx(1.0, rel=1e-5)
    rare, common = np.argmin(bins.prior), np.argmax(bins.prior)
    if rebalancing < 1:
        assert weights[rare] > weights[common]
    else:
        np.testing.assert_allclose(weights, 1.0, rtol=1e-5)


def test_loss_and_its_gradient_equal_the_weighted_cross_entropy_of_the_soft_targets(bins):
    """The loss skips the log-probabilities over every bin; it must equal the cross-entropy written out."""
    rng = np.random.default_rng(2)
    ab = tf.constant(rng.uniform(-0.6, 0.6, (2, 8, 8, 2)), tf.float32)
    logits = tf.constant(rng.normal(0, 3, (2, 4, 4, bins.size)), tf.float32)
    weight = bins.weights(0.5)

    def written_out(logits):
        nearest, soft = colour_classes.soft_encode(tf.nn.avg_pool2d(ab, 2, 2, "VALID"), bins)
        log_p = tf.gather(tf.nn.log_softmax(logits), nearest, axis=-1, batch_dims=3)
        return tf.reduce_mean(tf.gather(weight, nearest[..., 0]) * -tf.reduce_sum(soft * log_p, -1), axis=[1, 2])

    loss = colour_classes.rebalanced_cross_entropy(bins, 0.5)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        fast, reference = loss(ab, logits), written_out(logits)
        fast_total, reference_total = tf.reduce_sum(fast), tf.reduce_sum(reference)
    np.testing.assert_allclose(fast, reference, rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(fast_total, logits), tape.gradient(reference_total, logits), atol=1e-7)


def _decoder(bins, temperature, vividness=1.0):
    logits = keras.Input((1, 1, bins.size))
    ab, fixed = colour_classes.decoding_head(logits, bins, 0.5, temperature, vividness)
    net = keras.Model(logits, ab)
    for name, weights in fixed.items():
        net.get_layer(name).set_weights(weights)
    return net


def test_annealed_mean_is_the_expectation_at_t1_and_approaches_the_mode_as_t_falls(bins):
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (1, 1, 1, bins.size)).astype(np.float32)
    probabilities = np.exp(logits) / np.exp(logits).sum()
    expectation = (probabilities[0, 0, 0, :, None] * bins.centres).sum(axis=0)
    np.testing.assert_allclose(_decoder(bins, 1.0)(logits)[0, 0, 0], expectation, atol=1e-5)
    mode = bins.centres[np.argmax(logits)]
    np.testing.assert_allclose(_decoder(bins, 0.02)(logits)[0, 0, 0], mode, atol=1e-3)


def test_decoding_can_be_changed_after_building_and_read_back(bins):
    net = _decoder(bins, 0.38, 0.7)
    assert colour_classes.decoding(net) == pytest.approx((0.38, 0.7), rel=1e-5)
    colour_classes.set_decoding(net, temperature=1.0)
    assert colour_classes.decoding(net) == pytest.approx((1.0, 0.7), rel=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        colour_classes.set_decoding(net, temperature=0.0)


def test_vividness_zero_divides_the_rebalancing_weights_back_out(bins):
    logits = np.log(np.full((1, 1, 1, bins.size), 1.0 / bins.size, np.float32))
    weights = bins.weights(0.5)
    corrected = (1.0 / weights) / (1.0 / weights).sum()
    expected = (corrected[:, None] * bins.centres).sum(axis=0)
    np.testing.assert_allclose(_decoder(bins, 1.0, vividness=0.0)(logits)[0, 0, 0], expected, atol=1e-5)


def test_classifier_network_saves_and_loads_with_keras_alone(bins, tmp_path):
    net = models.context_unet(32, width=8, bins=bins, temperature=0.5, vividness=0.6)
    net.save(tmp_path / "net.keras")
    loaded = keras.models.load_model(tmp_path / "net.keras")
    x = np.random.default_rng(2).random((1, 32, 32, 4), np.float32)
    np.testing.assert_allclose(loaded(x), net(x), atol=1e-5)
    assert colour_classes.decoding(loaded) == pytest.approx((0.5, 0.6), rel=1e-5)


def test_manifest_histogram_equals_a_count_over_the_records(tiny_records):
    manifest = json.loads((tiny_records / "manifest.json").read_text())
    for split in ("train", "val"):
        counts = np.zeros(ab_bins.COUNT, np.int64)
        for example in read_examples(tiny_records, split):
            counts += ab_bins.histogram(np.frombuffer(example["ab"], np.uint8).reshape(-1, 2))
        np.testing.assert_array_equal(manifest["splits"][split]["ab_histogram"], counts)
