"""--init_model on records with other colour bins: the classifier's head is mapped onto them, and fine-tuning
the shipped model briefly on drawn photos brings its colours nearer theirs."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline import ab_bins, color_tf, dataset
from trainer.network import colour_classes, hints, model_file, models
from trainer.training import transfer
from tests.conftest import run_module, run_preprocess

SHIPPED = "trainer/default_model/model.keras"


def _bins(present: list[int]) -> colour_classes.ColourBins:
    counts = np.zeros(ab_bins.COUNT)
    counts[present] = np.arange(1, len(present) + 1)
    return colour_classes.ColourBins.from_histogram(counts)


def test_shared_bins_keep_their_logits_and_new_ones_start_from_their_nearest():
    centre = ab_bins.SIDE // 2 * ab_bins.SIDE + ab_bins.SIDE // 2  # a = b = 0
    own = _bins([centre, centre + 1, centre + 2, centre + ab_bins.SIDE])
    other = _bins([centre, centre + 2, centre + 3, centre - ab_bins.SIDE])  # two shared, two new
    keras.utils.set_random_seed(1)
    net = models.context_unet(16, width=8, bins=own, vividness=0.5)
    assert transfer.onto_bins(net, own, 0.5) is net
    mapped = transfer.onto_bins(net, other, 0.5)
    np.testing.assert_array_equal(transfer.model_bins(mapped), other.indices)
    assert colour_classes.decoding(mapped) == pytest.approx(colour_classes.decoding(net))
    photo = tf.random.stateless_uniform((1, 16, 16, hints.CHANNELS), (3, 4))
    logits = [keras.Model(n.inputs, n.get_layer(colour_classes.LOGITS_LAYER).output)(photo).numpy()
              for n in (net, mapped)]
    np.testing.assert_allclose(logits[1], logits[0][..., _order(own, other)], rtol=1e-5)
    assert mapped(photo).shape == net(photo).shape


def _order(own, other):
    """Which of own's bins each of other's bins copies, worked out by hand: a shared bin itself, a new one
    its nearest (centre + 3 is a step from centre + 2, centre - SIDE a step from centre)."""
    own_index = {int(index): position for position, index in enumerate(own.indices)}
    centre = ab_bins.SIDE // 2 * ab_bins.SIDE + ab_bins.SIDE // 2
    copies = {centre: centre, centre + 2: centre + 2, centre + 3: centre + 2, centre - ab_bins.SIDE: centre}
    return [own_index[copies[int(index)]] for index in other.indices]


@pytest.fixture(scope="module")
def shipped_size_records(made_photos, tmp_path_factory):
    """The drawn photos at the shipped model's size: their colour bins are not its training photos'."""
    output = tmp_path_factory.mktemp("records_shipped_size")
    size = model_file.load(SHIPPED)[0].input_shape[1]
    run_preprocess(output, f"--input=garden={made_photos / 'garden'}", f"--input=own={made_photos / 'own'}",
                   f"--size={size}", "--num_shards=4")
    return output


def _ab_error(net, records) -> float:
    """Mean absolute ab error (Lab units) of automatic colourization on the validation photos."""
    errors = []
    for l8, ab8 in dataset.make_dataset(dataset.Records.open(str(records), "val"), 8, training=False):
        predicted = net(hints.network_input(color_tf.l8_to_input(l8)), training=False)
        errors.append(np.abs(predicted - color_tf.ab8_to_target(ab8)).mean(axis=(1, 2, 3)) * color_tf.AB_SCALE)
    return float(np.mean(np.concatenate(errors)))


def test_fine_tuning_the_shipped_model_on_drawn_photos_improves_their_colours(shipped_size_records, tmp_path):
    shipped = model_file.load(SHIPPED)[0]
    assert not np.array_equal(transfer.model_bins(shipped),
                              colour_classes.ColourBins.from_histogram(
                                  dataset.Records.open(str(shipped_size_records), "train").ab_histogram()).indices)
    done = run_module("trainer.task", f"--data_dir={shipped_size_records}", f"--model_dir={tmp_path}",
                      f"--init_model={SHIPPED}", "--epochs=2", "--batch_size=8", "--log_images_every=0",
                      "--learning_rate=0.001", "--seed=2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "its colour head is mapped onto the records' bins" in done.stdout
    tuned = model_file.load(str(tmp_path / "model.keras"))[0]
    before, after = _ab_error(shipped, shipped_size_records), _ab_error(tuned, shipped_size_records)
    print(json.dumps({"ab_error_before": before, "ab_error_after": after}))
    assert after < 0.9 * before
