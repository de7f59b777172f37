"""How photos are named: the wildcards of a glob, and the class label a photo's folder gives it.

One rule each, shared by the Beam job (`beam_jobs/`) and the commands that apply a model
(`trainer/applying/photos.py`). No TensorFlow here: Beam workers import this module.
"""

import posixpath
import re

_WILDCARD = re.compile(r"[*?\[]")


def has_wildcard(location: str) -> bool:
    """True for a glob ('photos/*.jpg'), False for a file or folder name."""
    return _WILDCARD.search(location) is not None


def glob_root(pattern: str) -> str:
    """'photos/*/x*.jpg' -> 'photos': the folder before the first wildcard."""
    return pattern[: _WILDCARD.search(pattern).start()].rsplit("/", 1)[0]


def label_of(path: str) -> str:
    """A photo's class label: its parent folder's name ('flowers/daisy/1.jpg' -> 'daisy')."""
    return posixpath.basename(posixpath.dirname(path))
