"""The networks: the original autoencoder exactly, and the low-resolution U-Net."""

import keras
import numpy as np
import pytest

from trainer import models

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


def test_gray_baseline_predicts_no_colour():
    assert not np.any(models.gray(16)(np.ones((1, 16, 16, 1), np.float32)))


def test_unknown_model_is_named():
    with pytest.raises(ValueError, match="'resnet'"):
        models.build("resnet", 200)


def test_saved_network_loads_with_keras_alone(tmp_path):
    net = models.lowres_unet(32)
    net.save(tmp_path / "net.keras")
    loaded = keras.models.load_model(tmp_path / "net.keras")
    x = np.random.default_rng(1).random((1, 32, 32, 1), np.float32)
    np.testing.assert_allclose(loaded(x), net(x), atol=1e-6)
