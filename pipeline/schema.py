"""The TFRecord layout shared by the Beam job (writer) and tf.data (reader).

One record is one photo as a serialized `tf.train.Example`:

| feature  | type  | content                                                  |
| -------- | ----- | -------------------------------------------------------- |
| l        | bytes | L8 plane, uint8, height*width bytes, row-major           |
| ab       | bytes | interleaved a8, b8 planes, uint8, height*width*2 bytes   |
| height   | int64 | rows                                                     |
| width    | int64 | columns                                                  |
| fold     | int64 | cross-validation fold, from the content hash             |
| sha256   | bytes | hex SHA-256 of the source file's bytes                   |
| source   | bytes | name of the --input the photo came from                  |
| label    | bytes | the photo's parent folder name                           |
| path     | bytes | the source file                                          |

Colour convention: `pipeline.color`. Files: `<split>-*.tfrecord` (uncompressed,
the default) or `<split>-*.tfrecord.gz` (GZIP), listed per split in
`manifest.json` (`pipeline.manifest`) with the compression tf.data must read them with.
Writer and reader name the features by the constants below.

The writer encodes the Example wire format by hand so that Beam workers need
not import TensorFlow (3.3 s and 320 MB more per worker, measured); a test
checks that TensorFlow parses it as it parses its own `tf.train.Example`.
"""

L8, AB8, SHA256, SOURCE, LABEL, PATH = "l", "ab", "sha256", "source", "label", "path"
HEIGHT, WIDTH, FOLD = "height", "width", "fold"
BYTES_FEATURES = (L8, AB8, SHA256, SOURCE, LABEL, PATH)
INT_FEATURES = (HEIGHT, WIDTH, FOLD)
# --compression choice -> (tf.data compression_type, file suffix)
COMPRESSIONS = {"gzip": ("GZIP", ".tfrecord.gz"), "none": ("", ".tfrecord")}
MANIFEST = "manifest.json"


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # two's complement for negative int64, as protobuf does
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature(value: bytes | int) -> bytes:
    if isinstance(value, bytes):
        return _field(1, _field(1, value))  # Feature.bytes_list.value
    return _field(3, _field(1, _varint(value)))  # Feature.int64_list.value (packed)


def encode_example(features: dict[str, bytes | int]) -> bytes:
    """Serialize {name: bytes or int} as a `tf.train.Example`."""
    entries = b"".join(
        _field(1, _field(1, name.encode()) + _field(2, _feature(value)))
        for name, value in features.items()
    )
    return _field(1, entries)
