"""Trainer processes as the resume and multi-worker tests drive them: read line by line, killed at chosen moments."""

import fnmatch
import os
import socket
import subprocess
import threading
import time

from tests.conftest import REPO


class Attempt:
    """One `python -m trainer.task` process, its stdout read line by line as it comes."""

    def __init__(self, command, stderr_path, env=None):
        self.started = time.time()
        self._stderr_path = stderr_path
        with open(stderr_path, "w") as stderr:
            self.process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"})
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    def wrote_since_start(self, folder, pattern="*"):
        """True once this process has started writing a file matching `pattern` in `folder`."""
        # os.walk, not Path.rglob: a folder the run removes mid-walk (a checkpoint's *_temp) is skipped, where
        # rglob raises.
        for root, folders, files in os.walk(folder):
            for name in fnmatch.filter(folders + files, pattern):
                try:
                    if os.stat(os.path.join(root, name)).st_mtime >= self.started:
                        return True
                except FileNotFoundError:  # renamed away between the listing and the look
                    pass
        return False

    def finish(self):
        self.process.wait()
        self._reader.join()
        return self.process.returncode, "".join(self.lines), self._stderr_path.read_text()


def free_ports(count):
    """`count` ports free on 127.0.0.1 a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
