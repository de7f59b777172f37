"""tf.data service: TensorFlow's own dispatcher and workers, to make the trainer's input on other cores or hosts.

    python -m trainer.data_service dispatcher --port 5050
    python -m trainer.data_service worker --dispatcher HOST:5050 --port 5051 [--worker_host HOST]
    python -m trainer.task --data_dir RECORDS --model_dir RUN --data_service grpc://HOST:5050

A host whose cores cannot read, parse and augment as fast as its accelerators
train hands that work to workers elsewhere: the trainer sends its input
pipeline's graph to the dispatcher, each worker runs it on its own CPU and
streams finished uint8 batches back. Workers read the records themselves, so
they must see --data_dir at the same path (gs:// on the cloud). Start one
dispatcher, then any number of workers; workers may join while a run trains.

Each worker takes whole epochs of the training stream from the dispatcher
(dynamic sharding over the epoch numbers) and makes them exactly as the
trainer alone would; the trainer takes batches from whichever worker has one
ready. So a run sees the same batches, but not in the same order, and its
weights differ from a run without the service; see README, "tf.data service".
"""

from trainer import command  # first: it quiets TensorFlow's start-up

import re
import socket
import sys

import tensorflow as tf
from absl import flags

from pipeline.errors import ConfigError, UsageError

ROLES = ("dispatcher", "worker")
# TensorFlow's servers take no address to bind to and no credentials: each listens on every interface of its
# host, and anyone who reaches the port may send it a graph to run or take its batches. Said when each starts.
EXPOSURE = ("it listens on every interface, without authentication: run it only inside a private network "
            "(docs/scaling.md, \"Keeping the service private\")")
REACH_SECONDS = 20  # how long the trainer waits for the dispatcher to answer before saying it does not
_ADDRESS = re.compile(r"grpc://(?P<host>[^:/]+):(?P<port>\d+)")


def _reachable(address: str) -> str:
    """`address` if it is grpc://HOST:PORT and something listens there; else a one-line error.

    The service's client would otherwise retry silently, and the trainer would wait forever."""
    match = _ADDRESS.fullmatch(address)
    if not match:
        raise ConfigError(f"--data_service={address}: give the dispatcher as grpc://HOST:PORT")
    try:
        socket.create_connection((match["host"], int(match["port"])), REACH_SECONDS).close()
    except OSError as error:
        raise ConfigError(f"--data_service={address}: no tf.data service dispatcher answers there ({error}); "
                          "start one with `python -m trainer.data_service dispatcher`") from None
    return address


def distribute(dataset: tf.data.Dataset, address: str | None) -> tf.data.Dataset:
    """`dataset` made by the service's workers when `address` names a dispatcher; itself otherwise.

    Dynamic sharding hands the dataset's source (for the training stream, its epoch numbers)
    out to the workers one element at a time. Batches travel uncompressed: photos in uint8
    compress little, and inflating them would spend the trainer's CPU the service is there to spare.
    """
    if not address:
        return dataset
    return dataset.apply(tf.data.experimental.service.distribute(
        processing_mode=tf.data.experimental.service.ShardingPolicy.DYNAMIC, service=_reachable(address),
        compression=None))


def _define_flags():
    """The command's flags, defined only when it runs: the trainer imports `distribute` without them."""
    flags.DEFINE_integer("port", 0, "Port to serve on (0: any free port; the address is printed).",
                         lower_bound=0, upper_bound=65535)
    flags.DEFINE_string("dispatcher", None, "worker: the dispatcher's HOST:PORT.")
    flags.DEFINE_string("worker_host", "localhost", "worker: the name or address trainers reach this worker at "
                        "(on several hosts, one they can resolve: the pod's IP or DNS name).")
    flags.DEFINE_string("work_dir", None, "dispatcher: a folder (local or gs://) where it journals its state, "
                        "so that a restarted dispatcher carries on the jobs it had (fault-tolerant mode).")


def _serve(role: str, values) -> None:
    if role == "dispatcher":
        server = tf.data.experimental.service.DispatchServer(tf.data.experimental.service.DispatcherConfig(
            port=values.port, work_dir=values.work_dir, fault_tolerant_mode=bool(values.work_dir)))
        print(f"tf.data service dispatcher serving at grpc://{socket.gethostname()}:{server.target.rsplit(':', 1)[1]}",
              flush=True)
    else:
        if not values.dispatcher:
            raise UsageError("worker: give --dispatcher HOST:PORT")
        server = tf.data.experimental.service.WorkerServer(tf.data.experimental.service.WorkerConfig(
            dispatcher_address=values.dispatcher.removeprefix("grpc://"), port=values.port,
            worker_address=f"{values.worker_host}:%port%"))
        port = server._address.rsplit(":", 1)[1]  # the bound port; WorkerServer has no public accessor for it
        print(f"tf.data service worker serving at {values.worker_host}:{port}, "
              f"dispatcher {values.dispatcher}", flush=True)
    print(f"Note: {EXPOSURE}.", flush=True)
    server.join()


def main(argv):
    if len(argv) != 2 or argv[1] not in ROLES:
        raise UsageError(f"give one role, {' or '.join(ROLES)} (got {' '.join(argv[1:]) or 'none'})")
    _serve(argv[1], flags.FLAGS)


if __name__ == "__main__":
    _define_flags()
    command.run(main, takes_arguments=True)
    sys.exit(0)
