"""A local Cloud Storage server (gcp-storage-emulator, from PyPI) for the Beam job's gs:// tests.

The tests talk to it over the Cloud Storage JSON API with urllib, as any
client does; the Beam job talks to it with Beam's own Cloud Storage client,
which STORAGE_EMULATOR_HOST points at it.
"""

import errno
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

# The emulator ignores credentials, but Beam's client looks for some first: finding none, it retries
# four times with backoff (about 20 s here) before it connects anonymously, in every process. An access
# token that never expires is found at once and never refreshed, so nothing leaves this machine.
_EMULATOR_CREDENTIALS = {"type": "authorized_user", "client_id": "emulator", "client_secret": "emulator",
                         "refresh_token": "emulator", "token": "emulator", "expiry": "2999-01-01T00:00:00Z"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Emulator:
    """The emulator as a process on a free 127.0.0.1 port, in memory; `with Emulator(folder) as gcs:`."""

    def __init__(self, folder):
        self._folder = folder
        self.url = f"http://127.0.0.1:{free_port()}"
        self._process = None

    def __enter__(self):
        port = self.url.rsplit(":", 1)[1]
        self._process = subprocess.Popen(
            [sys.executable, "-m", "gcp_storage_emulator", "start", "--host=127.0.0.1", f"--port={port}",
             "--in-memory", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"the storage emulator did not start on {self.url}")
            time.sleep(0.2)
        return self

    def __exit__(self, *_):
        self._process.terminate()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=5):
                return True
        except OSError:
            return False

    def env(self) -> dict[str, str]:
        """What a process needs to use the emulator for gs:// paths."""
        credentials = self._folder / "emulator_credentials.json"
        credentials.write_text(json.dumps(_EMULATOR_CREDENTIALS))
        return {"STORAGE_EMULATOR_HOST": self.url, "GOOGLE_APPLICATION_CREDENTIALS": str(credentials),
                "GOOGLE_CLOUD_PROJECT": "emulator"}

    def _call(self, method: str, path: str, data: bytes | None = None, kind: str = "application/octet-stream"):
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers={"Content-Type": kind})
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.read()

    def create_bucket(self, bucket: str) -> None:
        self._call("POST", "/storage/v1/b?project=emulator", json.dumps({"name": bucket}).encode(), "application/json")

    def upload(self, bucket: str, name: str, data: bytes) -> None:
        query = urllib.parse.urlencode({"uploadType": "media", "name": name})
        self._call("POST", f"/upload/storage/v1/b/{bucket}/o?{query}", data)

    def download(self, bucket: str, name: str) -> bytes:
        return self._call("GET", f"/storage/v1/b/{bucket}/o/{urllib.parse.quote(name, safe='')}?alt=media")

    def names(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object name in `bucket` that starts with `prefix`, sorted."""
        names, token = [], None
        while True:
            query = urllib.parse.urlencode({"prefix": prefix, **({"pageToken": token} if token else {})})
            listing = json.loads(self._call("GET", f"/storage/v1/b/{bucket}/o?{query}"))
            names += [item["name"] for item in listing.get("items", [])]
            token = listing.get("nextPageToken")
            if not token:
                return sorted(names)


def waiting_reader(fifo, process: subprocess.Popen, seconds: float = 600) -> int:
    """Block until `process` opens the named pipe `fifo` to read it; return a descriptor that writes to it."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno != errno.ENXIO:  # ENXIO: nobody has it open to read yet
                raise
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the job never read {fifo}: {process.communicate()[1][-2000:]}")
        time.sleep(0.1)
