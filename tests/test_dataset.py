"""The tf.data reader on records written by the real Beam job."""

import hashlib

import numpy as np
import pytest
import tensorflow as tf

from pipeline import dataset

from tests.conftest import TINY_SIZE, run_preprocess

SIZE = TINY_SIZE


@pytest.fixture
def records_dir(tiny_records):
    return tiny_records


def _fingerprints(data) -> list[str]:
    return [hashlib.sha1(lightness.tobytes()).hexdigest()
            for batch, _ in data.as_numpy_iterator() for lightness in batch]


def test_batches_have_static_shapes_and_model_ranges(records_dir):
    records = dataset.Records.open(str(records_dir), "train")
    data = dataset.make_dataset(records, 8, training=True, seed=1)
    lightness_spec, ab_spec = data.element_spec
    assert lightness_spec.shape == (8, SIZE, SIZE, 1) and ab_spec.shape == (8, SIZE, SIZE, 2)
    batches = list(data.as_numpy_iterator())
    assert len(batches) == records.num_examples() // 8
    lightness = np.concatenate([b[0] for b in batches])
    ab = np.concatenate([b[1] for b in batches])
    assert lightness.dtype == ab.dtype == np.float32
    assert 0.0 <= lightness.min() and lightness.max() <= 1.0 and lightness.std() > 0.1
    assert -1.0 <= ab.min() and ab.max() < 1.0 and np.abs(ab).max() > 0.1


def test_evaluation_reads_every_example_once_in_a_fixed_order(records_dir):
    records = dataset.Records.open(str(records_dir), "train")
    first = _fingerprints(dataset.make_dataset(records, 8, training=False))
    assert len(first) == records.num_examples() == len(set(first))
    assert _fingerprints(dataset.make_dataset(records, 5, training=False)) == first


@pytest.mark.parametrize("pipelines", [2, 50])
def test_each_input_pipeline_reads_its_own_share(records_dir, pipelines):
    """By file when there are enough files, by record otherwise; together they read everything once."""
    records = dataset.Records.open(str(records_dir), "train")
    shares = [_fingerprints(dataset.make_dataset(
        records, 4, training=False, input_context=tf.distribute.InputContext(pipelines, index, 4)))
        for index in range(pipelines)]
    everything = [f for share in shares for f in share]
    assert sorted(everything) == sorted(_fingerprints(dataset.make_dataset(records, 4, training=False)))
    assert sum(1 for share in shares if share) >= 2


def test_folds_select_their_examples(records_dir):
    records = dataset.Records.open(str(records_dir), "train")
    chosen = _fingerprints(dataset.make_dataset(records, 4, training=False, folds={0, 1}))
    rest = _fingerprints(dataset.make_dataset(records, 4, training=False, folds={2, 3, 4}))
    assert len(chosen) == records.num_examples(folds={0, 1}) > 0
    assert len(rest) == records.num_examples(folds={2, 3, 4}) > 0
    assert not set(chosen) & set(rest)


def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(dataset.DataError, match="no manifest.json in"):
        dataset.Records.open(str(tmp_path), "train")


def test_unknown_split_is_named(records_dir):
    with pytest.raises(dataset.DataError, match="'training'"):
        dataset.Records.open(str(records_dir), "training")


def test_empty_split_is_a_clear_error(shared_data, tmp_path):
    run_preprocess(tmp_path, f"--input={shared_data / 'extra_plants' / 'pansy' / 'image_128*.jpg'}",
                   f"--size={SIZE}", "--split=100/0/0")
    with pytest.raises(dataset.DataError, match="split 'val' .* has no examples"):
        dataset.make_dataset(dataset.Records.open(str(tmp_path), "val"), 4, training=False)
