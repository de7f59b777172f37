"""What Dataflow workers, the training image and Cloud Build rely on: setup.py, Dockerfile, cloudbuild.yaml."""

import json
import os
import re
import shlex
import subprocess
import sys
import tarfile

import yaml
from apache_beam.options.pipeline_options import PipelineOptions

from beam_jobs import options as job_options

from tests.conftest import REPO


def _pins(name="constraints.txt"):
    return dict(line.lower().split("==") for line in (REPO / name).read_text().splitlines()
                if "==" in line and not line.startswith("#"))


def test_both_lock_files_agree_on_every_package_they_share_but_protobuf():
    """The Dataflow side needs protobuf >= 5 (Beam's Google Cloud libraries), TensorFlow 2.16 < 5."""
    local, dataflow = _pins(), _pins("constraints-dataflow.txt")
    differ = {name for name in local.keys() & dataflow.keys() if local[name] != dataflow[name]}
    assert differ == {"protobuf"}
    shared = local.keys() & dataflow.keys()
    assert {"apache-beam", "numpy", "opencv-python-headless", "google-crc32c", "pillow"} <= shared
    assert "tensorflow" not in dataflow


def test_source_package_carries_the_pins_and_the_default_model(tmp_path):
    done = subprocess.run([sys.executable, "setup.py", "-q", "sdist", f"--dist-dir={tmp_path}"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    (archive,) = tmp_path.glob("*.tar.gz")
    names = {name.split("/", 1)[1] for name in tarfile.open(archive).getnames() if "/" in name}
    assert {"constraints.txt", "setup.py", "beam_jobs/preprocess.py", "trainer/task.py",
            "pipeline/dataset.py"} <= names
    assert "trainer/default_model/model.keras" in names


def test_every_dependency_is_pinned_from_constraints(tmp_path):
    done = subprocess.run([sys.executable, "setup.py", "-q", "egg_info", f"--egg-base={tmp_path}"],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    (requires,) = tmp_path.glob("*.egg-info/requires.txt")
    pins = _pins()
    for line in requires.read_text().splitlines():
        if line and not line.startswith("["):
            name, version = re.split(r"(?:\[.*\])?==", line)
            assert pins[name.lower()] == version, line


def _steps():
    return yaml.safe_load((REPO / "cloudbuild.yaml").read_text())["steps"]


def _words(step) -> list[str]:
    text = " ".join(step.get("args", []))
    return shlex.split(text.replace("\\\n", " "), comments=True)


def test_cloudbuild_steps_call_files_and_modules_that_exist():
    seen = set()
    for step in _steps():
        words = _words(step)
        for word in (part for w in words for part in w.split("=", 1)):
            if re.fullmatch(r"(\./)?[\w/.-]+\.(sh|py)", word):
                assert (REPO / word).is_file(), f"{step['id']}: {word}"
                seen.add(word)
        for module in (words[i + 1] for i, w in enumerate(words) if w == "-m"):
            assert (REPO / (module.replace(".", "/") + ".py")).is_file(), f"{step['id']}: {module}"
            seen.add(module)
        if "build" in words and "docker" in step["name"]:
            assert (REPO / "Dockerfile").is_file()
            seen.add("Dockerfile")
    assert {"scripts/test.sh", "beam_jobs.preprocess", "./setup.py", "Dockerfile"} <= seen


def test_cloudbuild_passes_only_flags_the_commands_know():
    steps = {step["id"]: step for step in _steps()}
    job_flags = [w for w in _words(steps["preprocess-on-dataflow"]) if w.startswith("--")]
    assert job_options.unknown_flags(PipelineOptions(job_flags)) == []
    from trainer.training.flags import FLAGS

    trainer_flags = re.findall(r"--(\w+)=", " ".join(steps["train-on-vertex"]["args"]))
    assert {"optimizer", "loss", "data_dir", "model_dir"} <= set(trainer_flags)
    assert all(name in FLAGS for name in trainer_flags if name not in ("project", "region", "display", "config"))


def test_cloudbuild_holds_no_secrets():
    text = (REPO / "cloudbuild.yaml").read_text().lower()
    for word in ("password", "secret", "private_key", "token", "apikey", "api_key"):
        assert word not in text, word


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each Dockerfile instruction, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_copies_files_that_exist_and_installs_extras_that_exist(tmp_path):
    instructions = _dockerfile()
    copied = [source for kind, args in instructions if kind == "COPY" for source in shlex.split(args)[:-1]]
    assert copied, "the Dockerfile copies nothing"
    for source in copied:
        assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
    runs = " ".join(args for kind, args in instructions if kind == "RUN")
    installs = re.findall(r"pip install -c (\S+) \"?\.\[([\w,]+)\]", runs)
    assert installs, runs
    done = subprocess.run([sys.executable, "setup.py", "-q", "egg_info", f"--egg-base={tmp_path}"],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    (requires,) = tmp_path.glob("*.egg-info/requires.txt")
    extras = set(re.findall(r"^\[(\w+)\]$", requires.read_text(), re.MULTILINE))
    for lock_file, names in installs:
        assert lock_file in copied, f"pip install -c {lock_file}: the file is not copied first"
        assert set(names.split(",")) <= extras, f"pip install .[{names}]: setup.py's extras are {extras}"


def test_dockerfile_entry_point_is_a_module_that_runs():
    (entry,) = [json.loads(args) for kind, args in _dockerfile() if kind == "ENTRYPOINT"]
    assert entry[:2] == ["python", "-m"], entry
    module = entry[2]
    assert any(module.split(".")[0] == source.rstrip("/").split("/")[0]
               for kind, args in _dockerfile() if kind == "COPY" for source in shlex.split(args)[:-1]), module
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, capture_output=True, text=True)
    assert "Traceback" not in done.stderr and "--data_dir" in done.stdout, done.stderr[-2000:]


NEEDS_PHOTOS = "def test_needs_the_photos(shared_data):\n    pass\n"


def test_ci_fails_the_tests_that_need_missing_reference_photos_instead_of_skipping_them(tmp_path):
    (tmp_path / "test_needs_photos.py").write_text(NEEDS_PHOTOS)

    def pytest_run(ci: str):
        env = {**os.environ, "CI": ci, "SHARED_DATA_DIR": str(tmp_path / "no_photos_here")}
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
                               "-q", "--rootdir", str(tmp_path), str(tmp_path / "test_needs_photos.py")],
                              cwd=REPO, capture_output=True, text=True, env=env)

    on_ci, locally = pytest_run("true"), pytest_run("")
    assert on_ci.returncode == 1 and "1 error" in on_ci.stdout, on_ci.stdout
    assert "CI=true requires them" in on_ci.stdout
    assert locally.returncode == 0 and "1 skipped" in locally.stdout, locally.stdout
