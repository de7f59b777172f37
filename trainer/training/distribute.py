"""Choosing devices and a tf.distribute strategy, and who writes files.

The same command runs on a laptop CPU (one device), on one host with several
GPUs (MirroredStrategy) and on several hosts (MultiWorkerMirroredStrategy,
configured by the TF_CONFIG the platform sets). Only the chief writes
checkpoints, logs and exports; other workers' copies go to a scratch folder.
"""

import dataclasses
import functools
import json
import os
import tempfile

import tensorflow as tf

from pipeline.errors import ConfigError

STRATEGIES = ("auto", "mirrored", "multi_worker", "one_device")
ACCELERATORS = ("auto", "gpu", "cpu")


@dataclasses.dataclass(frozen=True)
class Cluster:
    """This process's place in a multi-worker cluster (one worker when TF_CONFIG is unset)."""

    workers: int = 1
    task_type: str = "worker"
    task_index: int = 0
    has_chief_task: bool = False

    @property
    def is_chief(self) -> bool:
        """The "chief" task if the cluster has one, else worker 0."""
        if self.has_chief_task:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0

    @property
    def id_in_cluster(self) -> int:
        """This worker's number, from 0: the chief first, as TensorFlow numbers a cluster's input pipelines."""
        if self.has_chief_task:
            return 0 if self.task_type == "chief" else self.task_index + 1
        return self.task_index


def read_cluster(environ=os.environ) -> Cluster:
    """Parse and check TF_CONFIG."""
    text = environ.get("TF_CONFIG", "").strip()
    if not text:
        return Cluster()
    try:
        config = json.loads(text)
        spec, task = config.get("cluster", {}), config.get("task", {})
        task_type, task_index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ConfigError(f"TF_CONFIG is not valid: {error!r}; expected "
                          '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}') from None
    addresses = [address for role in ("chief", "worker") for address in spec.get(role, [])]
    if len(set(addresses)) != len(addresses):
        raise ConfigError(f"TF_CONFIG names the same address twice: {addresses}")
    if task_type not in spec or not 0 <= task_index < len(spec[task_type]):
        raise ConfigError(f"TF_CONFIG task {task_type}:{task_index} is not in its cluster {spec}")
    return Cluster(len(addresses), task_type, task_index, "chief" in spec)


def use_accelerator(setting: str) -> None:
    """Before TensorFlow initializes its devices: `cpu` hides every GPU; `gpu` refuses to start without one.

    TensorFlow's own notice that it found no usable GPU is hidden with the rest of its start-up
    noise (`trainer.command`), so without this a job meant for GPUs would train on the CPU unsaid.
    """
    gpus = tf.config.list_physical_devices("GPU")
    if setting == "gpu" and not gpus:
        raise ConfigError("--accelerator=gpu: TensorFlow finds no GPU on this host (no driver, or CUDA libraries it "
                          "cannot load; TF_CPP_MIN_LOG_LEVEL=0 shows why); give --accelerator=cpu to train on the CPU")
    if setting == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")


def split_cpu(logical_devices: int) -> None:
    """Present the CPU as several logical devices (before TensorFlow starts), to run multi-device code on a CPU."""
    if logical_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * logical_devices)


def _local_devices() -> list[str]:
    accelerators = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU")
    return [d.name for d in accelerators or tf.config.list_logical_devices("CPU")]


def make_strategy(name: str, cluster: Cluster) -> tf.distribute.Strategy:
    """auto: multi-worker under a TF_CONFIG cluster, else mirrored over several local devices, else one device."""
    if name not in STRATEGIES:
        raise ConfigError(f"--strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "multi_worker" or (name == "auto" and cluster.workers > 1):
        # Before anything else touches TensorFlow's runtime: collectives are configured at start-up.
        return tf.distribute.MultiWorkerMirroredStrategy()
    devices = _local_devices()
    if name == "auto":
        name = "mirrored" if len(devices) > 1 else "one_device"
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.OneDeviceStrategy(devices[0])


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    """The --strategy value that names this strategy."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multi_worker"
    return "mirrored" if isinstance(strategy, tf.distribute.MirroredStrategy) else "one_device"


def describe(strategy: tf.distribute.Strategy, cluster: Cluster) -> str:
    """Where a run trains: this worker's devices, the strategy, its replicas and workers."""
    devices = ", ".join(name.split("device:")[-1] for name in strategy.extended.worker_devices)
    return (f"{devices}, strategy {strategy_name(strategy)} ({strategy.num_replicas_in_sync} replica(s) on "
            f"{cluster.workers} worker(s))")


def jit_default(setting: str) -> bool:
    """auto: XLA on GPUs and TPUs; off on CPUs, where it made the seed model's step 2x slower."""
    if setting == "auto":
        return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))
    return setting == "true"


def writable_dir(model_dir: str, cluster: Cluster) -> str:
    """model_dir on the chief; a scratch folder elsewhere, so workers never overwrite the chief's files."""
    if cluster.is_chief:
        return model_dir
    return tempfile.mkdtemp(prefix=f"worker-{cluster.task_index}-")


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Wait until every worker gets here (an all-reduce of nothing)."""
    _all_reduce_of_nothing(strategy)()


@functools.lru_cache(maxsize=None)
def _all_reduce_of_nothing(strategy: tf.distribute.Strategy):
    """One tf.function per strategy, traced once: a new one per barrier would be traced at every checkpoint."""
    return tf.function(lambda: strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)),
                                               axis=None))


def agreed(strategy: tf.distribute.Strategy, value, is_chief: bool):
    """The chief's `value` (a dataclass of ints, e.g. where training resumes), checked against this worker's.

    Every worker reads the run's folder; a worker that sees another backup than the chief
    (a --model_dir not shared between the hosts) would train from elsewhere: refused.
    """
    numbers = dataclasses.astuple(value)
    local_replicas = len(strategy.extended.worker_devices)

    def share():  # made inside each replica, so that each gives a value of its own to sum
        return tf.constant(numbers if is_chief else [0] * len(numbers), tf.float64) / local_replicas

    @tf.function
    def chiefs():
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(share), axis=None)

    chief = type(value)(*(int(round(float(n))) for n in chiefs()))
    if chief != value:
        raise ConfigError(f"this worker finds {value} in --model_dir, the chief {chief}: every worker must "
                          "see the same --model_dir (a shared file system, e.g. gs://)")
    return chief
