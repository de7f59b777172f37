"""The hand-written Example encoder must give exactly what TensorFlow's own gives."""

import tensorflow as tf

from pipeline import schema


def test_encoded_example_equals_tensorflows():
    features = {"l": b"\x00\x01\xff" * 5, "label": "tulip ünicode".encode(), "empty": b"",
                "height": 200, "fold": 0, "big": 2**40, "negative": -3}
    expected = tf.train.Example(features=tf.train.Features(feature={
        name: tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        if isinstance(value, bytes) else tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        for name, value in features.items()}))
    parsed = tf.train.Example.FromString(schema.encode_example(features))
    assert parsed == expected
