"""Converting a Keras network into a TensorFlow Lite file, with its variables made constants first.

TensorFlow's converter aborts the whole process on the shipped colour classifier,
given the Keras model (`TFLiteConverter.from_keras_model`) or any function that
reads its variables: "LLVM ERROR: Failed to infer result type(s)", "missing
attribute 'value'" at the annealing layer's depthwise ReadVariableOp. The
decoding's fixed weights (`colour_classes.decoding_head`: non-trainable layers
whose weights are set after building) and the mirror layers are variables its
own variable folding fails on. So the network is traced at its input size and
every variable of the trace becomes a constant (`convert_variables_to_constants_v2`)
before the converter sees it: a graph with no variables is what the converter,
and the phone, need anyway.

The conversion runs in a child process all the same: should a converter abort
on another network or another TensorFlow, only the child dies, and the command
says why in one line instead of vanishing with it.
"""

import multiprocessing
import os
import pathlib
import tempfile

import tensorflow as tf
from tensorflow.python.framework import convert_to_constants

from pipeline.errors import UsageError
from trainer.applying import lite
from trainer.network import hints, model_file

QUANTIZATIONS = ("none", "float16", "dynamic")


def frozen_function(net) -> tf.types.experimental.ConcreteFunction:
    """`net` as the file's signature (`trainer.applying.lite`), traced at its input size, variables as constants.

    The frozen trace returns a bare list; an outer function gives its output the signature's name.
    """
    size = net.input_shape[1]
    specs = [tf.TensorSpec((1, size, size, 1), tf.float32, name=lite.LIGHTNESS)]
    if hints.is_hint_aware(net):
        specs.append(tf.TensorSpec((1, size, size, hints.CHANNELS - 1), tf.float32, name=lite.HINTS))
    traced = tf.function(lambda *planes: net(tf.concat(planes, axis=-1), training=False))
    frozen = convert_to_constants.convert_variables_to_constants_v2(traced.get_concrete_function(*specs))

    def named(lightness, hints=None):
        return {lite.OUTPUT: frozen(*([lightness] if hints is None else [lightness, hints]))[0]}

    return tf.function(named).get_concrete_function(*specs)


def convert(net, quantize: str = "none") -> bytes:
    """`net` as TensorFlow Lite bytes: float32 weights (none), float16 weights, or dynamic-range int8 weights."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen_function(net)], tf.Module())
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def _export(model_path: str, quantize: str, output: str) -> None:
    """Load, convert, attach the preparation, write: the child's work."""
    net, prep = model_file.load(model_path)
    data = lite.with_preparation(convert(net, quantize), prep)
    with tf.io.gfile.GFile(output, "wb") as handle:
        handle.write(data)


def _logged(log_path: str, target, *args) -> None:
    """target(*args) with this process's stderr (the converter's own messages, an abort's last words) going to
    `log_path`; a Python error ends the process with its one-line summary as the log's last line."""
    os.dup2(os.open(log_path, os.O_WRONLY | os.O_APPEND), 2)
    try:
        target(*args)
    except Exception as error:  # noqa: BLE001  any failure is reported by the parent, in one line
        lines = str(error).strip().splitlines() or [""]
        os.write(2, f"\n{type(error).__name__}: {lines[-1]}\n".encode())
        os._exit(1)


def in_child(target, *args) -> None:
    """target(*args) in a fresh process; UsageError with the last line it wrote to stderr if it failed, aborted
    or was killed."""
    with tempfile.NamedTemporaryFile("w+", suffix=".log") as log:
        child = multiprocessing.get_context("spawn").Process(target=_logged, args=(log.name, target, *args))
        child.start()
        child.join()
        if child.exitcode == 0:
            return
        lines = [line.strip() for line in pathlib.Path(log.name).read_text(errors="replace").splitlines()
                 if line.strip()]
        how = f"was killed by signal {-child.exitcode}" if child.exitcode < 0 else "failed"
        raise UsageError(f"the TensorFlow Lite conversion {how}: {lines[-1] if lines else 'it said nothing'}")


def export(model_path: str, output: str, quantize: str = "none") -> None:
    """The .keras model at `model_path` as a TensorFlow Lite file at `output` (local or gs://)."""
    in_child(_export, model_path, quantize, output)
