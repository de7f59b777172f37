"""Cluster configuration (TF_CONFIG), strategy choice and who writes files."""

import json

import pytest
import tensorflow as tf

from trainer.training import distribute


def _config(cluster, task_type="worker", index=0):
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})}


def test_no_tf_config_is_one_worker_that_is_the_chief():
    cluster = distribute.read_cluster({})
    assert cluster.workers == 1 and cluster.is_chief


def test_worker_zero_is_the_chief_of_a_worker_only_cluster():
    workers = {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}
    assert distribute.read_cluster(_config(workers, index=0)).is_chief
    second = distribute.read_cluster(_config(workers, index=1))
    assert second.workers == 2 and not second.is_chief


def test_a_chief_task_is_the_chief_as_vertex_ai_sets_it():
    cluster = {"chief": ["10.0.0.1:2222"], "worker": ["10.0.0.2:2222", "10.0.0.3:2222"]}
    assert distribute.read_cluster(_config(cluster, "chief")).is_chief
    worker = distribute.read_cluster(_config(cluster, "worker", 0))
    assert worker.workers == 3 and not worker.is_chief


@pytest.mark.parametrize("environ,message", [
    ({"TF_CONFIG": "{not json"}, "TF_CONFIG is not valid"),
    ({"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1"]}})}, "TF_CONFIG is not valid"),
    (_config({"worker": ["h:1", "h:1"]}), "names the same address twice"),
    (_config({"worker": ["h:1", "h:2"]}, index=2), "task worker:2 is not in its cluster"),
])
def test_bad_tf_config_is_named(environ, message):
    with pytest.raises(distribute.ConfigError, match=message):
        distribute.read_cluster(environ)


def test_only_the_chief_writes_into_model_dir(tmp_path):
    chief = distribute.Cluster(2, "worker", 0)
    other = distribute.Cluster(2, "worker", 1)
    assert distribute.writable_dir(str(tmp_path), chief) == str(tmp_path)
    assert not distribute.writable_dir(str(tmp_path), other).startswith(str(tmp_path))


def test_unknown_strategy_is_named():
    with pytest.raises(distribute.ConfigError, match="'horovod'"):
        distribute.make_strategy("horovod", distribute.Cluster())


@pytest.mark.parametrize("devices,expected", [
    ({"CPU": ["cpu:0"]}, False),
    ({"CPU": ["cpu:0"], "GPU": ["gpu:0"]}, True),
    ({"CPU": ["cpu:0"], "TPU": ["tpu:0"]}, True),
])
def test_xla_default_is_on_with_an_accelerator_and_off_without(monkeypatch, devices, expected):
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: devices.get(kind, []))
    assert distribute.jit_default("auto") is expected


def test_xla_setting_is_obeyed_when_given():
    assert distribute.jit_default("true") is True and distribute.jit_default("false") is False


def test_workers_take_the_chiefs_starting_point():
    from trainer.training.backup import Position

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    assert distribute.agreed(strategy, Position(2, 3), is_chief=True) == Position(2, 3)
    with pytest.raises(distribute.ConfigError, match=r"this worker finds Position\(epoch=2, step=3\) in "
                                                      r"--model_dir, the chief Position\(epoch=0, step=0\)"):
        distribute.agreed(strategy, Position(2, 3), is_chief=False)  # a one-worker cluster whose chief is not it


def test_a_barrier_is_traced_once_however_often_a_run_passes_it():
    strategy = tf.distribute.get_strategy()
    for _ in range(3):
        distribute.barrier(strategy)
    assert distribute._all_reduce_of_nothing(strategy).experimental_get_tracing_count() == 1
