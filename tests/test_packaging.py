"""What Dataflow workers, the images and Cloud Build rely on: setup.py, Dockerfile(.worker), cloudbuild.yaml."""

import json
import os
import re
import shlex
import subprocess
import sys
import tarfile

import pytest
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
            if re.fullmatch(r"(\./)?[\w/.-]+\.(sh|py)|\.ci/run", word):
                assert (REPO / word).is_file(), f"{step['id']}: {word}"
                seen.add(word)
        for module in (words[i + 1] for i, w in enumerate(words) if w == "-m"):
            assert (REPO / (module.replace(".", "/") + ".py")).is_file(), f"{step['id']}: {module}"
            seen.add(module)
        if "build" in words and "docker" in step["name"]:
            dockerfile = words[words.index("-f") + 1] if "-f" in words else "Dockerfile"
            assert (REPO / dockerfile).is_file(), f"{step['id']}: {dockerfile}"
            seen.add(dockerfile)
    assert {".ci/run", "beam_jobs.preprocess", "Dockerfile", "Dockerfile.worker"} <= seen


def _seconds(timeout: str) -> int:
    assert re.fullmatch(r"\d+s", timeout), timeout
    return int(timeout[:-1])


def test_every_cloudbuild_step_has_a_timeout_within_the_builds():
    build = yaml.safe_load((REPO / "cloudbuild.yaml").read_text())
    steps = [_seconds(step["timeout"]) for step in build["steps"]]
    assert sum(steps) <= _seconds(build["timeout"])


def _nested_substitutions(build) -> list[str]:
    """Substitutions whose value names another variable ($BUILD_ID, ${_X}): Cloud Build expands those only
    with options.dynamicSubstitutions; without it the value keeps the bare name or an empty one."""
    if (build.get("options") or {}).get("dynamicSubstitutions") is True:
        return []
    return [name for name, value in (build.get("substitutions") or {}).items()
            if re.search(r"(?<!\$)\$(\{?[A-Za-z_][A-Za-z0-9_]*)", str(value))]


def test_cloudbuild_expands_substitutions_that_name_other_variables():
    build = yaml.safe_load((REPO / "cloudbuild.yaml").read_text())
    assert "_RUN" in build["substitutions"]  # run-$BUILD_ID: each build its own model folder
    assert _nested_substitutions(build) == []
    build["options"].pop("dynamicSubstitutions")
    assert _nested_substitutions(build) == ["_RUN"]  # what the check would say without the option


def test_cloudbuild_tests_as_ci_does_with_the_reference_photos_it_copies_first():
    steps = {step["id"]: step for step in _steps()}
    test = steps["test"]
    assert _words(test) == [".ci/run"] and test["entrypoint"] == "bash"
    env = dict(item.split("=", 1) for item in test["env"])
    assert env["CI"] == "true"
    source, target = _words(steps["reference-photos"])[-2:]
    assert source.endswith("/photos/flowers")  # copied into target, as target/flowers/<class>/*.jpg
    assert target.rstrip("/") == env["SHARED_DATA_DIR"]
    ids = [step["id"] for step in _steps()]
    assert ids.index("reference-photos") < ids.index("test") < ids.index("preprocess-on-dataflow")


def test_cloudbuild_launches_the_beam_job_from_the_worker_image_it_builds_for_the_workers():
    steps = {step["id"]: step for step in _steps()}
    built = _words(steps["build-worker-image"])
    image = built[built.index("-t") + 1]
    assert _words(steps["push-worker-image"]) == ["push", image]
    launch = steps["preprocess-on-dataflow"]
    assert launch["name"] == image
    flags = _words(launch)
    assert f"--sdk_container_image={image}" in flags and "--sdk_location=container" in flags
    assert not any(flag.startswith("--setup_file") for flag in flags)  # the image holds the job's packages


def test_cloudbuild_passes_only_flags_the_commands_know():
    steps = {step["id"]: step for step in _steps()}
    job_flags = [w for w in _words(steps["preprocess-on-dataflow"]) if w.startswith("--")]
    assert job_options.unknown_flags(PipelineOptions(job_flags)) == []
    from trainer.training.flags import FLAGS

    trainer_flags = re.findall(r"--(\w+)=", " ".join(steps["train-on-vertex"]["args"]))
    assert {"optimizer", "loss", "data_dir", "model_dir"} <= set(trainer_flags)
    assert all(name in FLAGS for name in trainer_flags if name not in ("project", "region", "display", "config"))


def test_the_dataflow_command_in_the_docs_uses_flags_the_job_knows_and_the_worker_image():
    text = (REPO / "docs" / "scaling.md").read_text().replace("\\\n", " ")
    (command,) = [line for line in text.splitlines() if "-m beam_jobs.preprocess" in line and "DataflowRunner" in line]
    words = shlex.split(command)
    words = words[words.index("beam_jobs.preprocess") + 1:]
    assert job_options.unknown_flags(PipelineOptions(words)) == []
    assert {"--sdk_container_image", "--sdk_location"} <= set(words)
    assert "docker build -f Dockerfile.worker" in text


def test_cloudbuild_holds_no_secrets():
    text = (REPO / "cloudbuild.yaml").read_text().lower()
    for word in ("password", "secret", "private_key", "token", "apikey", "api_key"):
        assert word not in text, word


DOCKERFILES = ["Dockerfile", "Dockerfile.worker"]


def _dockerfile(name: str = "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each Dockerfile instruction, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", " ", (REPO / name).read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _copied(instructions) -> list[str]:
    return [source for kind, args in instructions if kind == "COPY" for source in shlex.split(args)[:-1]]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_copies_files_that_exist_and_installs_extras_that_exist(tmp_path, name):
    instructions = _dockerfile(name)
    copied = _copied(instructions)
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


def test_the_worker_image_is_beams_own_at_the_pinned_versions_with_the_beam_side_only():
    """No TensorFlow, no model: the worker image installs the Dataflow lock file's packages and the job's code."""
    instructions = _dockerfile("Dockerfile.worker")
    (base,) = [args for kind, args in instructions if kind == "FROM"]
    python = re.search(r'python_requires=">=(3\.\d+)', (REPO / "setup.py").read_text()).group(1)
    assert base == f"apache/beam_python{python}_sdk:{_pins('constraints-dataflow.txt')['apache-beam']}"
    assert {source.rstrip("/") for source in _copied(instructions)} == {
        "constraints.txt", "constraints-dataflow.txt", "setup.py", "pipeline", "beam_jobs"}
    runs = " ".join(args for kind, args in instructions if kind == "RUN")
    assert re.findall(r"pip install -c (\S+) \"?\.\[([\w,]+)\]", runs) == [("constraints-dataflow.txt", "gcp")]
    assert not any(kind in ("ENTRYPOINT", "CMD") for kind, _ in instructions)  # Beam's boot program starts workers


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
