"""The network as a TensorFlow Lite file: what it takes and returns, the preparation it carries, running it.

A phone or a small board runs the network alone; the photo's preparation, the
hint planes and the recombination with the photo's own lightness are the
app's, as `trainer.applying.inference` does them here. The file's one
signature, `SIGNATURE`, at the model's square size S (`Preparation.size`):

- `lightness` float32 (1, S, S, 1): L of the photo's view, in [0, 1] (L* / 100);
- `hints` float32 (1, S, S, 3), hint-aware models only: hint a and b (model
  scale, Lab a and b / 128) and the hint mask (1 where a hint was given), as
  `trainer.network.hints` paints them; all zeros for no hints;
- `ab` float32 (1, S, S, 2): the predicted a and b / 128, decoded inside the
  file (a colour classifier's annealed mean, its mirror averaging too).

How a photo becomes the S x S view (`pipeline.preparation`) is the file's
metadata entry `METADATA_NAME`, the JSON a .keras file carries as
preparation.json, so the file alone is enough to use it.
"""

import json

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from pipeline.preparation import Preparation

SIGNATURE = "serving_default"
LIGHTNESS = "lightness"
HINTS = "hints"
OUTPUT = "ab"
METADATA_NAME = "preparation.json"
SUFFIX = ".tflite"


def with_preparation(model: bytes, prep: Preparation) -> bytes:
    """A converted model's bytes with `prep` added as its METADATA_NAME metadata entry."""
    tree = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(prep.to_json()).encode(), np.uint8)
    tree.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(tree.buffers) - 1
    tree.metadata = [*(tree.metadata or []), entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(tree))


def preparation(model: bytes, name: str) -> Preparation:
    """The preparation a TensorFlow Lite file's bytes carry; ValueError if none (a file not exported here)."""
    root = schema.Model.GetRootAs(model, 0)
    for index in range(root.MetadataLength()):
        entry = root.Metadata(index)
        if entry.Name().decode() == METADATA_NAME:
            data = root.Buffers(entry.Buffer()).DataAsNumpy()
            return Preparation.from_json(json.loads(data.tobytes()))
    raise ValueError(f"{name} carries no {METADATA_NAME}: export it with python -m trainer.export")


class LiteNetwork:
    """A TensorFlow Lite file's network, run by the interpreter (XNNPACK on CPUs) one window at a time."""

    def __init__(self, path: str):
        with tf.io.gfile.GFile(path, "rb") as handle:
            model = handle.read()
        self.preparation = preparation(model, path)
        self._interpreter = tf.lite.Interpreter(model_content=model)
        self._run = self._interpreter.get_signature_runner(SIGNATURE)
        self.hint_aware = HINTS in self._run.get_input_details()

    def predict_on_batch(self, windows: np.ndarray) -> np.ndarray:
        """Windows (n, S, S, 1 or 4), the network's input -> ab (n, S, S, 2)."""
        outputs = []
        for window in windows.astype(np.float32):
            inputs = {LIGHTNESS: window[None, ..., :1]}
            if self.hint_aware:
                inputs[HINTS] = window[None, ..., 1:]
            outputs.append(self._run(**inputs)[OUTPUT][0])
        return np.stack(outputs)
