"""tf.data service: a real dispatcher and two real workers on 127.0.0.1 make the training stream's batches,
and the trainer trains through them."""

import csv
import hashlib
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline.errors import ConfigError
from trainer import data_service
from trainer.training import backup, run
from trainer.training.config import RunConfig
from trainer.training.splits import Splits
from tests.conftest import REPO, run_module
from tests.trainer_processes import free_ports

EPOCH_STEPS = 3
EPOCHS_LOOKED_AT = 8  # the service's batches are looked for among this many epochs of the stream without it


def _start(*args) -> tuple[subprocess.Popen, str]:
    """A `python -m trainer.data_service` process and the line it prints once it serves."""
    process = subprocess.Popen([sys.executable, "-m", "trainer.data_service", *args], cwd=REPO, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = process.stdout.readline()
    assert "serving at" in line, (args, line)
    return process, line


@pytest.fixture(scope="module")
def service():
    """grpc://127.0.0.1:PORT of a dispatcher with two workers, each its own process."""
    processes = []
    try:
        dispatcher, line = _start("dispatcher", "--port=0")
        processes.append(dispatcher)
        address = f"127.0.0.1:{line.rsplit(':', 1)[1].strip()}"
        for _ in range(2):
            processes.append(_start("worker", f"--dispatcher={address}", "--port=0", "--worker_host=127.0.0.1")[0])
        yield f"grpc://{address}"
    finally:
        for process in processes:
            process.terminate()
            process.wait()


def _stream(records, start: backup.Position, count: int, service_address=None) -> list[str]:
    """Fingerprints of `count` training batches from `start`, as the trainer's stream gives them."""
    config = RunConfig(str(records), "", seed=7, data_service=service_address)
    keras.utils.set_random_seed(config.seed)
    stream = run.training_stream(Splits(config, 8), config, 8, EPOCH_STEPS, start)
    return [hashlib.sha1(l8.numpy().tobytes() + ab8.numpy().tobytes()).hexdigest()
            for l8, ab8 in stream.take(count)]


def test_the_workers_make_the_streams_batches_each_once(tiny_records, service):
    """Every batch from the service is one the stream without it gives, none twice: only the order differs."""
    alone = _stream(tiny_records, backup.Position(), EPOCHS_LOOKED_AT * EPOCH_STEPS)
    served = _stream(tiny_records, backup.Position(), 2 * EPOCH_STEPS, service)
    assert len(set(served)) == len(served) == 2 * EPOCH_STEPS
    assert set(served) <= set(alone)


def test_a_resumed_stream_through_the_service_skips_what_its_epoch_had_done(tiny_records, service):
    """The resumed epoch's next batch comes, from whichever worker took that epoch, and nothing done before it.

    How many batches the other worker serves first depends on how soon each worker starts (later on a
    loaded machine): eight epochs' worth of served batches are read, not two, and compared with twice as
    many epochs of the stream without the service.
    """
    alone = _stream(tiny_records, backup.Position(), (1 + 2 * EPOCHS_LOOKED_AT) * EPOCH_STEPS)
    served = _stream(tiny_records, backup.Position(1, 2), EPOCHS_LOOKED_AT * EPOCH_STEPS, service)
    assert alone[EPOCH_STEPS + 2] in served
    assert set(served) <= set(alone[EPOCH_STEPS + 2:]) and len(set(served)) == len(served)


def test_the_trainer_trains_through_the_service(tiny_records, service, tmp_path):
    done = run_module("trainer.task", f"--data_dir={tiny_records}", f"--model_dir={tmp_path}", "--epochs=2",
                      "--steps_per_epoch=3", "--batch_size=8", "--seed=5", "--log_images_every=0",
                      f"--data_service={service}")
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / "history.csv") as handle:
        history = list(csv.DictReader(handle))
    assert [row["steps"] for row in history] == ["3.0", "3.0"]
    assert all(np.isfinite(float(row["loss"])) and np.isfinite(float(row["val_loss"])) for row in history)


@pytest.mark.parametrize("address, says", [("127.0.0.1:5050", "grpc://HOST:PORT"),
                                           ("grpc://127.0.0.1:{free}", "no tf.data service dispatcher answers")])
def test_a_dispatcher_that_is_not_there_is_named_in_one_line(address, says):
    with pytest.raises(ConfigError, match=says):
        data_service.distribute(tf.data.Dataset.range(3), address.format(free=free_ports(1)[0]))


def test_the_servers_say_they_listen_on_every_interface_without_authentication():
    """Bound to every interface, the dispatcher answers on 127.0.0.2 too, which a server bound to 127.0.0.1 would
    not; its second line says so."""
    dispatcher, line = _start("dispatcher", "--port=0")
    try:
        assert data_service.EXPOSURE in dispatcher.stdout.readline()
        socket.create_connection(("127.0.0.2", int(line.rsplit(":", 1)[1])), 10).close()
    finally:
        dispatcher.terminate()
        dispatcher.wait()


def test_the_command_lists_its_flags_and_refuses_a_missing_role():
    shown = run_module("trainer.data_service", "--help")
    assert shown.returncode == 0 and all(flag in shown.stdout for flag in ("--port", "--dispatcher", "--worker_host"))
    refused = run_module("trainer.data_service", "--port=0")
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
        "error: give one role, dispatcher or worker (got none)"]
