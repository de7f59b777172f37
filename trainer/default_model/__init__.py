"""The colourizer shipped with the project, so that `trainer.colorize` works on a fresh install.

How it was made, and how well it does, is in MODEL_CARD.md beside it.
"""

import pathlib

PATH = str(pathlib.Path(__file__).with_name("model.keras"))
