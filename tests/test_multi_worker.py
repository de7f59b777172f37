"""Two worker processes on 127.0.0.1 (MultiWorkerMirroredStrategy, TF_CONFIG): they train in sync, only the
chief writes into --model_dir, a SIGTERM to one worker makes both save at the same step and stop, and a
cluster that loses a worker mid-epoch and is restarted ends exactly where an uninterrupted one ends."""

import csv
import json
import random
import re
import shutil
import subprocess
import sys
import time

import pytest

from tests.trainer_processes import Attempt, free_ports

EPOCHS, STEPS = 2, 6
# System calls that change a file system (strace names), besides opening a file to write.
_WRITES = {"mkdir", "mkdirat", "rename", "renameat", "renameat2", "unlink", "unlinkat", "rmdir", "creat", "truncate",
           "link", "linkat", "symlink", "symlinkat", "chmod", "fchmodat", "utimensat"}


def _start(records, model_dir, logs, name, trace=None):
    """Both workers of a fresh cluster, as Attempts; worker 1 under strace, its file system calls into `trace`."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    command = [sys.executable, "-m", "trainer.task", f"--data_dir={records}", f"--model_dir={model_dir}",
               f"--epochs={EPOCHS}", "--batch_size=8", f"--steps_per_epoch={STEPS}", "--log_images_every=0",
               "--checkpoint_every_steps=1"]
    traced = ["strace", "-f", "--seccomp-bpf", "-qq", "-e", "trace=%file", "-o", str(trace)] if trace else []
    return [Attempt([*(traced if index == 1 else []), *command], logs / f"{name}-{index}.txt",
                    env={"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})})
            for index in range(2)]


def _fingerprint(stdout):
    return [line for line in stdout.splitlines() if line.startswith("weights fingerprint: ")]


def _losses(model_dir):
    with open(model_dir / "history.csv") as handle:
        return [(int(row["epoch"]), float(row["loss"]), float(row["val_loss"])) for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def uninterrupted(tiny_records, tmp_path_factory):
    """One two-worker run, never interrupted: model_dir, both workers' stdout, worker 1's strace (or None)."""
    folder = tmp_path_factory.mktemp("two_workers")
    trace = folder / "worker-1.strace" if shutil.which("strace") else None
    results = [attempt.finish() for attempt in _start(tiny_records, folder / "run", folder, "whole", trace)]
    for code, _, stderr in results:
        assert code == 0, stderr[-3000:]
    return folder / "run", [stdout for _, stdout, _ in results], trace


def test_two_workers_train_in_sync(uninterrupted):
    model_dir, (chief, other), _ = uninterrupted
    assert _fingerprint(chief) == _fingerprint(other) and len(_fingerprint(chief)) == 1  # the same weights on both
    assert "test photos" in chief and "test photos" not in other  # every worker scores, the chief reports
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["strategy"] == {"name": "multi_worker", "replicas": 2, "workers": 2, "jit_compile": False}
    assert len(_losses(model_dir)) == EPOCHS and metrics["epochs_run"] == EPOCHS


def test_the_other_worker_writes_into_model_dir_only_its_own_data_position(uninterrupted):
    """Every call worker 1 made that changes a file (open to write, create, rename, remove) is outside model_dir,
    but for its own position in its training data (its tf.data iterator's checkpoint, which only it has)."""
    model_dir, _, trace = uninterrupted
    if trace is None:
        pytest.skip("strace is not installed")
    calls = [re.match(r"\d+\s+(\w+)\((.*)", line) for line in trace.read_text().splitlines()]
    calls = [(m[1], m[2]) for m in calls if m and str(model_dir) in m[2]]
    assert calls, "the trace shows no look into model_dir at all: strace saw nothing"
    own = str(model_dir / "backup" / "data-worker-1")

    def its_own(arguments):  # every path of model_dir the call names is in its folder (or a folder above it)
        paths = [path for path in re.findall(r'"([^"]*)"', arguments) if str(model_dir) in path]
        return all(path.startswith(own) or own.startswith(path.rstrip("/")) for path in paths)

    assert any(own in arguments for _, arguments in calls), "worker 1 kept no data position"
    calls = [(name, arguments) for name, arguments in calls if not its_own(arguments)]
    writes = [f"{name}({arguments[:200]}" for name, arguments in calls
              if name in _WRITES or (name.startswith("open") and re.search(r"O_WRONLY|O_RDWR|O_CREAT", arguments))]
    assert writes == []


def _committed(model_dir):
    state = model_dir / "backup" / "training_metadata.json"
    return (json.loads(state.read_text())["epoch"], json.loads(state.read_text())["step"]) if state.exists() else (0, 0)


def _steps_done(model_dir):
    """Training steps the run's last checkpoint holds, over all epochs (one is written after every step here)."""
    epoch, step = _committed(model_dir)
    return epoch * STEPS + step


def _interrupt(chief, other, model_dir, at_step, terminate):
    """Once the run has checkpointed its step `at_step` (its own progress, not a time, so a loaded machine
    cannot move the moment past an epoch's end), SIGTERM worker 1 (`terminate`: the cluster saves at one step
    and stops) or kill it (the chief, left alone, fails or is ended)."""
    while chief.process.poll() is None and other.process.poll() is None and _steps_done(model_dir) < at_step:
        assert time.time() - chief.started < 300, "the cluster hangs"
        time.sleep(0.01)
    if terminate:
        other.process.terminate()
        return
    other.process.kill()
    try:
        chief.process.wait(timeout=60)  # its next collective fails, or waits for the lost peer: then it is ended
    except subprocess.TimeoutExpired:
        chief.process.kill()


def test_a_cluster_stopped_by_sigterm_or_a_lost_worker_resumes_and_ends_as_an_uninterrupted_one(
        uninterrupted, tiny_records, tmp_path):
    reference_dir, (reference, _), _ = uninterrupted
    model_dir = tmp_path / "run"
    # A SIGTERM to worker 1 early in the first epoch (so that its save, a step or so later, is mid-epoch), then
    # its loss a seeded random number of steps after the resumed start, then the restart that finishes: each
    # cluster start pays both workers' start-up, so no more than these.
    report, ending = [], None
    rng = random.Random(20261130)
    for number, (steps, terminate) in enumerate([(rng.randint(1, 2), True), (rng.randint(1, 3), False),
                                                 (None, False)]):
        committed = _committed(model_dir)
        chief, other = _start(tiny_records, model_dir, tmp_path, f"attempt-{number}")
        if steps is not None:
            _interrupt(chief, other, model_dir, _steps_done(model_dir) + steps, terminate)
        (code, stdout, stderr), (other_code, other_stdout, _) = chief.finish(), other.finish()
        report.append(f"attempt {number}: from epoch {committed[0]} step {committed[1]}, chief {code}, "
                      f"worker 1 {other_code}")
        if terminate:  # both saved after the same step and stopped: the chief's SIGTERM line is the worker's
            saved = [line for line in stdout.splitlines() if line.startswith("SIGTERM: saved after step")]
            assert code == other_code == 143 and saved and saved[0] in other_stdout, f"{report}\n{stderr[-3000:]}"
        if steps is None:
            assert code == 0 and other_code == 0, f"{report}\n{stderr[-3000:]}"
            ending = stdout
    print("\n".join(report))
    assert " step 0," not in report[1], report  # the restart resumed mid-epoch
    assert _fingerprint(ending) == _fingerprint(reference) and _fingerprint(ending), report
    # An interrupted epoch's mean training loss is the restored sums plus the rest: summed in another order,
    # it may differ in float32's last bits; the validation loss, as the weights, is the same.
    resumed, whole = _losses(model_dir), _losses(reference_dir)
    assert [(epoch, val) for epoch, _, val in resumed] == [(epoch, val) for epoch, _, val in whole]
    assert [loss for _, loss, _ in resumed] == pytest.approx([loss for _, loss, _ in whole], rel=1e-6)
