"""Installs the project and its exact pins: locally, on Dataflow workers (--setup_file) and in images.

constraints.txt is the one list of versions: every dependency named here is
pinned to the version it gives, and `pip install -c constraints.txt` pins the
rest of the tree the same way.
"""

import pathlib

import setuptools

HERE = pathlib.Path(__file__).parent


def _pins() -> dict[str, str]:
    pins = {}
    for line in (HERE / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


PINS = _pins()


def pinned(requirement: str) -> str:
    """'apache-beam[tfrecord]' -> 'apache-beam[tfrecord]==2.77.0', from constraints.txt."""
    name = requirement.split("[")[0].lower()
    return f"{requirement}=={PINS[name]}"


setuptools.setup(
    name="flower-colorizer",
    version="0.1.0",
    description="Colourize grayscale photos: Beam preprocessing, tf.data, a Keras colourizer.",
    python_requires=">=3.11,<3.12",
    packages=setuptools.find_packages(include=["pipeline", "pipeline.*", "beam_jobs", "beam_jobs.*",
                                               "trainer", "trainer.*"]),
    include_package_data=True,
    install_requires=[pinned(r) for r in (
        "tensorflow", "tensorflow-io", "keras", "numpy", "protobuf", "opencv-python-headless",
        "apache-beam", "google-crc32c", "absl-py")],
    extras_require={
        "gcp": [pinned("apache-beam[gcp]")],
        "test": [pinned(r) for r in ("pytest", "scikit-image", "pillow")],
    },
)
