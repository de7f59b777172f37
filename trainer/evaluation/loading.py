"""The network a report scores, decoded as asked: refused here, before any photo is read, if it cannot be."""

import dataclasses

import keras

from pipeline.errors import UsageError
from pipeline.preparation import Preparation
from trainer.network import colour_classes, hints, model_file, models


@dataclasses.dataclass(frozen=True)
class Decoding:
    """How the network runs: points of the true colour revealed per photo (hint-aware networks), and a
    colour-classification network's temperature and vividness (None: the model's own)."""

    num_hints: int = 0
    temperature: float | None = None
    vividness: float | None = None


def load(model_path: str | None, decoding: Decoding = Decoding()) -> tuple[str, keras.Model, Preparation]:
    """The model's resolved path, its network decoding as `decoding` says, and its preparation."""
    try:
        path = models.resolve(model_path)
    except FileNotFoundError as error:
        raise UsageError(f"--model: {error}") from None
    net, prep = model_file.load(path)
    if decoding.num_hints and not hints.is_hint_aware(net):
        raise UsageError(f"--hints {decoding.num_hints}: {path} takes no colour hints")
    colour_classes.override_decoding(net, decoding.temperature, decoding.vividness, path)
    return path, net, prep
