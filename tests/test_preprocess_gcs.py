"""The real Beam job on Cloud Storage: photos on gs:// in, records, rejects and manifest on gs:// out.

Cloud Storage is a local emulator (tests/gcs_emulator.py). The job runs as a
person launching it on Dataflow does, with `.venv-dataflow`'s Python (Beam's
gcp extra, no TensorFlow); this test environment has TensorFlow and no gcp
extra, and reads what the job wrote with TensorFlow.
"""

import hashlib
import json
import os
import subprocess
import sys

import cv2
import pytest

from beam_jobs.storage import REACH_SECONDS

from tests.conftest import REPO, draw_photo, read_examples
from tests.gcs_emulator import Emulator, free_port, waiting_reader

DATAFLOW_PYTHON = REPO / ".venv-dataflow" / "bin" / "python"
PHOTOS, RECORDS = "photos", "records"
JOB_FLAGS = ["--size=32", "--num_shards=6", f"--temp_location=gs://{RECORDS}/tmp"]
ONE_PROCESS = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]


@pytest.fixture(scope="module")
def dataflow_python():
    """.venv-dataflow's Python, made by `bash scripts/setup.sh dataflow` (scripts/test.sh makes it).

    Missing, its tests are skipped on a developer's machine but fail under
    CI=true: a CI run that skipped them would pass without testing them.
    """
    if not DATAFLOW_PYTHON.exists():
        missing = f"{DATAFLOW_PYTHON} not found: `bash scripts/setup.sh dataflow` makes it"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{missing}; CI=true requires it", pytrace=False)
        pytest.skip(missing)
    return DATAFLOW_PYTHON


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
    """The emulator, with 42 files in gs://photos/garden/<class>/: 40 drawn photos, a copy of one, a text file."""
    with Emulator(tmp_path_factory.mktemp("gcs")) as emulator:
        for bucket in (PHOTOS, RECORDS):
            emulator.create_bucket(bucket)
        for label in ("marigold", "poppy"):
            for index in range(20):
                photo = draw_photo(label, index, 60 + 3 * index, 100 - index)
                emulator.upload(PHOTOS, f"garden/{label}/{label}_{index:02d}.jpg", cv2.imencode(".jpg", photo)[1].tobytes())
        emulator.upload(PHOTOS, "garden/poppy/copy_of_a_marigold.jpg",
                        emulator.download(PHOTOS, "garden/marigold/marigold_00.jpg"))
        emulator.upload(PHOTOS, "garden/poppy/notes.jpg", b"not a photo\n")
        yield emulator


def _job(python, gcs, *flags, **popen):
    """The Beam job's command in the Dataflow environment, as a process; `popen` False runs it to its end."""
    command = [str(python), "-m", "beam_jobs.preprocess", *flags]
    env = {**os.environ, **gcs.env()}
    if popen:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def first_run(dataflow_python, gcs):
    """The job from gs:// to gs://records/first, on two local worker processes."""
    done = _job(dataflow_python, gcs, f"--input=gs://{PHOTOS}/garden", f"--output=gs://{RECORDS}/first",
                *JOB_FLAGS, "--direct_num_workers=2")
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _manifest(gcs, folder: str) -> dict:
    return json.loads(gcs.download(RECORDS, f"{folder}/manifest.json"))


def _listed_by(manifest: dict) -> set[str]:
    """manifest.json and every file it lists: a finished run's folder holds these and nothing else."""
    shards = {name for entry in manifest["splits"].values() for name in entry["shards"]}
    return {"manifest.json", *shards, *manifest["rejected_files"]}


def _names(gcs, folder: str) -> set[str]:
    return {name.removeprefix(f"{folder}/") for name in gcs.names(RECORDS, f"{folder}/")}


def test_photos_on_gs_become_records_rejects_and_a_manifest_on_gs(first_run, gcs, tmp_path):
    assert first_run.stdout.splitlines()[3] == "42 photos: 40 written, 1 rejected, 1 duplicates"
    manifest = _manifest(gcs, "first")
    assert manifest["counts"] == {"inputs": 42, "written": 40, "rejected": 1, "duplicates": 1}
    assert _names(gcs, "first") == _listed_by(manifest)  # no staging or temporary file left behind
    for name in _listed_by(manifest):
        (tmp_path / name).write_bytes(gcs.download(RECORDS, f"first/{name}"))
    examples = [e for split in ("train", "val", "test") for e in read_examples(tmp_path, split)]
    assert len(examples) == 40
    for example in examples:
        path = example["path"].decode()
        assert path.startswith(f"gs://{PHOTOS}/garden/") and example["label"].decode() in path
        photo = gcs.download(PHOTOS, path.removeprefix(f"gs://{PHOTOS}/"))
        assert example["sha256"].decode() == hashlib.sha256(photo).hexdigest()
    rejects = "".join((tmp_path / name).read_text() for name in manifest["rejected_files"])
    assert '"reason": "not_an_image"' in rejects and '"reason": "duplicate"' in rejects


def test_a_rerun_without_overwrite_is_refused_and_changes_nothing(first_run, dataflow_python, gcs):
    before = _names(gcs, "first")
    done = _job(dataflow_python, gcs, f"--input=gs://{PHOTOS}/garden", f"--output=gs://{RECORDS}/first",
                *JOB_FLAGS, *ONE_PROCESS)
    assert done.returncode == 2
    assert done.stderr == (f"error: --output gs://{RECORDS}/first is not empty; pass --overwrite to replace "
                           "what it holds\n")
    assert _names(gcs, "first") == before


def test_overwrite_leaves_nothing_of_the_old_run_and_no_manifest_until_the_new_one_is_done(
        first_run, dataflow_python, gcs, tmp_path):
    """The old run (the first run's files, a stale object, an orphaned staged file) is gone before the job
    reads its photos, and the folder has no manifest.json until the new run's.

    One input is a named pipe: the job waits on it, mid-run, until the test has looked at the folder.
    """
    old = {name: gcs.download(RECORDS, f"first/{name}") for name in _names(gcs, "first")}
    old.update({"stale-train-00000-of-00001.tfrecord": b"stale", ".staging/train-00000-of-00004-orphan": b"old"})
    for name, data in old.items():
        gcs.upload(RECORDS, f"again/{name}", data)
    late = tmp_path / "late" / "poppy"
    late.mkdir(parents=True)
    os.mkfifo(late / "late.jpg")
    job = _job(dataflow_python, gcs, f"--input=gs://{PHOTOS}/garden", f"--input={late.parent}",
               f"--output=gs://{RECORDS}/again", "--overwrite", *JOB_FLAGS, *ONE_PROCESS, popen=True)
    writer = waiting_reader(late / "late.jpg", job)
    mid_run = _names(gcs, "again")
    os.close(writer)  # the job reads an empty file
    stdout, stderr = job.communicate(timeout=600)
    assert job.returncode == 0, stderr[-3000:]
    assert "manifest.json" not in mid_run and not mid_run & old.keys(), mid_run
    manifest = _manifest(gcs, "again")
    assert manifest["counts"] == {"inputs": 43, "written": 40, "rejected": 2, "duplicates": 1}
    assert manifest["rejected"] == {"empty_file": 1, "not_an_image": 1}
    assert _names(gcs, "again") == _listed_by(manifest)
    assert stdout.splitlines()[3] == "43 photos: 40 written, 2 rejected, 1 duplicates"


@pytest.mark.parametrize("where,answer", [
    ("closed port", f"no answer from Cloud Storage within {REACH_SECONDS} s"),
    ("no such bucket", "NotFound: 404"),
])
def test_a_gs_path_that_cannot_be_reached_is_named_in_one_line(dataflow_python, gcs, tmp_path, where, answer):
    """No network, no credentials or a wrong address: Beam's client alone would retry for 120 s, then trace back."""
    env = {**os.environ, **gcs.env()}
    photos = f"gs://{PHOTOS}/garden"
    if where == "closed port":
        env["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{free_port()}"
    else:
        photos = "gs://no-such-bucket/garden"
    done = subprocess.run([str(dataflow_python), "-m", "beam_jobs.preprocess", f"--input={photos}",
                           f"--output={tmp_path / 'out'}"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {photos}/**: {answer}"), done.stderr[-3000:]
    assert "check the network, the credentials" in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("environment", ["dataflow", "trainer"])
def test_the_jobs_modules_import_no_tensorflow(dataflow_python, environment):
    """Dataflow workers (and their image, Dockerfile.worker) have no TensorFlow; the trainer's environment
    has it, so there an import of it would show."""
    python = dataflow_python if environment == "dataflow" else sys.executable
    check = ("import sys, pkgutil, beam_jobs, importlib\n"
             "for module in pkgutil.iter_modules(beam_jobs.__path__): importlib.import_module(f'beam_jobs.{module.name}')\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'trainer')))")
    done = subprocess.run([str(python), "-c", check], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"
