"""The trainer's command, run as a user runs it: outputs, TensorBoard, export, resume, bad input."""

import concurrent.futures
import csv
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO, TINY_SIZE, run_module, run_preprocess

EPOCHS = 3


def _flags(records, model_dir, *extra):
    return [f"--data_dir={records}", f"--model_dir={model_dir}", f"--epochs={EPOCHS}", "--batch_size=8",
            "--learning_rate=0.003", "--seed=5", *extra]


def _history(model_dir):
    with open(model_dir / "history.csv") as handle:
        return list(csv.DictReader(handle))


def _weights(model_dir):
    return keras.models.load_model(model_dir / "model.keras").get_weights()


@pytest.fixture(scope="module")
def finished_run(tiny_records, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("run")
    done = run_module("trainer.task", *_flags(tiny_records, model_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    return model_dir, done.stdout


def test_training_lowers_the_loss(finished_run):
    model_dir, _ = finished_run
    losses = [float(row["loss"]) for row in _history(model_dir)]
    assert len(losses) == EPOCHS and losses[-1] < losses[0]


def test_a_run_writes_metrics_history_curves_and_models(finished_run):
    model_dir, stdout = finished_run
    metrics = json.loads((model_dir / "metrics.json").read_text())
    names = {"loss", "ab_psnr", "ab_ssim", "rgb_psnr", "rgb_ssim", "colourfulness", "colourfulness_true",
             "colourfulness_gap"}
    for split in ("val", "test"):
        assert set(metrics[split]) == names and set(metrics["gray_baseline"][split]) == names
    assert metrics["flags"]["optimizer"] == "adam" and metrics["versions"]["tensorflow"] == tf.__version__
    assert metrics["epochs_run"] == EPOCHS and metrics["train_examples_per_second"] > 0
    assert metrics["data"]["image_size"] == [TINY_SIZE, TINY_SIZE]
    assert cv2.imread(str(model_dir / "curves.png")).shape[1] > 1000
    assert keras.models.load_model(model_dir / "model.keras").input_shape == (None, TINY_SIZE, TINY_SIZE, 1)
    assert "rgb_psnr" in stdout and "gray" in stdout


def _tags(directory):
    tags = {}
    for path in directory.glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                tags.setdefault(value.tag, set()).add(event.step)
    return tags


def test_tensorboard_has_every_scalar_per_epoch_and_the_photos(finished_run):
    model_dir, _ = finished_run
    train, validation = _tags(model_dir / "logs" / "train"), _tags(model_dir / "logs" / "validation")
    every_epoch = set(range(EPOCHS))
    for tag in ("epoch_loss", "epoch_learning_rate", "epoch_examples_per_second"):
        assert train[tag] == every_epoch, tag
    for tag in ("epoch_loss", "epoch_rgb_psnr", "epoch_rgb_ssim", "epoch_ab_psnr", "epoch_colourfulness"):
        assert validation[tag] == every_epoch, tag
    assert list(_tags(model_dir / "logs" / "images").values()) == [every_epoch]


LOAD_AND_COLOURIZE = """
import sys, numpy as np, tensorflow as tf
model = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
rng = np.random.default_rng(0)
for channels in (1, 3):
    images = tf.constant(rng.integers(0, 256, (2, 37, 53, channels)), tf.uint8)
    out = model(images=images)["colorized"]
    print(channels, out.dtype.name, tuple(out.shape))
print("modules:", sorted(m for m in sys.modules if m.split(".")[0] in ("trainer", "pipeline", "beam_jobs")))
"""


def test_saved_model_colourizes_any_size_with_tensorflow_alone(finished_run, tmp_path):
    model_dir, _ = finished_run
    done = subprocess.run([sys.executable, "-c", LOAD_AND_COLOURIZE, str(model_dir / "saved_model")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[:2] == ["1 uint8 (2, 37, 53, 3)", "3 uint8 (2, 37, 53, 3)"]
    assert lines[2] == "modules: []"


def test_rerunning_a_finished_run_does_nothing(finished_run, tiny_records):
    model_dir, _ = finished_run
    before = (model_dir / "metrics.json").read_text()
    done = run_module("trainer.task", *_flags(tiny_records, model_dir))
    assert done.returncode == 0 and "nothing to do" in done.stdout
    assert (model_dir / "metrics.json").read_text() == before


def test_an_interrupted_run_resumes_after_its_last_epoch(finished_run, tiny_records, tmp_path):
    model_dir = tmp_path / "run"
    command = [sys.executable, "-m", "trainer.task", *_flags(tiny_records, model_dir)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metadata = model_dir / "backup" / "training_metadata.json"
    deadline = time.time() + 300
    while not (metadata.exists() and json.loads(metadata.read_text() or "{}").get("epoch") == 1):
        assert process.poll() is None and time.time() < deadline, "the run ended before epoch 1 was backed up"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (model_dir / "metrics.json").exists()

    resumed = run_module("trainer.task", *_flags(tiny_records, model_dir))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Epoch 1/3" not in resumed.stdout and "Epoch 2/3" in resumed.stdout
    assert [int(row["epoch"]) for row in _history(model_dir)][-2:] == [1, 2]
    uninterrupted, _ = finished_run
    for resumed_weights, full_weights in zip(_weights(model_dir), _weights(uninterrupted)):
        np.testing.assert_allclose(resumed_weights, full_weights, atol=1e-4)


def test_mirrored_xla_on_two_devices_matches_one_device(tiny_records, tmp_path):
    common = [f"--data_dir={tiny_records}", "--epochs=1", "--steps_per_epoch=4", "--batch_size=8",
              "--jit_compile=true", "--log_images_every=0", "--seed=3"]
    with concurrent.futures.ThreadPoolExecutor() as pool:  # both at once: XLA compiles mostly on one core
        one = pool.submit(run_module, "trainer.task", *common, f"--model_dir={tmp_path / 'one'}",
                          "--strategy=one_device")
        two = pool.submit(run_module, "trainer.task", *common, f"--model_dir={tmp_path / 'two'}",
                          "--strategy=mirrored", "--logical_cpus=2")
    one, two = one.result(), two.result()
    assert one.returncode == 0 and two.returncode == 0, (one.stderr + two.stderr)[-3000:]
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["strategy"] == {"name": "mirrored", "replicas": 2, "workers": 1, "jit_compile": True}
    assert float(_history(tmp_path / "two")[0]["loss"]) == pytest.approx(
        float(_history(tmp_path / "one")[0]["loss"]), rel=1e-4)
    for a, b in zip(_weights(tmp_path / "one"), _weights(tmp_path / "two")):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.fixture(scope="module")
def odd_records(shared_data, tmp_path_factory):
    """Records at another size (16) and with an empty val split."""
    output = tmp_path_factory.mktemp("odd_records")
    run_preprocess(output, f"--input={shared_data / 'extra_plants' / 'pansy' / 'image_12*.jpg'}",
                   "--size=16", "--split=100/0/0")
    return output


@pytest.mark.parametrize("flags,env,message", [
    (["--optimizer=adamw"], {}, "flag --optimizer=adamw: value should be one of <adam|rmsprop|sgd>"),
    (["--data_dir="], {}, "no manifest.json in"),
    (["--data_dir=EMPTY"], {}, "no manifest.json in EMPTY"),
    (["--data_dir=ODD"], {}, "split 'val' of ODD has no examples"),
    (["--data_dir=ODD", "--init_model=MODEL", "--cv_fold=0", "--batch_size=4"], {},
     "the records are 16x16 but --init_model"),
    (["--logical_cpus=2", "--strategy=mirrored", "--batch_size=3"], {}, "--batch_size=3 is not divisible by the 2"),
    ([], {"TF_CONFIG": "{not json"}, "TF_CONFIG is not valid"),
])
def test_bad_input_is_one_line_naming_the_problem(finished_run, tiny_records, odd_records, tmp_path,
                                                  flags, env, message):
    model_dir, _ = finished_run
    names = {"EMPTY": str(tmp_path), "ODD": str(odd_records), "MODEL": str(model_dir / "model.keras")}
    flags = [f"--data_dir={tiny_records}", f"--model_dir={tmp_path / 'run'}", *flags]
    for name, value in names.items():
        flags = [f.replace(name, value) for f in flags]
        message = message.replace(name, value)
    done = run_module("trainer.task", *flags, env=env)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert any(message in line for line in done.stderr.splitlines()), done.stderr[-2000:]


def test_missing_data_dir_is_named(tmp_path):
    done = run_module("trainer.task", f"--model_dir={tmp_path}")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "--data_dir" in done.stderr


def _free_ports(count):
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_train_in_sync_and_only_the_chief_writes(tiny_records, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    model_dir = tmp_path / "run"
    command = [sys.executable, "-m", "trainer.task", f"--data_dir={tiny_records}", f"--model_dir={model_dir}",
               "--epochs=2", "--batch_size=8", "--steps_per_epoch=3", "--log_images_every=0"]
    workers = [subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "TF_CONFIG": json.dumps(
                                    {"cluster": cluster, "task": {"type": "worker", "index": index}})})
               for index in range(2)]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    summaries = [stdout[stdout.index("test metric"):] for stdout, _ in outputs]
    assert summaries[0] == summaries[1] and "weights fingerprint" in summaries[0]
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["strategy"] == {"name": "multi_worker", "replicas": 2, "workers": 2,
                                   "jit_compile": False}
    assert len(_history(model_dir)) == 2
