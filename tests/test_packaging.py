"""What Dataflow workers, the training image and Cloud Build rely on: setup.py, Dockerfile, cloudbuild.yaml."""

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
    assert {"apache-beam", "numpy", "opencv-python-headless", "google-crc32c"} <= local.keys() & dataflow.keys()
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
    from trainer.flags import FLAGS

    trainer_flags = re.findall(r"--(\w+)=", " ".join(steps["train-on-vertex"]["args"]))
    assert {"optimizer", "loss", "data_dir", "model_dir"} <= set(trainer_flags)
    assert all(name in FLAGS for name in trainer_flags if name not in ("project", "region", "display", "config"))


def test_cloudbuild_holds_no_secrets():
    text = (REPO / "cloudbuild.yaml").read_text().lower()
    for word in ("password", "secret", "private_key", "token", "apikey", "api_key"):
        assert word not in text, word


def test_dockerfile_installs_the_pins_and_runs_the_trainer():
    text = (REPO / "Dockerfile").read_text()
    assert "-c constraints.txt" in text and "ARG VARIANT=cpu" in text
    assert 'ENTRYPOINT ["python", "-m", "trainer.task"]' in text
