"""The tf.data reader on records written by the real Beam job."""

import hashlib

import numpy as np
import pytest
import tensorflow as tf

from pipeline import color_tf, dataset, schema

from tests.conftest import TINY_SIZE, run_preprocess

SIZE = TINY_SIZE
SHUFFLE = 16  # examples in the shuffle buffer: fewer than the split, so the order depends on it
TUNINGS = {"default": dataset.Tuning(), "batch_parse": dataset.Tuning(batch_parse=True),
           "sequential_reads": dataset.Tuning(parallel_reads=False),
           "unbuffered_reads": dataset.Tuning(read_buffer_bytes=0)}


@pytest.fixture
def records_dir(tiny_records):
    return tiny_records


def _fingerprints(data) -> list[str]:
    return [hashlib.sha1(lightness.tobytes()).hexdigest()
            for batch in data.as_numpy_iterator() for lightness in batch[0]]


def _reference_parse(record: bytes) -> tuple[np.ndarray, np.ndarray, bytes]:
    """One record as protobuf reads it: model-scale L and ab, by the README's convention, and the label."""
    feature = tf.train.Example.FromString(record).features.feature
    l8 = np.frombuffer(feature[schema.L8].bytes_list.value[0], np.uint8).reshape(SIZE, SIZE, 1)
    ab8 = np.frombuffer(feature[schema.AB8].bytes_list.value[0], np.uint8).reshape(SIZE, SIZE, 2)
    lightness = l8.astype(np.float32) / np.float32(255.0)
    ab = (ab8.astype(np.float32) - np.float32(128.0)) / np.float32(128.0)
    return lightness, ab, feature[schema.LABEL].bytes_list.value[0]


def _reference_batches(records, batch_size: int, training: bool, seed: int) -> list[list[tuple]]:
    """The order the reader documents, built plainly: files shuffled by the seed (training), read
    `READ_CYCLE` at a time in turn, records shuffled by the seed (training); the remainder dropped (training)."""
    files = tf.data.Dataset.from_tensor_slices(records.files)
    if training:
        files = files.shuffle(len(records.files), seed=seed)
    serialized = files.interleave(lambda path: tf.data.TFRecordDataset(path, records.compression),
                                  cycle_length=min(len(records.files), dataset.READ_CYCLE))
    if training:
        serialized = serialized.shuffle(SHUFFLE, seed=seed)
    examples = [_reference_parse(record) for record in serialized.as_numpy_iterator()]
    end = len(examples) // batch_size * batch_size if training else len(examples)
    return [examples[start:start + batch_size] for start in range(0, end, batch_size)]


@pytest.mark.parametrize("tuning", TUNINGS)
@pytest.mark.parametrize("training", [True, False], ids=["training", "evaluation"])
def test_batches_equal_a_reference_parse_for_the_same_seed(records_dir, tuning, training):
    """Every tuning reads the same batches: after scaling with color_tf, the reference's values, in its order."""
    records = dataset.Records.open(str(records_dir), "train")
    batches = list(dataset.make_dataset(records, 8, training=training, seed=3, shuffle_buffer=SHUFFLE,
                                        with_labels=True, tuning=TUNINGS[tuning]).as_numpy_iterator())
    reference = _reference_batches(records, 8, training, seed=3)
    whole, partial = divmod(records.num_examples(), 8)
    assert len(batches) == len(reference) == whole + (0 if training or not partial else 1)
    for (l8, ab8, labels), expected in zip(batches, reference):
        np.testing.assert_array_equal(color_tf.l8_to_input(l8).numpy(), np.stack([e[0] for e in expected]))
        np.testing.assert_array_equal(color_tf.ab8_to_target(ab8).numpy(), np.stack([e[1] for e in expected]))
        assert list(labels) == [e[2] for e in expected]


def test_gzip_records_read_as_the_same_examples(records_dir, tmp_path):
    """The Beam job run again as it was, writing GZIP: the same examples (the job does not fix their order)."""
    argv = dataset.load_manifest(str(records_dir)).args["argv"]
    run_preprocess(tmp_path, *[flag for flag in argv if not flag.startswith(("--output", "--runner", "--direct"))],
                   "--compression=gzip")
    examples = {}
    for directory in (records_dir, tmp_path):
        records = dataset.Records.open(str(directory), "train")
        examples[records.compression] = sorted(
            hashlib.sha1(l8.tobytes() + ab8.tobytes()).hexdigest()
            for batch in dataset.make_dataset(records, 8, training=False).as_numpy_iterator()
            for l8, ab8 in zip(*batch))
    assert sorted(examples) == ["", "GZIP"]
    assert examples[""] == examples["GZIP"] and len(examples[""]) == records.num_examples()


def test_batches_are_uint8_of_static_shape_as_stored(records_dir):
    """uint8 planes, a quarter of float32's bytes, with the batch size fixed when training."""
    records = dataset.Records.open(str(records_dir), "train")
    data = dataset.make_dataset(records, 8, training=True, seed=1)
    lightness_spec, ab_spec = data.element_spec
    assert lightness_spec.shape == (8, SIZE, SIZE, 1) and ab_spec.shape == (8, SIZE, SIZE, 2)
    assert lightness_spec.dtype == ab_spec.dtype == tf.uint8
    lightness = np.concatenate([batch[0] for batch in data.as_numpy_iterator()])
    assert len(lightness) == records.num_examples() // 8 * 8 and lightness.std() > 20


def test_the_order_is_the_seeds(records_dir):
    records = dataset.Records.open(str(records_dir), "train")
    first = _fingerprints(dataset.make_dataset(records, 8, training=True, seed=5))
    assert _fingerprints(dataset.make_dataset(records, 8, training=True, seed=5)) == first
    assert _fingerprints(dataset.make_dataset(records, 8, training=True, seed=6)) != first


def test_evaluation_reads_every_example_once_in_a_fixed_order(records_dir):
    records = dataset.Records.open(str(records_dir), "train")
    first = _fingerprints(dataset.make_dataset(records, 8, training=False))
    assert len(first) == records.num_examples() == len(set(first))
    assert _fingerprints(dataset.make_dataset(records, 5, training=False)) == first
    assert _fingerprints(dataset.make_dataset(records, 8, training=False, seed=9)) == first


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


def test_augmentation_keeps_shapes_and_dtypes_and_follows_the_seed(records_dir):
    records = dataset.Records.open(str(records_dir), "train")

    def batches(seed, augmentation=True):
        return list(dataset.make_dataset(records, 8, training=True, seed=seed,
                                         augmentation=augmentation).as_numpy_iterator())

    plain, augmented = batches(2, augmentation=False), batches(2)
    assert [(a.shape, a.dtype, b.shape, b.dtype) for a, b in augmented] == [
        ((8, SIZE, SIZE, 1), np.uint8, (8, SIZE, SIZE, 2), np.uint8)] * len(plain)
    assert all(np.array_equal(x, y) for a, b in zip(augmented, batches(2)) for x, y in zip(a, b))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(augmented, plain))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(augmented, batches(3)))


def test_crops_are_windows_of_the_photos_at_their_scale_and_follow_the_seed(records_dir):
    records = dataset.Records.open(str(records_dir), "train")

    def batches(seed, crop_size):
        return list(dataset.make_dataset(records, 8, training=True, seed=seed,
                                         crop_size=crop_size).as_numpy_iterator())

    whole, cropped = batches(2, 0), batches(2, 16)
    assert [(l8.shape, ab8.shape) for l8, ab8 in cropped] == [((8, 16, 16, 1), (8, 16, 16, 2))] * len(whole)
    for (l8, ab8), (window_l8, window_ab8) in zip(whole, cropped):
        for photo, photo_ab, window, window_ab in zip(l8, ab8, window_l8, window_ab8):
            found = [(y, x) for y in range(SIZE - 15) for x in range(SIZE - 15)
                     if np.array_equal(photo[y:y + 16, x:x + 16], window)]
            assert any(np.array_equal(photo_ab[y:y + 16, x:x + 16], window_ab) for y, x in found)
    assert all(np.array_equal(x, y) for a, b in zip(cropped, batches(2, 16)) for x, y in zip(a, b))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(cropped, batches(3, 16)))
    with pytest.raises(dataset.DataError, match="larger than"):
        batches(2, SIZE + 1)


@pytest.mark.parametrize("flip", [[True, False, False, True, True, False], [False] * 6, [True] * 6])
def test_augmentation_mirrors_exactly_the_chosen_photos(flip):
    planes = np.random.default_rng(0).integers(0, 256, (6, 5, 7, 2), np.uint8)
    mirrored = dataset._flip_some(tf.constant(planes), tf.constant(flip)).numpy()
    np.testing.assert_array_equal(mirrored, np.where(np.array(flip)[:, None, None, None], planes[:, :, ::-1], planes))


def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(dataset.DataError, match="no manifest.json in"):
        dataset.Records.open(str(tmp_path), "train")


def test_a_missing_folder_is_named_as_such(tmp_path):
    with pytest.raises(dataset.DataError, match="does not exist"):
        dataset.Records.open(str(tmp_path / "nowhere"), "train")


def test_files_that_do_not_divide_among_the_pipelines_are_a_warning(records_dir, caplog):
    """Whole files per pipeline: when their count does not divide, some pipelines' photos come round less often."""
    records = dataset.Records.open(str(records_dir), "train")
    count = len(records.files)
    for pipelines, warned in ((count - 1, True), (count, False)):
        caplog.clear()
        dataset.make_dataset(records, 4, training=True, seed=1, input_context=tf.distribute.InputContext(pipelines))
        assert ("--num_shards" in caplog.text) == warned, (pipelines, caplog.text)


def test_unknown_split_is_named(records_dir):
    with pytest.raises(dataset.DataError, match="'training'"):
        dataset.Records.open(str(records_dir), "training")


def test_empty_split_is_a_clear_error(made_photos, tmp_path):
    run_preprocess(tmp_path, f"--input={made_photos / 'own' / 'poppy' / 'poppy_00*'}",
                   f"--size={SIZE}", "--split=100/0/0")
    with pytest.raises(dataset.DataError, match="split 'val' .* has no examples"):
        dataset.make_dataset(dataset.Records.open(str(tmp_path), "val"), 4, training=False)


def test_views_are_whole_photos_at_the_view_size_and_labels_pass_through(records_dir):
    records = dataset.Records.open(str(records_dir), "train")

    def batches(**kwargs):
        return list(dataset.make_dataset(records, 8, training=True, seed=4, augmentation=True, with_labels=True,
                                         **kwargs).as_numpy_iterator())

    whole, views = batches(), batches(view_size=16)
    assert [(l8.shape, ab8.shape) for l8, ab8, _ in views] == [((8, 16, 16, 1), (8, 16, 16, 2))] * len(whole)
    assert all(np.array_equal(a[2], b[2]) for a, b in zip(whole, views))  # the same photos, labels kept
    # Each view holds all of its scaled photo: its mean lightness is the photo's, not a window's.
    for (l8, _, _), (view_l8, _, _) in zip(whole, views):
        np.testing.assert_allclose(view_l8.mean(axis=(1, 2, 3)), l8.mean(axis=(1, 2, 3)), atol=3)
    windows = batches(view_size=16, crop_size=8)
    assert windows[0][0].shape == (8, 8, 8, 1)
    with pytest.raises(dataset.DataError, match="views are made by the augmentation"):
        dataset.make_dataset(records, 8, training=True, seed=4, view_size=16)
