"""The colour-hint web app, run as a person runs it: a real server process, real HTTP, a real headless Chromium."""

import concurrent.futures
import dataclasses
import json
import os
import pathlib
import re
import select
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http import client as http_client

import cv2
import keras
import numpy as np
import pytest

from tests import fuzz_corpus
from tests.conftest import REPO, draw_photo, run_module, write_image
from trainer.applying import web_app

CHROMEDRIVER = pathlib.Path("/usr/bin/chromedriver")
WAIT_SECONDS = 240  # the machine may be busy training: waits are on conditions, and generous
PAGE_FILES = ("index.html", "app.js", "app.css", "favicon.svg")


def hint_painter(path: pathlib.Path, size: int = 32, reach: int = 17) -> pathlib.Path:
    """A hint-aware network that paints each hint's colour over a wide square around it, and nothing elsewhere.

    An untrained net need not respond to hints, and a net that only copies its 5x5 hint patches is mostly
    averaged away by the edge-aware upsampling: this one makes "the colour moved toward the hint" certain.
    """
    inputs = keras.Input((size, size, 4))  # L, hint a, hint b, hint mask
    spread = keras.layers.Conv2D(2, reach, padding="same", use_bias=False, trainable=False)(inputs)
    net = keras.Model(inputs, spread)
    kernel = np.zeros((reach, reach, 4, 2), np.float32)
    kernel[:, :, 1, 0] = kernel[:, :, 2, 1] = 1 / 25  # a hint patch is 5x5 cells
    net.layers[-1].set_weights([kernel])
    net.save(path)
    return path


def start_app(folder: pathlib.Path, *flags: str) -> tuple[subprocess.Popen, str]:
    """`python -m trainer.app --port=0 flags...` in its own process; returns it and the address it printed."""
    folder.mkdir(parents=True, exist_ok=True)
    stdout, stderr = folder / "stdout.txt", folder / "stderr.txt"
    with open(stdout, "w") as out, open(stderr, "w") as err:
        process = subprocess.Popen([sys.executable, "-m", "trainer.app", "--port=0", *flags], cwd=REPO,
                                   stdout=out, stderr=err)
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        words = stdout.read_text().split()
        if any(word.startswith("http://") for word in words):
            return process, next(word for word in words if word.startswith("http://"))
        time.sleep(0.2)
    stop(process)
    raise AssertionError(f"the app did not print its address:\n{stderr.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def http(url: str, data: bytes | None = None, content_type: str = "application/octet-stream"):
    """(status, headers, body) of a GET, or of a POST when there is data; refusals are answers too."""
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type} if data is not None else {})
    try:
        with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def upload(url: str, data: bytes) -> dict:
    status, _, body = http(f"{url}api/photos", data)
    assert status == 201, body
    return json.loads(body)


def colourize(url: str, photo_id: str, hints: list[dict]):
    return http(f"{url}api/photos/{photo_id}/colourize", json.dumps({"hints": hints}).encode(), "application/json")


def decode(png: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)


def mean_ab(bgr: np.ndarray, x: float, y: float, radius: int = 12) -> np.ndarray:
    """Mean Lab ab (signed) of the window around (x, y)."""
    x, y = int(x), int(y)
    window = bgr[y - radius:y + radius + 1, x - radius:x + radius + 1]
    return cv2.cvtColor(window, cv2.COLOR_BGR2LAB)[..., 1:].reshape(-1, 2).mean(axis=0) - 128.0


def hex_ab(colour: str) -> np.ndarray:
    rgb = np.array([[[int(colour[i:i + 2], 16) for i in (1, 3, 5)]]], np.uint8)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)[0, 0, 1:].astype(np.float64) - 128.0


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> pathlib.Path:
    """A drawn flower photo at 1024x768."""
    source = draw_photo("poppy", 0, 240, 320)
    path = tmp_path_factory.mktemp("photo") / "poppy.jpg"
    return write_image(path, cv2.resize(source, (1024, 768), interpolation=cv2.INTER_CUBIC),
                       cv2.IMWRITE_JPEG_QUALITY, 92)


REQUEST_SECONDS = 20  # the test app's deadline for a whole request


@dataclasses.dataclass(frozen=True)
class App:
    url: str
    process: subprocess.Popen
    stderr: pathlib.Path


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app on the hint painter, with limits low enough to test cheaply: 1 MB, 1 megapixel."""
    folder = tmp_path_factory.mktemp("app")
    model = hint_painter(folder / "painter.keras")
    process, url = start_app(folder, f"--model={model}", "--max_upload_mb=1", "--max_pixels=1000000",
                             f"--request_seconds={REQUEST_SECONDS}")
    yield App(url, process, folder / "stderr.txt")
    stop(process)


@pytest.fixture(scope="module")
def app_url(app) -> str:
    return app.url


def test_the_page_is_served_from_the_package_and_fetches_nothing_from_elsewhere(app_url):
    status, headers, body = http(app_url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert app_url.startswith("http://127.0.0.1:")
    for name in PAGE_FILES:
        status, _, body = http(f"{app_url}{name}")
        assert status == 200, name
        addresses = set(re.findall(rb"https?://[^\s\"')]+", body)) - {b"http://www.w3.org/2000/svg"}  # a namespace
        assert not addresses, name


@pytest.mark.parametrize("data,status,message", [
    (b"hello, I am not a photo", 400, "This file is not an image"),
    (os.urandom(1_200_000), 413, "is 1.2 MB, more than the limit of 1 MB (--max_upload_mb)"),
    (cv2.imencode(".png", np.zeros((1000, 1200), np.uint8))[1].tobytes(), 413,
     "This photo has too many pixels: 1200x1000 pixels, more than the limit of 1000000"),
    (b"", 400, "This file is empty"),
])
def test_uploads_it_cannot_use_are_refused_with_a_message(app_url, data, status, message):
    answer, headers, body = http(f"{app_url}api/photos", data)
    assert answer == status and headers["Content-Type"] == "application/json"
    assert message in json.loads(body)["error"]


def test_gray_and_colour_photos_come_back_colourized_at_their_own_size(app_url, photo, tmp_path):
    gray = write_image(tmp_path / "gray.png", cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2GRAY)[:517, :333])
    for path, hints in ((gray, []), (photo, [{"x": 500.5, "y": 300, "color": "#2060e8"}])):
        source = cv2.imread(str(path))
        added = upload(app_url, path.read_bytes())
        assert (added["height"], added["width"]) == source.shape[:2]
        status, headers, body = colourize(app_url, added["id"], hints)
        assert status == 200 and headers["Content-Type"] == "image/png", body[:300]
        assert "colourize;dur=" in headers["Server-Timing"]
        assert decode(body).shape == source.shape
        status, _, body = http(f"{app_url}api/photos/{added['id']}/gray.png")
        assert status == 200 and decode(body).shape == source.shape[:2]


@pytest.mark.parametrize("hints,status,message", [
    ([{"x": 2000, "y": 10, "color": "#2060e8"}], 400, "is outside the 1024x768 photo"),
    ([{"x": 10, "y": 10, "color": "blue"}], 400, "not of the form #RRGGBB"),
    ([{"x": 10, "y": 10}], 400, "Each hint needs x, y and color"),
])
def test_bad_hints_are_refused_with_a_message(app_url, photo, hints, status, message):
    added = upload(app_url, photo.read_bytes())
    answer, _, body = colourize(app_url, added["id"], hints)
    assert answer == status and message in json.loads(body)["error"]


@pytest.mark.parametrize("host,status", [("attacker.example:{port}", 403), ("localhost:{port}", 200),
                                         ("127.0.0.1:{port}", 200)])
def test_on_loopback_only_requests_addressed_to_this_computer_are_answered(app_url, host, status):
    """A page elsewhere that points a DNS name of its own at 127.0.0.1 (DNS rebinding) is refused."""
    address = urllib.parse.urlsplit(app_url)
    connection = http_client.HTTPConnection(address.hostname, address.port, timeout=WAIT_SECONDS)
    connection.request("GET", "/api/info", headers={"Host": host.format(port=address.port)})
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    assert response.status == status
    assert ("error" in body) == (status == 403)


# --- Refusing what an attacker sends ----------------------------------------------------------------------


def raw(url: str, data: bytes, timeout: float = WAIT_SECONDS) -> tuple[int, dict[str, str], bytes]:
    """Send these bytes as they are (requests no HTTP library would make) and read the answer to its end."""
    address = urllib.parse.urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=timeout) as connection:
        connection.sendall(data)
        received = b""
        while chunk := connection.recv(1 << 16):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, body


def request(url: str, method: str, path: str, body: bytes = b"", **headers: str) -> tuple[int, dict[str, str], bytes]:
    """One request with exactly these headers (and Host, Content-Length), as raw bytes."""
    host = urllib.parse.urlsplit(url).netloc
    given = {"Host": host, **({"Content-Length": str(len(body))} if body or method == "POST" else {}),
             **{name.replace("_", "-"): value for name, value in headers.items()}}
    head = "".join(f"{name}: {value}\r\n" for name, value in given.items())
    return raw(url, f"{method} {path} HTTP/1.1\r\n{head}\r\n".encode() + body)


def memory(process: subprocess.Popen) -> tuple[int, int]:
    """(resident, peak resident) bytes of a running process, from /proc."""
    fields = dict(line.split(":", 1) for line in pathlib.Path(f"/proc/{process.pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


def still_answers(url: str, photo: pathlib.Path) -> None:
    """A normal upload and colourization still work."""
    added = upload(url, photo.read_bytes())
    status, _, body = colourize(url, added["id"], [])
    assert status == 200 and decode(body).shape == (768, 1024, 3)


HEADROOM = 500 * 2**20  # bytes a request may add to the app's peak memory; decoding the CRC bomb would take 1.2 GB


def test_hostile_files_are_refused_before_decoding_and_memory_stays_bounded(app, photo):
    still_answers(app.url, photo)
    resident, peak = memory(app.process)
    for name, data, allowed in fuzz_corpus.corpus():
        status, headers, body = request(app.url, "POST", "/api/photos", data, Content_Type=web_app.PHOTO_TYPE)
        assert status in (201, 400, 413), name
        if status != 201:
            assert headers["content-type"] == "application/json" and json.loads(body)["error"].endswith("."), name
        assert status != 201 or "ok" in allowed, name
    assert memory(app.process)[1] <= max(peak, resident + HEADROOM), memory(app.process)
    still_answers(app.url, photo)


def test_the_crc_bomb_is_refused_as_too_large(app_url):
    status, _, body = request(app_url, "POST", "/api/photos", fuzz_corpus.crc_bomb(), Content_Type=web_app.PHOTO_TYPE)
    assert status == 413 and "20000x20000 pixels" in json.loads(body)["error"]


def test_a_negative_content_length_is_refused(app_url, photo):
    head = f"POST /api/photos HTTP/1.1\r\nHost: {urllib.parse.urlsplit(app_url).netloc}\r\n" \
           f"Content-Type: application/octet-stream\r\nContent-Length: -1\r\n\r\n"
    status, _, body = raw(app_url, head.encode() + os.urandom(100_000))
    assert status == 400 and "negative" in json.loads(body)["error"]
    still_answers(app_url, photo)


@pytest.mark.parametrize("headers,status", [
    ({"Origin": "https://evil.example", "Content_Type": "text/plain"}, 403),
    ({"Origin": "https://evil.example", "Content_Type": web_app.PHOTO_TYPE}, 403),
    ({"Origin": "null", "Content_Type": web_app.PHOTO_TYPE}, 403),
    ({"Content_Type": "text/plain"}, 415),
    ({"Content_Type": "multipart/form-data; boundary=x"}, 415),
    ({"Origin": "http://{host}", "Content_Type": web_app.PHOTO_TYPE}, 201),
    ({"Content_Type": web_app.PHOTO_TYPE}, 201),
])
def test_only_the_apps_own_page_may_upload(app_url, photo, headers, status):
    """Another site's script can post text/plain without asking first; the page's own types make browsers ask."""
    host = urllib.parse.urlsplit(app_url).netloc
    answer, _, body = request(app_url, "POST", "/api/photos", photo.read_bytes(),
                              **{name: value.format(host=host) for name, value in headers.items()})
    assert answer == status, body
    assert ("error" in json.loads(body)) == (status != 201)


def test_a_preflight_is_refused_and_grants_nothing(app_url):
    status, headers, body = request(app_url, "OPTIONS", "/api/photos", Origin="https://evil.example",
                                    Access_Control_Request_Method="POST",
                                    Access_Control_Request_Headers="content-type")
    assert status == 403 and "other web sites" in json.loads(body)["error"]
    assert not [name for name in headers if name.startswith("access-control-")]


def test_colourizing_from_another_site_is_refused(app_url, photo):
    added = upload(app_url, photo.read_bytes())
    payload = json.dumps({"hints": []}).encode()
    path = f"/api/photos/{added['id']}/colourize"
    assert request(app_url, "POST", path, payload, Origin="https://evil.example", Content_Type="text/plain")[0] == 403
    assert request(app_url, "POST", path, payload, Content_Type="text/plain")[0] == 415
    assert request(app_url, "POST", path, payload, Content_Type=web_app.JSON_TYPE)[0] == 200


@pytest.mark.parametrize("payload,message", [
    (b"[" * 20_000 + b"]" * 20_000, "nested too deeply"),
    (b'{"hints": [{"x": 1' + b"0" * 400 + b', "y": 5, "color": "#2060e8"}]}', "x is too large a number"),
    (b'{"hints": [{"x": 1e400, "y": 5, "color": "#2060e8"}]}', "x must be a finite number"),
    (b'{"hints": [{"x": NaN, "y": 5, "color": "#2060e8"}]}', "x must be a finite number"),
    (b'{"hints": [{"x": true, "y": 5, "color": "#2060e8"}]}', "x must be a number, not true"),
    (b'{"hints": [{"x": 5, "y": "7", "color": "#2060e8"}]}', 'y must be a number, not "7"'),
    (b'{"hints": [{"x": 5, "y": 7, "color": 123456}]}', "color must be a string #RRGGBB, not 123456"),
    (b'{"hints": [[1, 2, 3]]}', "each hint needs x, y and color"),
    (b'{"hints": {"x": 1}}', 'Expected {"hints": [...]}'),
])
def test_absurd_hints_are_refused_with_a_sentence(app_url, photo, payload, message):
    added = upload(app_url, photo.read_bytes())
    status, _, body = request(app_url, "POST", f"/api/photos/{added['id']}/colourize", payload,
                              Content_Type=web_app.JSON_TYPE)
    assert status == 400 and message in json.loads(body)["error"], body[:300]


def test_a_hints_request_over_its_limit_is_refused_naming_that_limit(app_url, photo):
    added = upload(app_url, photo.read_bytes())
    payload = b'{"hints": [], "padding": "' + b"x" * web_app.MAX_JSON_BYTES + b'"}'
    status, _, body = request(app_url, "POST", f"/api/photos/{added['id']}/colourize", payload,
                              Content_Type=web_app.JSON_TYPE)
    message = json.loads(body)["error"]
    assert status == 413 and "limit of 64 kB, the app's own for hints" in message and "--max_upload_mb" not in message


@pytest.mark.parametrize("data,status", [
    (b"PUT /api/photos HTTP/1.1\r\nHost: {host}\r\n\r\n", 501),
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: {host}\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: {host}\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: {host}\r\n" + b"X-Many: 1\r\n" * 120 + b"\r\n", 431),
    (b"GET / HTTP/1.x\r\nHost: {host}\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: {host}\r\n\r\n", 505),
    (b"GET /api/info\r\n", 400),  # HTTP/0.9, whose answer would otherwise have no status line or headers
])
def test_the_servers_own_refusals_carry_the_same_headers_and_no_python_version(app_url, data, status):
    host = urllib.parse.urlsplit(app_url).netloc.encode()
    answer, headers, body = raw(app_url, data.replace(b"{host}", host))
    assert answer == status and json.loads(body)["error"]
    for name, value in web_app._SECURITY_HEADERS.items():
        assert headers[name.lower()] == value, name
    assert headers["server"] == "flower-colorizer"


def test_a_body_that_stops_arriving_is_answered_408_at_the_deadline(app_url, photo):
    address = urllib.parse.urlsplit(app_url)
    with socket.create_connection((address.hostname, address.port), timeout=WAIT_SECONDS) as half:
        half.sendall(f"POST /api/photos HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Type: "
                     "application/octet-stream\r\nContent-Length: 5000\r\n\r\n".encode() + b"x" * 100)
        start = time.monotonic()
        answer = half.recv(1 << 16)
        waited = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert REQUEST_SECONDS - 1 < waited < WAIT_SECONDS
    still_answers(app_url, photo)


def test_a_request_line_that_never_ends_is_answered_408_at_the_deadline(app_url, photo):
    address = urllib.parse.urlsplit(app_url)
    with socket.create_connection((address.hostname, address.port), timeout=WAIT_SECONDS) as endless:
        endless.sendall(b"GET /" + b"a" * 100)
        start = time.monotonic()
        answer = endless.recv(1 << 16)
        waited = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert f"more than {REQUEST_SECONDS} seconds" in json.loads(answer.partition(b"\r\n\r\n")[2])["error"]
    assert REQUEST_SECONDS - 1 < waited < WAIT_SECONDS
    still_answers(app_url, photo)


def trickle(url: str) -> bytes | None:
    """Send a request's headers one byte at a time, each within the idle timeout, until the app answers; its
    answer, or None if it never does."""
    address = urllib.parse.urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=WAIT_SECONDS) as connection:
        connection.sendall(f"GET /api/info HTTP/1.1\r\nHost: {address.netloc}\r\nX-Slow: ".encode())
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if select.select([connection], [], [], 2)[0]:
                received = b""
                while chunk := connection.recv(1 << 16):
                    received += chunk
                return received
            try:
                connection.sendall(b"a")
            except OSError:
                return b""
    return None


def test_clients_that_trickle_their_headers_are_answered_408_at_the_deadline_and_the_app_serves_again(app_url, photo):
    """Every connection slot held by a client that sends a header byte every 2 s (each read well within the idle
    timeout): the whole request's deadline ends them all, and a request made afterwards is answered."""
    with concurrent.futures.ThreadPoolExecutor(web_app.MAX_CONNECTIONS) as pool:
        answers = list(pool.map(lambda _: trickle(app_url), range(web_app.MAX_CONNECTIONS)))
    for answer in answers:
        assert answer is not None and answer.startswith(b"HTTP/1.1 408 "), answer
        assert f"more than {REQUEST_SECONDS} seconds" in json.loads(answer.partition(b"\r\n\r\n")[2])["error"]
    still_answers(app_url, photo)


def test_connections_beyond_the_cap_are_refused_at_once_and_the_app_recovers(app_url, photo):
    address = urllib.parse.urlsplit(app_url)
    idle = [socket.create_connection((address.hostname, address.port), timeout=WAIT_SECONDS)
            for _ in range(web_app.MAX_CONNECTIONS)]
    try:
        time.sleep(1)  # the app has taken every one of them
        status, headers, body = request(app_url, "GET", "/api/info")
        assert status == 503 and "too many open connections" in json.loads(body)["error"]
        assert headers["x-content-type-options"] == "nosniff"
    finally:
        for connection in idle:
            connection.close()
    deadline = time.monotonic() + WAIT_SECONDS
    while request(app_url, "GET", "/api/info")[0] == 503 and time.monotonic() < deadline:
        time.sleep(0.2)
    still_answers(app_url, photo)


class Crowd:
    """Connections from another address (127.0.0.2) that trickle a header byte every second or stay silent, each
    opened again on the next tick (every half second) when the app drops or refuses it."""

    def __init__(self, url: str, trickling: int, idle: int):
        address = urllib.parse.urlsplit(url)
        self._target, self._host = (address.hostname, address.port), address.netloc
        self._kinds = ["trickle"] * trickling + ["idle"] * idle
        self._open: list[socket.socket | None] = [None] * len(self._kinds)
        self._stop = threading.Event()
        self.connections_made = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Crowd":
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()
        for connection in filter(None, self._open):
            connection.close()

    def _connect(self, kind: str) -> socket.socket | None:
        try:
            connection = socket.create_connection(self._target, timeout=5, source_address=("127.0.0.2", 0))
            if kind == "trickle":
                connection.sendall(f"GET /api/info HTTP/1.1\r\nHost: {self._host}\r\nX-Slow: ".encode())
        except OSError:
            return None
        self.connections_made += 1
        connection.setblocking(False)
        return connection

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(0.5):
            tick += 1
            for index, kind in enumerate(self._kinds):
                connection = self._open[index]
                if connection is not None:
                    try:
                        dropped = connection.recv(1 << 16) is not None  # an answer (503, 408) or the end: dropped
                    except BlockingIOError:
                        dropped = False
                    except OSError:
                        dropped = True
                    if not dropped and kind == "trickle" and tick % 2 == 0:
                        try:
                            connection.send(b"a")
                        except OSError:
                            dropped = True
                    if not dropped:
                        continue
                    connection.close()
                self._open[index] = self._connect(kind)


def test_a_crowd_of_slow_and_idle_connections_does_not_delay_anyone_else(app, photo):
    """32 connections trickling their headers and 150 silent ones from 127.0.0.2, reopened when dropped: the app
    holds at most MAX_CONNECTIONS of them and answers a normal client on 127.0.0.1 within 3 s throughout."""
    added = upload(app.url, photo.read_bytes())
    with Crowd(app.url, 32, 150) as crowd:
        start = time.monotonic()
        for at in (3, 5, REQUEST_SECONDS):
            time.sleep(max(0.0, start + at - time.monotonic()))
            asked = time.monotonic()
            status, _, _ = http(f"{app.url}api/info")
            colourized, _, _ = colourize(app.url, added["id"], [])
            took = time.monotonic() - asked
            assert (status, colourized) == (200, 200) and took < 3, (at, status, colourized, took)
        assert crowd.connections_made > 182  # refused and dropped ones were opened again
    still_answers(app.url, photo)


def test_parallel_uploads_are_all_answered_within_bounded_memory(app, tmp_path):
    big = write_image(tmp_path / "big.png", cv2.resize(draw_photo("violet", 1, 240, 320), (1150, 860)))
    resident, peak = memory(app.process)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: http(f"{app.url}api/photos", big.read_bytes())[0], range(8)))
    assert answers == [201] * 8
    assert memory(app.process)[1] <= max(peak, resident + HEADROOM)


def test_a_client_that_goes_away_leaves_no_traceback(app, photo):
    address = urllib.parse.urlsplit(app.url)
    added = upload(app.url, photo.read_bytes())
    before = app.stderr.read_text()
    for _ in range(3):
        connection = socket.create_connection((address.hostname, address.port), timeout=WAIT_SECONDS)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        body = b'{"hints": []}'
        connection.sendall(f"POST /api/photos/{added['id']}/colourize HTTP/1.1\r\nHost: {address.netloc}\r\n"
                           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        connection.close()  # at once, with a reset: the app's answer, a 1 MB PNG, has nowhere to go
    still_answers(app.url, photo)
    assert "Traceback" not in app.stderr.read_text()[len(before):]
    assert app.process.poll() is None


def test_on_port_80_browsers_may_leave_the_port_out_of_host():
    assert {"localhost", "127.0.0.1:80", "localhost:80"} <= web_app._loopback_names("127.0.0.1", 80)
    assert "localhost" not in web_app._loopback_names("127.0.0.1", 8080)


def test_a_photo_the_app_does_not_hold_is_named_as_such(app_url):
    status, _, body = colourize(app_url, "no-such-photo", [])
    assert status == 404 and "open it again" in json.loads(body)["error"]


@pytest.mark.parametrize("flags,message", [
    (["--model=/nonexistent/model.keras"], "error: --model: no model at /nonexistent/model.keras"),
    (["stray.jpg"], "error: unexpected arguments: stray.jpg"),
    (["--port=PORT"], "error: cannot listen on 127.0.0.1:PORT"),
])
def test_mistakes_are_one_line_and_exit_2(app_url, flags, message):
    port = app_url.rstrip("/").rsplit(":", 1)[1]
    flags, message = [f.replace("PORT", port) for f in flags], message.replace("PORT", port)
    done = run_module("trainer.app", *flags)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(message), done.stderr[-2000:]


def test_help_lists_the_flags():
    done = run_module("trainer.app", "--help")
    assert done.returncode == 0
    for flag in ("--model", "--host", "--port", "--max_upload_mb", "--max_pixels"):
        assert flag in done.stdout, flag


def test_a_trained_context_unet_takes_hints_through_the_app(tiny_records, photo, tmp_path):
    """The project's own hint-aware network, trained for an epoch by the trainer, served as it comes."""
    done = run_module("trainer.task", f"--data_dir={tiny_records}", f"--model_dir={tmp_path / 'run'}",
                      "--epochs=1", "--batch_size=8", "--log_images_every=0")
    assert done.returncode == 0, done.stderr[-3000:]
    process, url = start_app(tmp_path / "app", f"--model={tmp_path / 'run'}")
    try:
        assert json.loads(http(f"{url}api/info")[2])["hint_aware"] is True
        added = upload(url, photo.read_bytes())
        status, _, body = colourize(url, added["id"], [{"x": 100, "y": 600, "color": "#e02424"},
                                                       {"x": 900, "y": 80, "color": "#2ca02c"}])
        assert status == 200 and decode(body).shape == (768, 1024, 3)
    finally:
        stop(process)


def test_the_package_ships_the_page(tmp_path):
    """An sdist carries the page (MANIFEST.in) and an install copies it into the package (package_data)."""
    done = subprocess.run([sys.executable, "setup.py", "-q", "sdist", f"--dist-dir={tmp_path}", "build_py",
                           f"--build-lib={tmp_path / 'lib'}"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    (archive,) = tmp_path.glob("*.tar.gz")
    names = {name.split("/", 1)[1] for name in tarfile.open(archive).getnames() if "/" in name}
    for name in PAGE_FILES:
        assert f"trainer/applying/app_page/{name}" in names
        assert (tmp_path / "lib" / "trainer" / "applying" / "app_page" / name).is_file()


# --- In a real browser -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium driven by Selenium, downloading into a folder of its own."""
    if not CHROMEDRIVER.exists():
        pytest.skip(f"no browser: {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver; .ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    options = Options()
    for argument in ("--headless=new", "--no-sandbox", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.downloads = downloads
    yield driver
    driver.quit()


def wait(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.2).until(condition, f"waiting for {what}")


def shown(driver, hints: int) -> bool:
    """The page is idle and shows the result of exactly `hints` hints."""
    return driver.execute_script("return document.getElementById('status').dataset.state === 'ready' && "
                                 "document.getElementById('result').dataset.hints === arguments[0]", str(hints))


def open_photo(driver, url: str, path: pathlib.Path) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url)
    wait(driver, lambda d: d.find_element(By.ID, "limits").text, "the page to load the app's limits")
    driver.find_element(By.ID, "file").send_keys(str(path))


def click_photo(driver, dx: int, dy: int) -> tuple[float, float]:
    """Click the gray photo at (dx, dy) CSS pixels from its centre; returns that point in the photo's pixels."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    image = driver.find_element(By.ID, "gray")
    ActionChains(driver).move_to_element_with_offset(image, dx, dy).click().perform()
    box, natural = image.rect, driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]",
                                                     image)
    return ((box["width"] / 2 + dx) / box["width"] * natural[0], (box["height"] / 2 + dy) / box["height"] * natural[1])


def centre(driver, element) -> tuple[float, float]:
    """An element's centre in CSS pixels, as drawn (Selenium's rect gives the untransformed size)."""
    box = driver.execute_script("return arguments[0].getBoundingClientRect()", element)
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def downloaded(folder: pathlib.Path, name: str) -> pathlib.Path | None:
    path = folder / name
    return path if path.is_file() and not list(folder.glob("*.crdownload")) else None


def test_a_hint_placed_by_clicking_moves_the_colour_there_and_downloads_at_full_size(app_url, browser, photo):
    from selenium.webdriver.common.by import By

    open_photo(browser, app_url, photo)
    wait(browser, lambda d: shown(d, 0), "the colourization without hints")
    blue = browser.find_element(By.CSS_SELECTOR, '.swatch[aria-label="blue"]')
    blue.click()
    x, y = click_photo(browser, -120, -60)
    wait(browser, lambda d: shown(d, 1), "the colourization with the hint")

    dots = browser.find_elements(By.CSS_SELECTOR, "#gray-stage .dot")
    assert len(dots) == 1 and len(browser.find_elements(By.CSS_SELECTOR, "#result-stage .dot")) == 1
    image_x, image_y = centre(browser, browser.find_element(By.ID, "gray"))
    dot_x, dot_y = centre(browser, dots[0])
    assert abs(dot_x - (image_x - 120)) < 2 and abs(dot_y - (image_y - 60)) < 2

    browser.find_element(By.ID, "download").click()
    path = wait(browser, lambda d: downloaded(d.downloads, "poppy-colourized.png"), "the download")
    result = cv2.imread(str(path))
    assert result.shape == (768, 1024, 3)

    before = decode(colourize(app_url, upload(app_url, photo.read_bytes())["id"], [])[2])
    target = hex_ab(blue.get_attribute("data-colour"))
    distance_before = np.linalg.norm(mean_ab(before, x, y) - target)
    distance_after = np.linalg.norm(mean_ab(result, x, y) - target)
    assert distance_after < 0.6 * distance_before, (distance_before, distance_after)


def test_a_dot_clicked_is_removed_and_clear_removes_them_all(app_url, browser, photo):
    from selenium.webdriver.common.by import By

    open_photo(browser, app_url, photo)
    wait(browser, lambda d: shown(d, 0), "the colourization without hints")
    browser.find_element(By.CSS_SELECTOR, '.swatch[aria-label="red"]').click()
    click_photo(browser, -100, 0)
    click_photo(browser, 100, 50)
    wait(browser, lambda d: shown(d, 2), "two hints")
    browser.find_elements(By.CSS_SELECTOR, "#result-stage .dot")[0].click()
    wait(browser, lambda d: shown(d, 1), "one hint left")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#gray-stage .dot")) == 1
    click_photo(browser, 0, 80)
    wait(browser, lambda d: shown(d, 2), "two hints again")
    browser.find_element(By.ID, "clear").click()
    wait(browser, lambda d: shown(d, 0), "no hints after clear all")
    assert not browser.find_elements(By.CSS_SELECTOR, ".dot")


@pytest.mark.parametrize("name,content,message", [
    ("notes.txt", b"not a photo", "This file is not an image"),
    ("huge.png", None, "more than the limit of 1 MB"),  # refused by the page itself, before uploading
    ("wide.png", cv2.imencode(".png", np.zeros((1000, 1200), np.uint8))[1].tobytes(), "too many pixels"),
])
def test_refusals_are_shown_on_the_page(app_url, browser, tmp_path, name, content, message):
    from selenium.webdriver.common.by import By

    path = tmp_path / name
    path.write_bytes(content if content is not None else os.urandom(1_200_000))
    open_photo(browser, app_url, path)
    shown_message = browser.find_element(By.ID, "message")
    wait(browser, lambda d: shown_message.is_displayed() and message in shown_message.text, f"the message {message!r}")


# Suggested colours: the shipped model's distribution at a clicked point, as swatches; choosing one pins it.

SUNFLOWER = ("flowers", "sunflower", "1008566138_6927679c8a.jpg")  # 320x211; (190, 65) is on a flower's petals
PETAL = (190, 65)


@pytest.fixture(scope="module")
def shipped_app(tmp_path_factory):
    """The app on the model shipped with the project: a colour classifier, so it can suggest."""
    folder = tmp_path_factory.mktemp("shipped_app")
    process, url = start_app(folder)
    yield App(url, process, folder / "stderr.txt")
    stop(process)


def suggest(url: str, photo_id: str, payload: dict):
    return http(f"{url}api/photos/{photo_id}/suggest", json.dumps(payload).encode(), "application/json")


def is_yellow(colour: str) -> bool:
    a, b = hex_ab(colour)
    return b > 30 and abs(a) < b / 2


def test_the_app_suggests_a_yellow_on_a_sunflowers_petals_most_likely_first(shipped_app, shared_data):
    photo_id = upload(shipped_app.url, (shared_data.joinpath(*SUNFLOWER)).read_bytes())["id"]
    status, _, body = suggest(shipped_app.url, photo_id, {"x": PETAL[0], "y": PETAL[1], "hints": []})
    assert status == 200, body
    answer = json.loads(body)
    probabilities = [s["probability"] for s in answer["suggestions"]]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1.0001
    assert any(is_yellow(s["color"]) for s in answer["suggestions"][:3]), answer


@pytest.mark.parametrize("payload, status, message", [
    ({"x": 5}, 400, "Expected"), ({"x": 400, "y": 5, "hints": []}, 400, "outside"),
    ({"x": "5", "y": 5, "hints": []}, 400, "must be a number"), ({"x": 5, "y": 5}, 400, "hints"),
])
def test_bad_suggestion_requests_are_refused_with_a_sentence(shipped_app, shared_data, payload, status, message):
    photo_id = upload(shipped_app.url, (shared_data.joinpath(*SUNFLOWER)).read_bytes())["id"]
    answer = suggest(shipped_app.url, photo_id, payload)
    assert answer[0] == status and message in json.loads(answer[2])["error"]


def test_memory_after_suggestions_on_a_40_megapixel_photo_stays_bounded(shipped_app):
    """The first suggestion on a 40-megapixel photo takes the model's working memory at that size (about 1.1 GB);
    the nine after it reuse that memory rather than adding to it."""
    photo = cv2.resize(draw_photo("poppy", 0, 240, 320), (7300, 5470), interpolation=cv2.INTER_LINEAR)
    photo_id = upload(shipped_app.url, cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())["id"]
    point = {"x": 3650, "y": 2735, "hints": []}
    assert suggest(shipped_app.url, photo_id, point)[0] == 200
    after_one, _ = memory(shipped_app.process)
    for _ in range(9):
        assert suggest(shipped_app.url, photo_id, point)[0] == 200
    assert memory(shipped_app.process)[0] - after_one < 200 * 2**20, (after_one, memory(shipped_app.process))


def test_a_model_without_a_colour_distribution_says_it_cannot_suggest(app_url, photo):
    answer = suggest(app_url, upload(app_url, photo.read_bytes())["id"], {"x": 5, "y": 5, "hints": []})
    assert answer[0] == 400 and "cannot suggest colours" in json.loads(answer[2])["error"]


def test_clicking_shows_suggestions_and_choosing_one_pins_it_and_recolours(shipped_app, browser, shared_data):
    from selenium.webdriver.common.by import By

    open_photo(browser, shipped_app.url, shared_data.joinpath(*SUNFLOWER))
    wait(browser, lambda d: shown(d, 0), "the colourization without hints")
    assert browser.find_element(By.ID, "suggest-mode").get_attribute("aria-pressed") == "true"
    image = browser.find_element(By.ID, "gray")
    box = image.rect
    click_photo(browser, round((PETAL[0] / 320 - 0.5) * box["width"]), round((PETAL[1] / 211 - 0.5) * box["height"]))
    swatches = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#suggestions .suggestion"), "the swatches")
    colours = [swatch.get_attribute("data-colour") for swatch in swatches]
    percents = [int(swatch.text.rstrip("%")) for swatch in swatches]
    assert percents == sorted(percents, reverse=True)
    assert not browser.find_elements(By.CSS_SELECTOR, "#gray-stage .dot")  # nothing pinned before a choice
    chosen = next(i for i, colour in enumerate(colours[:3]) if is_yellow(colour))
    swatches[chosen].click()
    wait(browser, lambda d: shown(d, 1), "the colourization with the chosen colour")
    dots = browser.find_elements(By.CSS_SELECTOR, "#gray-stage .dot")
    assert len(dots) == 1 and colours[chosen] in dots[0].get_attribute("title")
    assert not browser.find_element(By.ID, "suggestions").is_displayed()


# --- At the app's own limits: files that lie to the decoders, and photos costly to decode ---------------------

BUDGET_MB = 300


@pytest.fixture(scope="module")
def app_at_default_limits(tmp_path_factory):
    """The app with its default pixel and upload limits, and a decode memory budget of BUDGET_MB."""
    folder = tmp_path_factory.mktemp("app_default")
    process, url = start_app(folder, f"--model={hint_painter(folder / 'painter.keras')}",
                             f"--decode_memory_mb={BUDGET_MB}")
    yield App(url, process, folder / "stderr.txt")
    stop(process)


@pytest.mark.parametrize("name,status,words", [
    ("tiff_size_twice_8000", 413, "8000x8000 pixels"),
    ("tiff_size_twice_2000000x1", 413, "2000000x1 pixels"),
    ("tiff_huge_tile", 413, "a tile of 16000x16000 pixels"),
    ("jpeg_20000_scans", 400, "20006 scans"),
])
def test_files_that_lie_to_the_decoders_are_refused_from_their_headers(app_at_default_limits, photo, name, status,
                                                                       words):
    data = {entry: content for entry, content, _ in fuzz_corpus.corpus()}[name]
    resident, peak = memory(app_at_default_limits.process)
    answer, _, body = request(app_at_default_limits.url, "POST", "/api/photos", data, Content_Type=web_app.PHOTO_TYPE)
    assert answer == status and words in json.loads(body)["error"], body
    assert memory(app_at_default_limits.process)[1] <= max(peak, resident + HEADROOM)
    still_answers(app_at_default_limits.url, photo)


def test_a_tiff_whose_signed_size_lies_to_the_header_check_is_refused_in_seconds_within_bounded_memory(
        app_at_default_limits, photo):
    """Its SSHORT 14000x14000 is what libtiff decodes (196 megapixels, 588 MB as colour), its LONG 100x100 what
    the header check reads: the decoder process, held to what 100x100 costs, refuses it."""
    data = fuzz_corpus.tiff_signed_size()
    still_answers(app_at_default_limits.url, photo)
    _, peak = memory(app_at_default_limits.process)
    start = time.monotonic()
    status, _, body = request(app_at_default_limits.url, "POST", "/api/photos", data, Content_Type=web_app.PHOTO_TYPE)
    took = time.monotonic() - start
    assert status == 413 and json.loads(body)["error"].startswith("This photo has too many pixels"), body
    assert took < 3, took
    assert memory(app_at_default_limits.process)[1] - peak < 300 * 2**20, memory(app_at_default_limits.process)
    still_answers(app_at_default_limits.url, photo)


def test_costly_photos_decoded_and_previewed_in_parallel_stay_within_the_memory_budget(app_at_default_limits, photo):
    """Three 12-megapixel 16-bit RGBA PNGs at once (about 270 MB each to decode, by their header) and six gray
    previews of one: the app's peak memory grows by at most the budget, the photos it keeps and some slack,
    where three decodes at once would add about 800 MB."""
    url = app_at_default_limits.url
    still_answers(url, photo)
    resident, _ = memory(app_at_default_limits.process)
    costly = fuzz_corpus.rgba_png(4000, 3000, 16)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        added = list(pool.map(lambda _: http(f"{url}api/photos", costly), range(3)))
        assert [status for status, _, _ in added] == [201] * 3, added
        key = json.loads(added[-1][2])["id"]
        grays = list(pool.map(lambda _: http(f"{url}api/photos/{key}/gray.png"), range(6)))
    assert [status for status, _, _ in grays] == [200] * 6
    assert decode(grays[0][2]).shape == (3000, 4000)
    kept = 3 * 4000 * 3000 * 3
    growth = memory(app_at_default_limits.process)[1] - resident
    assert growth <= BUDGET_MB * 10**6 + kept + 150 * 2**20, growth / 1e6
    still_answers(url, photo)
