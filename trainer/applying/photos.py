"""Finding photos (files, folders, globs; local or gs://) and reading them, with a reason for every failure."""

import dataclasses
import posixpath

import tensorflow as tf

from pipeline import images, paths
from pipeline.preparation import Preparation
from pipeline.errors import UsageError

@dataclasses.dataclass(frozen=True)
class Photo:
    path: str
    relative: str  # where it sits below the folder (or glob root) it was found in

    @property
    def label(self) -> str:
        """The class label, as the Beam job records it."""
        return paths.label_of(self.path)


@dataclasses.dataclass(frozen=True)
class Failure:
    path: str
    reason: str
    detail: str


def _below(root: str, path: str) -> str:
    return path[len(root):].lstrip("/") if path.startswith(root) else posixpath.basename(path)


def find(arguments: list[str]) -> list[Photo]:
    """Every file named by the arguments: files, folders (recursively) and globs."""
    found = []
    for argument in arguments:
        if tf.io.gfile.isdir(argument):
            root = argument.rstrip("/")
            for folder, _, names in tf.io.gfile.walk(root):
                found += [Photo(f"{folder}/{name}", _below(root, f"{folder}/{name}")) for name in sorted(names)]
        elif paths.has_wildcard(argument):
            root = paths.glob_root(argument)
            found += [Photo(path, _below(root, path)) for path in sorted(tf.io.gfile.glob(argument))
                      if not tf.io.gfile.isdir(path)]
        elif tf.io.gfile.exists(argument):
            found.append(Photo(argument, posixpath.basename(argument)))
        else:
            raise UsageError(f"{argument}: no such file or folder")
    if not found:
        raise UsageError(f"no photos found in {' '.join(arguments)}")
    return found


def read_rgb(photo: Photo, prep: Preparation, max_pixels: int | None = None):
    """The photo as uint8 RGB at its own size, or the Failure saying why not.

    A symbolic link that points nowhere is `unreadable`, like any file that cannot be opened; the
    preparation refuses photos too small, or too large (from the header, before decoding; max_pixels,
    when given, replaces its limit).
    """
    try:
        with tf.io.gfile.GFile(photo.path, "rb") as handle:
            data = handle.read()
    except (OSError, tf.errors.OpError) as error:
        return Failure(photo.path, "unreadable", str(error).splitlines()[0])
    try:
        return prep.decode(data, max_pixels)
    except images.ImageError as error:
        return Failure(photo.path, error.reason, error.detail)
