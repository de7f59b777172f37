"""The trainer's command, run as a user runs it: outputs, TensorBoard, export, resume, bad input."""

import concurrent.futures
import csv
import json
import random
import re
import signal
import subprocess
import sys
import time

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline import dataset
from trainer.applying import serving
from trainer.training import run
from trainer.network import model_file
from tests.conftest import TINY_SIZE, run_module, run_preprocess
from tests.trainer_processes import Attempt

EPOCHS = 3
# An attempt that runs longer is taken for hung. Generous: on a machine loaded by other jobs an attempt of
# the resume tests has taken over 300 s (an epoch of 9 steps 160-190 s).
HANG_SECONDS = 1200


def _flags(records, model_dir, *extra):
    # A checkpoint every 2 of the 9 steps of an epoch: the resume tests land mid-epoch too.
    return [f"--data_dir={records}", f"--model_dir={model_dir}", f"--epochs={EPOCHS}", "--batch_size=8",
            "--learning_rate=0.006", "--seed=5", "--checkpoint_every_steps=2", "--log_every_steps=4", *extra]


def _history(model_dir):
    with open(model_dir / "history.csv") as handle:
        return list(csv.DictReader(handle))


def _weights(model_dir):
    return keras.models.load_model(model_dir / "model.keras").get_weights()


@pytest.fixture(scope="module")
def finished_run(tiny_records, tmp_path_factory):
    """One uninterrupted run with today's defaults (context_unet, classification loss): model_dir, stdout, stderr."""
    model_dir = tmp_path_factory.mktemp("run")
    done = run_module("trainer.task", *_flags(tiny_records, model_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    return model_dir, done.stdout, done.stderr


def test_training_lowers_the_loss(finished_run):
    model_dir, _, _ = finished_run
    losses = [float(row["loss"]) for row in _history(model_dir)]
    assert len(losses) == EPOCHS and losses[-1] < losses[0]


def test_a_run_writes_metrics_history_curves_and_models(finished_run):
    model_dir, stdout, _ = finished_run
    metrics = json.loads((model_dir / "metrics.json").read_text())
    names = {"ab_psnr", "ab_ssim", "rgb_psnr", "rgb_ssim", "colourfulness", "colourfulness_true",
             "colourfulness_gap", "neutral_false_colour"}
    for split in ("val", "test"):
        assert names <= set(metrics[split]) and set(metrics["gray_baseline"][split]) == set(metrics[split]) - {"loss"}
    assert "loss" in metrics["val"]  # the gray baseline predicts no colour distribution: it has no cross-entropy
    assert metrics["model"] == "context_unet" and metrics["flags"]["loss"] == "classification"
    assert metrics["flags"]["optimizer"] == "adam" and metrics["versions"]["tensorflow"] == tf.__version__
    assert metrics["epochs_run"] == EPOCHS and metrics["train_examples_per_second"] > 0
    assert metrics["data"]["image_size"] == [TINY_SIZE, TINY_SIZE]
    assert cv2.imread(str(model_dir / "curves.png")).shape[1] > 1000
    assert keras.models.load_model(model_dir / "model.keras").input_shape[:3] == (None, TINY_SIZE, TINY_SIZE)
    assert "RGB PSNR (dB)" in stdout and "gray" in stdout
    report = json.loads((model_dir / "evaluation" / "metrics.json").read_text())
    assert report["count"] == metrics["data"]["test_examples"]
    assert report["overall"]["model"]["rgb_psnr"] == pytest.approx(metrics["test"]["rgb_psnr"])
    assert cv2.imread(str(model_dir / "evaluation" / "contact_sheet.png")) is not None


def test_both_exported_models_carry_the_records_photo_preparation(finished_run, tiny_records):
    model_dir, _, _ = finished_run
    records = dataset.load_manifest(str(tiny_records)).preparation
    net, carried = model_file.load(str(model_dir / "model.keras"))
    assert carried == records and records.size == TINY_SIZE
    assert serving.preparation(str(model_dir / "saved_model")) == records


def test_the_console_shows_progress_and_no_tensorflow_start_up_noise(finished_run, tiny_records):
    _, stdout, stderr = finished_run
    for noise in ("Unable to register", "oneDNN", "TF-TRT", "cuda", "cpu_feature_guard"):
        assert noise not in stderr and noise not in stdout, noise
    steps = json.loads((tiny_records / "manifest.json").read_text())["splits"]["train"]["examples"] // 8
    assert steps >= 2  # the made photos give 9
    assert stdout.splitlines()[0] == ("Training on CPU:0, strategy one_device (1 replica(s) on 1 worker(s)), "
                                      "precision float32, XLA off, op determinism off")
    whole = f"{steps}/{steps}"
    epoch_lines = [line for line in stdout.splitlines() if line.startswith(("Epoch ", f"{whole} - "))]
    assert [line.split(" - ")[0] for line in epoch_lines] == ["Epoch 1/3", whole, "Epoch 2/3", whole, "Epoch 3/3",
                                                              whole]


def test_help_lists_the_trainers_flags():
    done = run_module("trainer.task", "--help")  # exits 1, as absl's --help does
    assert "Traceback" not in done.stderr
    for flag in ("--data_dir", "--model_dir", "--model", "--loss", "--epochs", "--batch_size",
                 "--time_budget_minutes", "--strategy", "--seed", "--precision", "--steps_per_execution",
                 "--checkpoint_every_steps", "--profile_steps", "--warmup_steps", "--accelerator"):
        assert f"  {flag}:" in done.stdout, flag
    assert "  --[no]deterministic:" in done.stdout
    assert "Unable to register" not in done.stderr


def test_progress_prints_at_logging_steps_and_validation_has_a_line_of_its_own(finished_run):
    """Every 4 of the 9 steps a line with the loss; the epoch's line when its training ends (its time per step
    without validation's); then validation's own line."""
    _, stdout, _ = finished_run
    lines = stdout.splitlines()
    first = lines[lines.index("Epoch 1/3") + 1:lines.index("Epoch 2/3")]
    assert [line.split(" - ")[0] for line in first] == ["  step 4/9", "  step 8/9", "9/9", "  validation"]
    assert "examples/s" in first[0] and re.search(r"ms/step - loss: \d", first[2]) and "val_loss: " in first[3]


def test_the_time_budget_says_after_which_step_it_stops(capsys):
    from trainer.training import callbacks

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.zeros((64, 2)), np.zeros((64, 1))
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[callbacks.TimeBudget(minutes=10.0)])
    assert re.match(r"time budget: \d+\.\d of 10 min used, room for about 1 of the 1 epochs left",
                    capsys.readouterr().out)
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[callbacks.TimeBudget(minutes=0.0)])
    assert capsys.readouterr().out.splitlines() == [
        "time budget of 0 min used up after step 1/8 of epoch 1: training stops here"]


def test_profile_steps_are_read_as_first_and_last():
    assert run._profile_steps("4,7") == (4, 7) and run._profile_steps(None) is None


class _SlowValidation(keras.callbacks.Callback):
    def on_test_end(self, logs=None):
        time.sleep(1.0)


def test_the_time_budget_keeps_room_for_the_validation_it_has_seen(capsys):
    """With 1.5 s and a validation of 1 s, a second epoch would overrun: training stops after the first."""
    from trainer.training import callbacks

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.zeros((16, 2)), np.zeros((16, 1))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, validation_data=(x, y))  # traced: the steps take ms now
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, validation_data=(x, y),
              callbacks=[_SlowValidation(), callbacks.TimeBudget(minutes=1.5 / 60)])
    assert capsys.readouterr().out.splitlines() == [
        "time budget of 0.025 min used up at the end of epoch 1: training stops here"]


def _tags(directory):
    tags = {}
    for path in directory.glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                tags.setdefault(value.tag, set()).add(event.step)
    return tags


def test_tensorboard_has_every_scalar_per_epoch_and_the_photos(finished_run):
    model_dir, _, _ = finished_run
    train, validation = _tags(model_dir / "logs" / "train"), _tags(model_dir / "logs" / "validation")
    every_epoch = set(range(1, EPOCHS + 1))  # numbered as the console numbers them
    for tag in ("epoch_loss", "epoch_learning_rate", "epoch_examples_per_second"):
        assert train[tag] == every_epoch, tag
    for tag in ("epoch_loss", "epoch_rgb_psnr", "epoch_rgb_ssim", "epoch_ab_psnr", "epoch_colourfulness"):
        assert validation[tag] == every_epoch, tag
    assert list(_tags(model_dir / "logs" / "images").values()) == [every_epoch]
    assert "epoch_seconds" in train and "epoch_epoch_seconds" not in train  # each tag named once
    logged = {4, 8, 9, 13, 17, 18, 22, 26, 27}  # every 4th step of each 9-step epoch, and each epoch's last
    assert train["step_loss"] == train["step_learning_rate"] == logged
    assert train["step_examples_per_second"] == logged - {4, 13, 22}  # from each epoch's second reading on


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
    model_dir, _, _ = finished_run
    done = subprocess.run([sys.executable, "-c", LOAD_AND_COLOURIZE, str(model_dir / "saved_model")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[:2] == ["1 uint8 (2, 37, 53, 3)", "3 uint8 (2, 37, 53, 3)"]
    assert lines[2] == "modules: []"


def test_rerunning_a_finished_run_does_nothing(finished_run, tiny_records):
    model_dir, _, _ = finished_run
    before = (model_dir / "metrics.json").read_text()
    done = run_module("trainer.task", *_flags(tiny_records, model_dir))
    assert done.returncode == 0 and "nothing to do" in done.stdout
    assert (model_dir / "metrics.json").read_text() == before


def _ending(stdout, model_dir):
    """What a run prints from its test scoring on, its folder named RUN, without the progress lines (timings)."""
    ending = stdout[stdout.index("test photos"):].replace(str(model_dir), "RUN")
    return "\n".join(line for line in ending.splitlines() if not line.startswith("  scored "))


def _committed(model_dir):
    """(epoch, step) a re-run resumes from: `step` steps of epoch `epoch` (from 0) are done."""
    state = model_dir / "backup" / "training_metadata.json"
    return (json.loads(state.read_text())["epoch"], json.loads(state.read_text())["step"]) if state.exists() else (0, 0)


def _mid_epoch_checkpoint(model_dir):
    return _committed(model_dir)[1] > 0


def test_a_run_killed_at_random_moments_resumes_and_ends_as_an_uninterrupted_one(finished_run, tiny_records,
                                                                                  tmp_path):
    """SIGKILL during start-up, file writes, a later epoch and the export, SIGTERM mid-epoch; re-run the same
    command each time.

    Whatever moment a kill lands on (before anything is written included), every re-run must
    resume from the last checkpoint (mid-epoch ones included), and the run must end exactly
    where one that was never interrupted ends: the same weights, metrics and history.
    """
    model_dir = tmp_path / "run"
    command = [sys.executable, "-m", "trainer.task", *_flags(tiny_records, model_dir)]
    rng = random.Random(20261127)
    kill, term = signal.SIGKILL, signal.SIGTERM
    kills = [  # (name, signal, what must happen first, then a seeded random delay in seconds)
        ("start", kill, lambda attempt: True, rng.uniform(0.5, 6.0)),
        ("a checkpoint write", kill, lambda attempt: attempt.wrote_since_start(model_dir / "checkpoints"), 0.0),
        ("mid-epoch", term, lambda attempt: _mid_epoch_checkpoint(model_dir) and any(
            line.startswith("Epoch ") for line in attempt.lines), rng.uniform(0.0, 1.0)),
        ("a later epoch", kill, lambda attempt: any(line.startswith(("Epoch 2/", "Epoch 3/"))
                                                    for line in attempt.lines), rng.uniform(0.0, 1.0)),
        ("a backup write", kill, lambda attempt: attempt.wrote_since_start(model_dir / "backup"), 0.0),
        ("the export", kill, lambda attempt: attempt.wrote_since_start(model_dir, "model.keras"), 0.0),
    ]
    done, report = _interrupted(command, model_dir, tmp_path, kills)
    assert sum("killed" in line for line in report) >= 3, report

    uninterrupted, reference, _ = finished_run
    assert _ending(done, model_dir) == _ending(reference, uninterrupted)  # the weights' fingerprint too
    result, expected = (json.loads((d / "metrics.json").read_text()) for d in (model_dir, uninterrupted))
    for key in ("val", "test", "gray_baseline", "epochs_run", "best_epoch", "parameters"):
        assert result[key] == expected[key], key
    assert [{k: v for k, v in row.items() if k not in ("epoch_seconds", "examples_per_second")}
            for row in _history(model_dir)] == [
        {k: v for k, v in row.items() if k not in ("epoch_seconds", "examples_per_second")}
        for row in _history(uninterrupted)]


def _interrupted(command, model_dir, logs, kills):
    """Run `command` again and again: attempt n gets kills[n]'s signal once its `happened(attempt)` is true plus
    its delay; the attempt after the last kill runs to its end. Returns that attempt's stdout and a report.

    Each attempt must be killed, or exit 143 after saving on SIGTERM, or finish; and resume from
    the last checkpoint, not start again.
    """
    report = []
    for number, (name, signal_to_send, happened, delay) in enumerate(
            [*kills, ("nothing", None, lambda attempt: False, 0.0)]):
        epoch, step = _committed(model_dir)
        attempt, seen = Attempt(command, logs / f"stderr-{number}.txt"), None
        while attempt.process.poll() is None:
            assert time.time() - attempt.started < HANG_SECONDS, f"attempt after {report} hangs"
            if seen is None and happened(attempt):
                seen = time.time()
            if seen is not None and time.time() >= seen + delay:
                attempt.process.send_signal(signal_to_send)
                seen = float("inf")  # once: SIGTERM lets the run save and exit
            time.sleep(0.005)
        code, stdout, stderr = attempt.finish()
        torn = sorted(p.name for p in model_dir.rglob(".tmp-*") if p.stat().st_mtime >= attempt.started)
        report.append(f"{name}: {'killed' if code in (-9, -15, 143) else code} after "
                      f"{time.time() - attempt.started:.1f} s, from epoch {epoch} step {step}"
                      f"{', torn ' + ' '.join(torn) if code == -9 and torn else ''}")
        assert code in (0, -9, -15, 143), f"{report}\n{stderr[-3000:]}"
        assert code != 143 or "SIGTERM: saved after step" in stdout and "Traceback" not in stderr, stderr[-3000:]
        assert stdout.count("SIGTERM") <= 1, stdout[-2000:]  # one save, one line
        epochs = [line.split()[1].split("/")[0] for line in stdout.splitlines() if line.startswith("Epoch ")]
        assert epochs[:1] in ([], [str(epoch + 1)]), (report, epochs)  # resumed, not started again
        if code == 0:
            print("\n".join(report))
            assert any(" step 0" not in line for line in report), report  # resumed mid-epoch at least once
            return stdout, report
    raise AssertionError(f"the last attempt did not finish: {report}")


def test_a_mirrored_run_killed_mid_epoch_resumes_and_ends_as_an_uninterrupted_one(tiny_records, tmp_path):
    """Two logical devices: SIGKILL, then SIGTERM, at seeded random moments within an epoch."""
    rng = random.Random(20261201)
    flags = ["--strategy=mirrored", "--logical_cpus=2", "--epochs=2", "--log_images_every=0"]
    command = [sys.executable, "-m", "trainer.task", *_flags(tiny_records, tmp_path / "run", *flags)]
    kills = [("mid-epoch", signal.SIGKILL, lambda attempt: _mid_epoch_checkpoint(tmp_path / "run"),
              rng.uniform(0.0, 1.0)),
             ("an epoch", signal.SIGTERM, lambda attempt: any(line.startswith("Epoch ") for line in attempt.lines),
              rng.uniform(0.0, 1.5))]
    with concurrent.futures.ThreadPoolExecutor() as pool:
        whole = pool.submit(run_module, "trainer.task", *_flags(tiny_records, tmp_path / "whole", *flags))
        ending, _ = _interrupted(command, tmp_path / "run", tmp_path, kills)
        whole = whole.result()
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert _ending(ending, tmp_path / "run") == _ending(whole.stdout, tmp_path / "whole")  # the fingerprint too
    # The interrupted epoch's mean training loss is the replicas' restored sums plus the rest: summed in
    # another order, it may differ in float32's last bits; all else, validation included, is the same.
    apart = ("epoch_seconds", "examples_per_second", "loss")
    resumed, whole = _history(tmp_path / "run"), _history(tmp_path / "whole")
    assert [{k: v for k, v in row.items() if k not in apart} for row in resumed] == [
        {k: v for k, v in row.items() if k not in apart} for row in whole]
    assert [float(row["loss"]) for row in resumed] == pytest.approx([float(row["loss"]) for row in whole], rel=1e-6)


def test_mirrored_xla_on_two_devices_matches_one_device(tiny_records, tmp_path):
    # A network without hints or batch statistics, photos not augmented: nothing random per replica.
    common = [f"--data_dir={tiny_records}", "--epochs=1", "--steps_per_epoch=4", "--batch_size=8",
              "--jit_compile=true", "--log_images_every=0", "--seed=3", "--model=lowres_unet", "--loss=mae",
              "--noaugment"]
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
    # Evaluation splits each batch across the replicas and gathers every photo's scores back.
    one_metrics = json.loads((tmp_path / "one" / "metrics.json").read_text())
    reports = [json.loads((tmp_path / run / "evaluation" / "metrics.json").read_text()) for run in ("one", "two")]
    assert reports[0]["count"] == reports[1]["count"] == metrics["data"]["test_examples"]
    for split in ("val", "test"):
        for name, value in one_metrics[split].items():
            assert metrics[split][name] == pytest.approx(value, rel=1e-4, abs=1e-4), (split, name)


def test_the_hint_aware_colour_classifier_trains_under_mirrored_xla_on_two_devices(tiny_records, tmp_path):
    done = run_module("trainer.task", f"--data_dir={tiny_records}", f"--model_dir={tmp_path}", "--epochs=2",
                      "--batch_size=8", "--jit_compile=true", "--strategy=mirrored", "--logical_cpus=2",
                      "--log_images_every=0", "--early_stopping_patience=0", "--learning_rate=0.006")
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["model"] == "context_unet" and metrics["flags"]["loss"] == "classification"
    assert metrics["strategy"] == {"name": "mirrored", "replicas": 2, "workers": 1, "jit_compile": True}
    losses = [float(row["loss"]) for row in _history(tmp_path)]
    assert losses[-1] < losses[0]


@pytest.fixture(scope="module")
def odd_records(made_photos, tmp_path_factory):
    """Records at another size (16) and with an empty val split."""
    output = tmp_path_factory.mktemp("odd_records")
    run_preprocess(output, f"--input={made_photos / 'own' / 'poppy' / 'poppy_0[01]*'}",
                   "--size=16", "--split=100/0/0")
    return output


@pytest.mark.parametrize("flags,env,message", [
    (["--optimizer=adamw"], {}, "flag --optimizer=adamw: value should be one of <adam|rmsprop|sgd>"),
    (["--data_dir="], {}, "'' does not exist (or is not a folder)"),
    (["--data_dir=EMPTY"], {}, "no manifest.json in EMPTY"),
    (["--data_dir=ODD"], {}, "split 'val' of ODD has no examples"),
    (["--data_dir=ODD", "--init_model=MODEL", "--cv_fold=0", "--batch_size=4"], {},
     "the records are 16x16 but --init_model"),
    (["--logical_cpus=2", "--strategy=mirrored", "--batch_size=3"], {}, "--batch_size=3 is not divisible by the 2"),
    ([], {"TF_CONFIG": "{not json"}, "TF_CONFIG is not valid"),
    (["--profile_steps=5"], {}, "--profile_steps=5: give the first and last step to profile, as START,END"),
    (["--hint_max_patch=10"], {}, "--hint_max_patch=10: --hint_max_patch must be odd"),
])
def test_bad_input_is_one_line_naming_the_problem(finished_run, tiny_records, odd_records, tmp_path,
                                                  flags, env, message):
    model_dir, _, _ = finished_run
    names = {"EMPTY": str(tmp_path), "ODD": str(odd_records), "MODEL": str(model_dir / "model.keras")}
    flags = [f"--data_dir={tiny_records}", f"--model_dir={tmp_path / 'run'}", *flags]
    for name, value in names.items():
        flags = [f.replace(name, value) for f in flags]
        message = message.replace(name, value)
    done = run_module("trainer.task", *flags, env=env)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert any(message in line for line in done.stderr.splitlines()), done.stderr[-2000:]


def test_a_mixed_bfloat16_run_with_several_steps_per_execution_trains_profiles_and_exports_float32(tiny_records,
                                                                                                tmp_path):
    done = run_module("trainer.task", *_flags(tiny_records, tmp_path, "--precision=mixed_bfloat16",
                                              "--steps_per_execution=4", "--profile_steps=2,3", "--warmup_steps=4",
                                              "--lr_schedule=constant", "--deterministic",
                                              "--log_images_every=0", "--epochs=2"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "precision mixed_bfloat16, XLA off, op determinism on" in done.stdout.splitlines()[0]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["flags"]["precision"] == "mixed_bfloat16" and metrics["epochs_run"] == 2
    history = _history(tmp_path)
    # Calls of 4, 4 and 1 steps: --steps_per_execution need not divide an epoch's 9.
    assert [row["steps"] for row in history] == ["9.0", "9.0"] and float(history[1]["loss"]) < float(history[0]["loss"])
    # Warmed up in 4 steps to Adam's 0.006 x sqrt(8 / 16).
    assert float(history[0]["learning_rate"]) == pytest.approx(0.006 * 0.5 ** 0.5)
    net = keras.models.load_model(tmp_path / "model.keras")
    assert {w.dtype for w in net.weights} == {"float32"}
    assert {layer.dtype_policy.name for layer in net.layers} == {"float32"}
    assert list((tmp_path / "logs" / "train" / "plugins" / "profile").glob("*/*.xplane.pb"))


def test_a_diverged_run_fails_and_says_so_when_run_again(tiny_records, tmp_path):
    flags = [f"--data_dir={tiny_records}", f"--model_dir={tmp_path}", "--epochs=2", "--batch_size=8",
             "--model=lowres_unet", "--loss=mse", "--optimizer=sgd", "--learning_rate=1e12", "--log_images_every=0"]
    first, again = run_module("trainer.task", *flags), None
    assert first.returncode == 2 and "Traceback" not in first.stderr, first.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["diverged"]["epoch"] == 1 and metrics["diverged"]["step"] >= 1 and "test" not in metrics
    assert "Epoch 2/2" not in first.stdout  # stopped at the step it diverged
    again = run_module("trainer.task", *flags)
    assert again.returncode == 2 and again.stdout == ""
    where = metrics["diverged"]
    assert again.stderr.strip().splitlines()[-1] == (
        f"error: --model_dir {tmp_path}: the run diverged (training loss {where['loss']} at step {where['step']} "
        "of epoch 1); lower --learning_rate, and --overwrite to start again")


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="this host has a GPU")
def test_a_gpu_run_without_a_gpu_is_refused_before_anything_is_written(tiny_records, tmp_path):
    done = run_module("trainer.task", f"--data_dir={tiny_records}", f"--model_dir={tmp_path / 'run'}",
                      "--accelerator=gpu")
    assert done.returncode == 2 and done.stdout == "" and not (tmp_path / "run").exists()
    assert done.stderr.strip().splitlines() == [
        "error: --accelerator=gpu: TensorFlow finds no GPU on this host (no driver, or CUDA libraries it cannot load; "
        "TF_CPP_MIN_LOG_LEVEL=0 shows why); give --accelerator=cpu to train on the CPU"]


def test_missing_data_dir_is_named(tmp_path):
    done = run_module("trainer.task", f"--model_dir={tmp_path}")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "--data_dir" in done.stderr


def _paused_step(stdout: str) -> int:
    return int(re.search(r"Paused after step (\d+)/", stdout).group(1))


def test_a_paused_run_resumes_its_time_budget_whichever_callbacks_it_keeps(tiny_records, tmp_path):
    """--budget_ends=pause checkpoints and exits 0 unfinished; resumed without early stopping, the time budget
    still knows the time it used (each callback's state is its own, not a position in a list)."""
    flags = _flags(tiny_records, tmp_path, "--model=lowres_unet", "--loss=mae", "--steps_per_epoch=100000",
                   "--epochs=1", "--log_images_every=0", "--budget_ends=pause", "--time_budget_minutes=0.3")
    first = run_module("trainer.task", *flags, "--early_stopping_patience=3")
    assert first.returncode == 0 and not (tmp_path / "metrics.json").exists(), first.stderr[-3000:]
    assert "Epoch 1 (of at most 1; time budget 0.3 min)" in first.stdout.splitlines()
    again = run_module("trainer.task", *flags, "--early_stopping_patience=0")
    assert again.returncode == 0, again.stderr[-3000:]
    assert _paused_step(again.stdout) - _paused_step(first.stdout) == 1  # its 18 s were used: one more step


def test_resuming_on_another_number_of_replicas_is_refused_in_one_line(tiny_records, tmp_path):
    flags = _flags(tiny_records, tmp_path, "--model=lowres_unet", "--loss=mae", "--log_images_every=0",
                   "--steps_per_epoch=100000", "--epochs=1", "--budget_ends=pause", "--time_budget_minutes=0.02")
    assert run_module("trainer.task", *flags).returncode == 0
    done = run_module("trainer.task", *flags, "--logical_cpus=2", "--strategy=mirrored")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert ("the checkpoint's data position was saved with 1 replica(s) on 1 worker(s), this run has 2 on 1"
            in done.stderr)
