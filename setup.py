"""Installs the project with exact pins: locally, on Dataflow workers (--setup_file), in the training image.

Two environments, one lock file each:
- constraints.txt: the Beam job run locally, the trainer and the tests
  (TensorFlow 2.16 and tensorflow-io 0.37 need protobuf < 5 and numpy < 2);
- constraints-dataflow.txt: launching the Beam job on Dataflow, and its workers:
  apache-beam[gcp], whose Google Cloud libraries need protobuf >= 5, and no TensorFlow.
The packages both environments share have the same versions in both files (a test checks).

The base install is what the Beam job needs; the trainer adds TensorFlow (extra "trainer").
"""

import pathlib

import setuptools

HERE = pathlib.Path(__file__).parent


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (HERE / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            package, version = line.split("==")
            pins[package.lower()] = version
    return pins


PINS = _pins("constraints.txt")


def pinned(*requirements: str) -> list[str]:
    """'apache-beam[gcp]' -> 'apache-beam[gcp]==2.77.0', with the version from constraints.txt."""
    return [f"{r}=={PINS[r.split('[')[0].lower()]}" for r in requirements]


setuptools.setup(
    name="flower-colorizer",
    version="0.1.0",
    description="Colourize grayscale photos: Beam preprocessing, tf.data, a Keras colourizer.",
    python_requires=">=3.11,<3.12",
    packages=setuptools.find_packages(include=["pipeline", "beam_jobs", "trainer", "trainer.*"]),
    package_data={"trainer.default_model": ["model.keras", "MODEL_CARD.md"], "trainer.applying": ["app_page/*"]},
    install_requires=pinned("aiohttp", "apache-beam", "google-crc32c", "numpy", "opencv-python-headless", "pillow"),
    extras_require={
        "trainer": pinned("tensorflow", "tensorflow-io", "keras", "protobuf", "absl-py"),
        "test": pinned("pytest", "scikit-image", "selenium", "gcp-storage-emulator"),
        "gcp": pinned("apache-beam[gcp]"),
    },
)
