"""A model file (.keras) and the photo preparation it carries inside it.

A .keras file is a zip archive; the `pipeline.preparation.Preparation` of the
records the network was trained on is one more entry in it, `preparation.json`,
which Keras ignores when loading. So a model colourizes photos prepared as its
training photos were, wherever it is copied. A model saved without one (by Keras
alone) is taken to be stretch-trained at its input size, the project's default.
"""

import json
import os
import tempfile
import zipfile

import keras
import tensorflow as tf

from pipeline.preparation import Preparation

ENTRY = "preparation.json"


def save(net: keras.Model, path: str, prep: Preparation) -> None:
    """Save `net` with `prep` inside, local or gs:// (written locally first, then copied whole)."""
    if prep.size != net.input_shape[1]:
        raise ValueError(f"the network takes {net.input_shape[1]} pixels, the preparation makes {prep.size}")
    with tempfile.TemporaryDirectory() as folder:
        local = os.path.join(folder, "model.keras")
        net.save(local)
        attach(local, prep)
        tf.io.gfile.copy(local, path, overwrite=True)


def attach(path: str, prep: Preparation) -> None:
    """Record `prep` in an existing local .keras file (replacing what it carried)."""
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist() if name != ENTRY}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        archive.writestr(ENTRY, json.dumps(prep.to_json(), indent=2))


def preparation(path: str, net: keras.Model) -> Preparation:
    """The preparation the model at `path` carries, or the default at its input size."""
    with tf.io.gfile.GFile(path, "rb") as handle, zipfile.ZipFile(handle) as archive:
        if ENTRY in archive.namelist():
            return Preparation.from_json(json.loads(archive.read(ENTRY)))
    return Preparation(size=net.input_shape[1])


def load(path: str) -> tuple[keras.Model, Preparation]:
    """The network at `path` and the preparation its photos need."""
    net = keras.models.load_model(path, compile=False)
    return net, preparation(path, net)
