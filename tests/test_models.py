"""The networks: the original autoencoder exactly, and the low-resolution U-Net."""

import keras
import numpy as np
import pytest

from trainer.network import models

SEED_TABLE = [
    ("InputLayer", (200, 200, 1)),
    ("Conv2D", (200, 200, 64)), ("MaxPooling2D", (100, 100, 64)),
    ("Conv2D", (100, 100, 128)), ("MaxPooling2D", (50, 50, 128)),
    ("Conv2D", (50, 50, 256)), ("MaxPooling2D", (25, 25, 256)),
    ("Conv2DTranspose", (25, 25, 256)), ("UpSampling2D", (50, 50, 256)),
    ("Conv2DTranspose", (50, 50, 128)), ("UpSampling2D", (100, 100, 128)),
    ("Conv2DTranspose", (100, 100, 64)), ("UpSampling2D", (200, 200, 64)),
    ("Conv2D", (200, 200, 2)),
]


def test_seed_autoencoder_is_the_original_layer_for_layer():
    net = models.seed_autoencoder(200)
    assert net.count_params() == 1_329_730
    table = [(type(layer).__name__, tuple(layer.output.shape[1:])) for layer in net.layers]
    assert table == SEED_TABLE
    activations = [layer.activation.__name__ for layer in net.layers if hasattr(layer, "activation")]
    assert activations == ["relu"] * 6 + ["linear"]


@pytest.mark.parametrize("size", [32, 200])
def test_lowres_unet_maps_lightness_to_ab_at_full_size(size):
    net = models.lowres_unet(size)
    ab = net(np.random.default_rng(0).random((2, size, size, 1), np.float32))
    assert ab.shape == (2, size, size, 2)
    assert net.count_params() < models.seed_autoencoder(size).count_params() / 2


def test_lowres_unet_refuses_sizes_it_cannot_halve_three_times():
    with pytest.raises(ValueError, match="divisible by 8"):
        models.lowres_unet(100)


@pytest.mark.parametrize("head", ["regression", "classification"])
def test_context_unet_takes_lightness_and_hints_and_gives_ab(head):
    from pipeline import ab_bins
    from trainer.network import colour_classes

    histogram = ab_bins.histogram(np.random.default_rng(0).integers(100, 160, (500, 2)).astype(np.uint8))
    bins = colour_classes.ColourBins.from_histogram(histogram) if head == "classification" else None
    net = models.context_unet(32, width=8, bins=bins)
    ab = net(np.random.default_rng(0).random((2, 32, 32, 4), np.float32)).numpy()
    assert ab.shape == (2, 32, 32, 2)
    assert np.all(np.abs(ab) <= 1.0)
    assert colour_classes.is_classifier(net) == (head == "classification")


def test_global_context_reaches_every_position():
    """A change in one corner of the photo changes the colour predicted in the opposite corner."""
    net = models.context_unet(64, width=8)
    photo = np.random.default_rng(1).random((1, 64, 64, 4), np.float32)
    changed = photo.copy()
    changed[0, :8, :8, 0] = 1.0 - changed[0, :8, :8, 0]
    assert not np.allclose(net(photo)[0, -4:, -4:], net(changed)[0, -4:, -4:])


def test_context_unet_trains_on_windows_with_the_weights_it_colourizes_whole_photos_with():
    """Built for 64 pixels, allowed any size: a 32-pixel window gives what the same weights give at 32 pixels."""
    net = models.accept_any_size(models.context_unet(64, width=8))
    small = models.context_unet(32, width=8)
    small.set_weights(net.get_weights())
    window = np.random.default_rng(2).random((2, 32, 32, 4), np.float32)
    np.testing.assert_allclose(net(window), small(window), atol=1e-6)
    assert net(np.zeros((1, 64, 64, 4), np.float32)).shape == (1, 64, 64, 2)
    with pytest.raises(ValueError, match="incompatible"):
        small(np.zeros((1, 64, 64, 4), np.float32))  # without it, the size is the one built for


def test_unknown_model_is_named():
    with pytest.raises(ValueError, match="'resnet'"):
        models.build("resnet", 200)


def test_saved_network_loads_with_keras_alone(tmp_path):
    net = models.lowres_unet(32)
    net.save(tmp_path / "net.keras")
    loaded = keras.models.load_model(tmp_path / "net.keras")
    x = np.random.default_rng(1).random((1, 32, 32, 1), np.float32)
    np.testing.assert_allclose(loaded(x), net(x), atol=1e-6)


def _classifier(size: int = 32):
    from pipeline import ab_bins
    from trainer.network import colour_classes

    histogram = ab_bins.histogram(np.random.default_rng(0).integers(90, 170, (500, 2)).astype(np.uint8))
    keras.utils.set_random_seed(3)
    return models.context_unet(size, width=8, bins=colour_classes.ColourBins.from_histogram(histogram))


def test_a_mirror_averaged_classifier_is_symmetric_and_decodes_the_averaged_logits(tmp_path):
    from trainer.network import colour_classes

    net = _classifier()
    averaged = models.mirror_averaged(net)
    photo = np.random.default_rng(2).random((2, 32, 32, 4), np.float32)
    mirrored = photo[:, :, ::-1]
    np.testing.assert_allclose(averaged(mirrored).numpy(), averaged(photo).numpy()[:, :, ::-1], atol=1e-5)
    assert not np.allclose(averaged(photo), net(photo), rtol=0, atol=1e-5)  # the plain network is not symmetric
    body = keras.Model(net.inputs, net.get_layer(colour_classes.LOGITS_LAYER).output)
    logits = keras.Input(body.output.shape[1:])
    head = keras.Model(logits, models.decode_logits(net, logits))
    expected = head((body(photo) + body(mirrored)[:, :, ::-1]) / 2)
    np.testing.assert_allclose(averaged(photo), expected, atol=1e-5)
    colour_classes.set_decoding(averaged, temperature=1.0)
    assert colour_classes.decoding(averaged)[0] == pytest.approx(1.0)
    averaged.save(tmp_path / "averaged.keras")
    loaded = keras.models.load_model(tmp_path / "averaged.keras")
    np.testing.assert_allclose(loaded(photo), averaged(photo), atol=1e-6)


def test_the_single_view_of_a_saved_mirror_averaged_classifier_is_the_network_it_was_made_from(tmp_path):
    """What fine-tuning from the shipped model starts from: one view, the same weights and decoding."""
    net = _classifier()
    models.mirror_averaged(net).save(tmp_path / "averaged.keras")
    plain = models.single_view(keras.models.load_model(tmp_path / "averaged.keras"))
    photo = np.random.default_rng(3).random((2, 32, 32, 4), np.float32)
    np.testing.assert_allclose(plain(photo), net(photo), atol=1e-5)
    assert models.single_view(net) is net
