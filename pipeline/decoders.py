"""Running a decode in a child process whose memory and CPU time the operating system bounds.

The header check (`pipeline.image_headers`) refuses most lies before any pixel is decoded, but it is a
second reading of the file: whatever it misreads (a TIFF's width typed SSHORT, which libtiff reads and it
did not), the decoder still reads as the file says. So the decode itself runs in a long-lived child
process that sets, before each call, RLIMIT_AS (address space) to what it holds plus what the photo's
header says decoding costs, and RLIMIT_CPU to its CPU time so far plus the photo's share. An allocation
past the limit fails inside the decoder (OpenCV raises, a library that aborts kills the child); a decode
past its CPU time is killed by the kernel (SIGXCPU), and one that stops making progress by the parent
after a generous wall-clock deadline. Either way the call raises `LimitExceeded` with its reason,
`too_large` or `too_slow`, and the child is replaced; nothing the file says can take the caller with it.

The children are started with `subprocess` rather than forked, so that they hold none of the caller's
threads, TensorFlow or open files, and they talk over their stdin and stdout in multiprocessing's
`Connection` framing. A result's arrays come back as pickle out-of-band buffers received straight into
their own memory: written from the child's array, read into the caller's, nothing pickled or copied
between. At most `POOL_SIZE` calls run at
once (one per core: decoding is CPU work); others wait for a free child.
"""

import fcntl
import math
import os
import pickle
import resource
import signal
import subprocess
import sys
import threading
from multiprocessing.connection import Connection

import numpy as np

POOL_SIZE = os.cpu_count() or 1
# A child is given this long (wall clock) per second of its CPU budget, plus a constant: on a loaded machine a
# decode waits for a core; only one that stops making progress altogether reaches it.
WALL_SECONDS_PER_CPU_SECOND = 4
WALL_SECONDS = 10
# The child's C libraries and Python keep their working memory in few arenas, and BLAS starts no threads
# (each reserves address space that would count against the limit).
_CHILD_ENVIRONMENT = {"MALLOC_ARENA_MAX": "2", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
# The answers' pipe holds a typical photo's pixels at once (the kernel's default is 64 kB), so that the child
# writes them in one go rather than waiting for the parent to read each 64 kB.
_PIPE_BYTES = 1 << 20
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where the `pipeline` package is


class LimitExceeded(Exception):
    """A call that needed more memory or CPU time than it was allowed: reason `too_large` or `too_slow`."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    def __reduce__(self):
        return type(self), (self.reason, self.detail)


def run(function, *args, memory_bytes: int, cpu_seconds: float):
    """function(*args) in a bounded child: its result, or the exception it raised, raised here.

    function must be importable by name (a module-level function); args and the result are pickled, arrays
    out of band. memory_bytes is address space beyond what the child holds before the call.

    Raises:
      LimitExceeded: the call ran out of memory (too_large) or time (too_slow); its child is replaced.
    """
    with _slots:
        try:
            child = _idle.pop()
        except IndexError:
            child = _Child()
        try:
            outcome, value = child.call(function, args, memory_bytes, cpu_seconds)
        except BaseException:
            child.close()
            raise
        _idle.append(child)
    if outcome == "raised":
        raise value
    return value


_slots = threading.BoundedSemaphore(POOL_SIZE)
_idle: list["_Child"] = []  # list.pop and append are atomic; at most POOL_SIZE children exist


class _Child:
    """One decoder process and its two pipe ends."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.decoders"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env={**os.environ, **_CHILD_ENVIRONMENT,
                 "PYTHONPATH": os.pathsep.join(filter(None, (_ROOT, os.environ.get("PYTHONPATH"))))})
        self._to = Connection(os.dup(self.process.stdin.fileno()), readable=False)
        self._from = Connection(os.dup(self.process.stdout.fileno()), writable=False)
        fcntl.fcntl(self._from.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        self.process.stdin.close()
        self.process.stdout.close()

    def call(self, function, args, memory_bytes: int, cpu_seconds: float) -> tuple[str, object]:
        cpu = max(1, math.ceil(cpu_seconds))
        try:
            self._to.send_bytes(pickle.dumps((function, args, int(memory_bytes), cpu), protocol=5))
            if not self._from.poll(WALL_SECONDS + WALL_SECONDS_PER_CPU_SECOND * cpu):
                self.process.kill()
                raise LimitExceeded("too_slow", f"no answer within {WALL_SECONDS + WALL_SECONDS_PER_CPU_SECOND * cpu} "
                                                f"s (its CPU budget was {cpu} s)")
            return _receive(self._from)
        except (EOFError, OSError):
            status = self.process.wait()
        if status == -signal.SIGXCPU:
            raise LimitExceeded("too_slow", f"decoding it took more than its {cpu} s of CPU time")
        raise LimitExceeded("too_large", f"the decoder died ({_how(status)}) within its {memory_bytes >> 20} MB "
                                         "of memory")

    def close(self) -> None:
        self._to.close()
        self._from.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def _how(status: int) -> str:
    return f"signal {signal.Signals(-status).name}" if status < 0 else f"exit status {status}"


def _send(connection: Connection, outcome: str, value) -> None:
    """(outcome, value) as a pickle with the sizes of its out-of-band buffers, then the buffers' bytes as they are,
    written straight from the arrays' memory."""
    buffers = []
    head = pickle.dumps((outcome, value), protocol=5, buffer_callback=buffers.append)
    connection.send_bytes(pickle.dumps((head, [buffer.raw().nbytes for buffer in buffers])))
    for buffer in buffers:
        view = buffer.raw()
        while view:
            view = view[os.write(connection.fileno(), view):]


def _receive(connection: Connection) -> tuple[str, object]:
    """What `_send` sent; the buffers' bytes are read straight into the arrays they become."""
    head, sizes = pickle.loads(connection.recv_bytes())
    buffers = [np.empty(size, np.uint8) for size in sizes]
    for buffer in buffers:
        view = memoryview(buffer)
        while view:
            got = os.readv(connection.fileno(), [view])
            if not got:
                raise EOFError
            view = view[got:]
    return pickle.loads(head, buffers=buffers)


def _limit(memory_bytes: int, cpu_seconds: int) -> None:
    """This process may grow by memory_bytes of address space and use cpu_seconds more of CPU time.

    Only soft limits are set (the hard ones stay unlimited), so the next call can raise them again.
    """
    with open("/proc/self/statm") as statm:
        held = int(statm.read().split()[0]) * resource.getpagesize()
    used = resource.getrusage(resource.RUSAGE_SELF)
    resource.setrlimit(resource.RLIMIT_AS, (held + memory_bytes, resource.RLIM_INFINITY))
    resource.setrlimit(resource.RLIMIT_CPU, (math.ceil(used.ru_utime + used.ru_stime) + cpu_seconds,
                                             resource.RLIM_INFINITY))


def _unlimit() -> None:
    for limit in (resource.RLIMIT_AS, resource.RLIMIT_CPU):
        resource.setrlimit(limit, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def _serve() -> None:
    """The child: calls from stdin, answers on stdout, until the parent closes the pipe.

    Anything a decoder prints goes to stderr: stdout is the answers' pipe only. No core files are written
    when a decode is killed.
    """
    requests, answers = Connection(os.dup(0), writable=False), Connection(os.dup(1), readable=False)
    os.dup2(2, 1)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    while True:
        try:
            function, args, memory_bytes, cpu_seconds = pickle.loads(requests.recv_bytes())
        except EOFError:
            return
        _limit(memory_bytes, cpu_seconds)
        try:
            outcome, value = "returned", function(*args)
        except MemoryError:
            outcome, value = "raised", LimitExceeded("too_large", f"decoding it needs more than its "
                                                                  f"{memory_bytes >> 20} MB of memory")
        except Exception as error:  # noqa: BLE001  the caller's: raised there as it was raised here
            outcome, value = "raised", error
        _unlimit()
        try:
            _send(answers, outcome, value)
        except (pickle.PicklingError, TypeError, AttributeError):
            _send(answers, "raised", RuntimeError(f"{type(value).__name__}: {value}"))


if __name__ == "__main__":
    _serve()
