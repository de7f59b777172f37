"""The web page's server: photos in memory, colourized and re-colourized with hints.

The library behind `python -m trainer.app` (see there). It answers only its own page:
other web sites the person visits cannot post to it (Origin, content types that make
browsers ask first, which it refuses), and no request can make it decode past the pixel
limit, hold a connection forever or open threads without bound.
"""

import collections
import contextlib
import dataclasses
import http.server
import io
import ipaddress
import importlib.resources
import json
import os
import re
import secrets
import sys
import threading
import time
import traceback
import urllib.parse

import cv2
import numpy as np

from pipeline import color, errors, images
from pipeline.preparation import Preparation
from trainer.applying import hint_input, inference, suggesting
from trainer.applying.hint_input import Hint


# A person works on one photo at a time; a few more let two tabs work side by side while memory stays bounded
# (a 40-megapixel photo is 120 MB decoded).
KEPT_PHOTOS = 4
MAX_HINTS = 100
MAX_JSON_BYTES = 64_000
# An oversized upload is read and discarded up to this size, so that the client, still sending, gets the refusal
# instead of a reset connection; beyond it the connection is just closed.
MAX_DISCARD_BYTES = 1 << 30
# A connection silent this long (seconds) is closed, and at most this many are open at once: a client that
# sends half a request, or many that send nothing, cannot hold threads and memory for ever.
IDLE_SECONDS = 10
MAX_CONNECTIONS = 32
# A request's line, headers and body must all arrive within this many seconds: clients that trickle a byte
# now and then, each within IDLE_SECONDS, cannot hold the connections for ever.
REQUEST_SECONDS = 60
# Memory that decoding uploads and rendering gray.png may hold at once, counted from each photo's header
# (channels and bit depth, not pixels alone): a 40-megapixel 16-bit RGBA PNG takes about 700 MB to decode.
DECODE_MEMORY_BYTES = 1_500_000_000
# Bytes a pixel of gray.png holds while it is made: its lightness plane and its PNG, plus a band of Lab.
_GRAY_BYTES_PER_PIXEL = 2
_GRAY_BAND_ROWS = 256
# The content types the page sends. Both make a browser ask the app first (a CORS preflight) before another
# web site's script may send them, and the app refuses that question.
PHOTO_TYPE = "application/octet-stream"
JSON_TYPE = "application/json"

_PAGE_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
               ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
_PHOTO_PATH = re.compile(r"/api/photos/([A-Za-z0-9_-]+)/(gray\.png|colourize)")
_SUGGEST_PATH = re.compile(r"/api/photos/([A-Za-z0-9_-]+)/suggest")
_IMAGE_ERRORS = {"empty_file": "This file is empty", "not_an_image": "This file is not an image",
                 "truncated": "This photo is incomplete", "corrupt": "This photo could not be decoded",
                 "too_large": "This photo has too many pixels", "too_small": "This photo is too small",
                 "too_many_scans": "This photo would take too long to decode"}
# Everything the page uses comes from this server; photos are shown from blob: URLs made in the page.
_SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; object-src 'none'; "
                                                "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
                     "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


class ClientError(Exception):
    """A request the app refuses: an HTTP status and a sentence the page shows as it is."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass(frozen=True)
class Limits:
    upload_bytes: int
    pixels: int
    request_seconds: float = REQUEST_SECONDS
    decode_bytes: int = DECODE_MEMORY_BYTES


class MemoryBudget:
    """Bytes that concurrent decodes may hold together: each waits until its share is free.

    One that needs more than the whole budget runs alone (the pixel limit already bounds it).
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._free = capacity
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def hold(self, size: int):
        size = min(size, self.capacity)
        with self._changed:
            self._changed.wait_for(lambda: self._free >= size)
            self._free -= size
        try:
            yield
        finally:
            with self._changed:
                self._free += size
                self._changed.notify_all()


def load_page() -> dict[str, tuple[bytes, str]]:
    """{URL path: (bytes, content type)} of the page's files, read once from the installed package."""
    folder = importlib.resources.files("trainer.applying") / "app_page"
    files = {f"/{entry.name}": (entry.read_bytes(), _PAGE_TYPES[os.path.splitext(entry.name)[1]])
             for entry in folder.iterdir() if os.path.splitext(entry.name)[1] in _PAGE_TYPES}
    files["/"] = files["/index.html"]
    return files


class PhotoStore:
    """The most recent photos, decoded, by unguessable id; older ones are forgotten (the page then says so)."""

    def __init__(self, capacity: int = KEPT_PHOTOS):
        self._photos: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def add(self, rgb: np.ndarray) -> str:
        key = secrets.token_urlsafe(16)
        with self._lock:
            self._photos[key] = rgb
            while len(self._photos) > self._capacity:
                self._photos.popitem(last=False)
        return key

    def get(self, key: str) -> np.ndarray:
        with self._lock:
            if key not in self._photos:
                raise ClientError(404, "This photo is no longer in the app's memory (the app keeps the "
                                  f"{self._capacity} most recent ones, until it stops): open it again.")
            self._photos.move_to_end(key)
            return self._photos[key]


def accepts_hints(colourizer) -> bool:
    """Colourize a small photo without and with a hint: this compiles the network before anyone waits for it,
    and tells whether the model takes hints (one trained without them refuses)."""
    blank = np.full((48, 64, 3), 128, np.uint8)
    colourizer([blank])
    try:
        colourizer([blank], [[Hint(32, 24, (200, 40, 40))]])
    except errors.UsageError:
        return False
    return True


def decode_upload(data: bytes, limits: Limits, prep: Preparation, budget: MemoryBudget) -> np.ndarray:
    """Upload bytes -> uint8 RGB; refuses non-images, photos above the pixel limit or that would cost the decoder
    more than their pixels (before decoding them) and photos the model's preparation refuses. The decode waits
    for its share of the memory budget, as its header counts it."""
    try:
        cost = images.decode_bytes(images.inspect(data, limits.pixels))
        with budget.hold(cost):
            return prep.decode(data, limits.pixels)
    except images.ImageError as error:
        status = 413 if error.reason == "too_large" else 400
        raise ClientError(status, f"{_IMAGE_ERRORS.get(error.reason, 'This photo cannot be used')}: "
                          f"{error.detail}.") from None


def parse_hints(payload, width: int, height: int) -> list[Hint]:
    """{"hints": [{"x": .., "y": .., "color": "#rrggbb"}, ...]} -> hints inside a width x height photo."""
    entries = payload.get("hints") if isinstance(payload, dict) else None
    if not isinstance(entries, list) or len(entries) > MAX_HINTS:
        raise ClientError(400, f'Expected {{"hints": [...]}} with at most {MAX_HINTS} hints.')
    hints = []
    for entry in entries:
        try:
            hint = hint_input.hint_from_json(entry)
        except errors.UsageError as error:
            raise ClientError(400, f"Each hint needs x, y and color #rrggbb ({error}).") from None
        if not (0 <= hint.x < width and 0 <= hint.y < height):
            raise ClientError(400, f"The hint ({hint.x:g}, {hint.y:g}) is outside the {width}x{height} photo.")
        hints.append(hint)
    return hints


def encode_png(image: np.ndarray) -> bytes:
    """RGB or gray uint8 -> PNG bytes: lossless, so the download is exactly what the model made."""
    ok, encoded = cv2.imencode(".png", image[..., ::-1] if image.ndim == 3 else image)
    if not ok:
        raise RuntimeError("OpenCV could not encode a PNG")
    return encoded.tobytes()


class Studio:
    """What the page talks to: one model, the photos in memory and the limits; one colourization at a time."""

    def __init__(self, colourizer, limits: Limits):
        self.colourizer = colourizer
        self.limits = limits
        self.hint_aware = accepts_hints(colourizer)
        self.photos = PhotoStore()
        self.page = load_page()
        self._model_lock = threading.Lock()  # two at once would only share the same 2 cores, each slower
        self._memory = MemoryBudget(limits.decode_bytes)

    def info(self) -> dict:
        return {"hint_aware": self.hint_aware, "max_upload_bytes": self.limits.upload_bytes,
                "max_pixels": self.limits.pixels}

    def add_photo(self, data: bytes) -> dict:
        rgb = decode_upload(data, self.limits, self.colourizer.preparation, self._memory)
        return {"id": self.photos.add(rgb), "width": rgb.shape[1], "height": rgb.shape[0]}

    def gray_png(self, key: str) -> bytes:
        """The photo's own lightness (L of Lab), which the model sees and every result keeps.

        Made a band of rows at a time, within the decodes' memory budget: six at once of a 40-megapixel
        photo, whole, took 1.9 GB.
        """
        rgb = self.photos.get(key)
        with self._memory.hold(rgb.shape[0] * rgb.shape[1] * _GRAY_BYTES_PER_PIXEL):
            lightness = np.empty(rgb.shape[:2], np.uint8)
            for top in range(0, rgb.shape[0], _GRAY_BAND_ROWS):
                lightness[top:top + _GRAY_BAND_ROWS] = color.rgb_to_lab8(rgb[top:top + _GRAY_BAND_ROWS])[..., 0]
            return encode_png(lightness)

    def colourize_png(self, key: str, payload) -> tuple[bytes, dict[str, float]]:
        """The photo colourized with the given hints, as PNG, and how long each step took (seconds)."""
        rgb = self.photos.get(key)
        hints = parse_hints(payload, rgb.shape[1], rgb.shape[0])
        if hints and not self.hint_aware:
            raise ClientError(400, "This model was trained without colour hints; start the app with --model "
                              "of a hint-aware model to use them.")
        with self._model_lock:
            start = time.perf_counter()
            (result,) = self.colourizer([rgb], [hints])
            encoding = time.perf_counter()
        png = encode_png(result)
        return png, {"colourize": encoding - start, "encode": time.perf_counter() - encoding}

    def suggest(self, key: str, payload) -> dict:
        """The colours the model hesitates between at a clicked point, given the hints already on the photo:
        {"x", "y", "suggestions": [{"color": "#rrggbb", "probability": p}, ...]}, most likely first."""
        rgb = self.photos.get(key)
        try:
            point = suggesting.point_from_json(payload, rgb.shape[1], rgb.shape[0])
        except errors.UsageError as error:
            raise ClientError(400, f"{str(error)[0].upper()}{str(error)[1:]}.") from None
        hints = parse_hints(payload, rgb.shape[1], rgb.shape[0])
        try:
            with self._model_lock:
                (found,) = self.colourizer.suggest(rgb, [point], hints)
        except errors.UsageError as error:
            raise ClientError(400, f"This model cannot suggest colours: {error}.") from None
        return {"x": point[0], "y": point[1], "suggestions": [s.to_json() for s in found]}


class RequestDeadline(ClientError):
    """The request's line, headers and body did not all arrive in time."""

    def __init__(self, seconds: float):
        super().__init__(408, f"The request took more than {seconds:g} seconds to arrive; send it again.")


class _DeadlineReader(io.RawIOBase):
    """A connection's bytes, each read waiting at most IDLE_SECONDS and none past the request's deadline."""

    def __init__(self, connection, seconds: float):
        self._connection = connection
        self._seconds = seconds
        self._deadline = None

    def start(self) -> None:
        """A new request begins: its whole deadline starts now."""
        self._deadline = time.monotonic() + self._seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self._deadline - time.monotonic() if self._deadline is not None else IDLE_SECONDS
        if left <= 0:
            raise RequestDeadline(self._seconds)
        self._connection.settimeout(min(IDLE_SECONDS, left))
        try:
            return self._connection.recv_into(buffer)
        except TimeoutError:
            if left < IDLE_SECONDS:
                raise RequestDeadline(self._seconds) from None
            raise


class Handler(http.server.BaseHTTPRequestHandler):
    """Routes the page's requests to the Studio; every refusal is JSON {"error": sentence}."""

    server_version = "flower-colorizer"
    timeout = IDLE_SECONDS

    def setup(self):
        """Reads through a deadline for the whole request (line, headers and body), not only per read."""
        super().setup()
        self.rfile.close()
        self._reader = _DeadlineReader(self.connection, self.server.studio.limits.request_seconds)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self):
        """One request within its deadline; one late in its line or headers gets 408, like a late body."""
        self._reader.start()
        try:
            super().handle_one_request()
        except RequestDeadline as late:
            self.close_connection = True
            self.request_version = "HTTP/1.0"
            self.connection.settimeout(IDLE_SECONDS)
            self._send_json(late.status, {"error": late.message})

    def parse_request(self) -> bool:
        """Refuses HTTP/0.9 (a request line without a version), whose answers would carry no status or headers,
        at once: http.server would first wait for headers such a client never sends."""
        if len(self.raw_requestline.split()) != 2:
            return super().parse_request()
        self.command, self.requestline = None, self.raw_requestline.decode("latin-1").rstrip("\r\n")
        self.request_version = "HTTP/0.9"
        self.send_error(400, "Send the request with its HTTP version (HTTP/1.0 or HTTP/1.1), not as HTTP/0.9")
        return False

    @property
    def studio(self) -> Studio:
        return self.server.studio

    def version_string(self) -> str:
        """The Server header: the app's name, not the Python version it runs on."""
        return self.server_version

    def do_GET(self):
        self._answer(self._get)

    def do_POST(self):
        self._answer(self._post)

    def do_OPTIONS(self):
        """A browser asks this before another web site's script may post a photo or hints: the answer is no."""
        self._answer(self._refuse_preflight)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (414, 431, 501, ...) as JSON, with the headers of every other answer.

        A request line it cannot read leaves it taking the client for HTTP/0.9, which gets no headers at all;
        no browser speaks that, so the answer is HTTP/1.0 like every other.
        """
        self.close_connection = True
        self.request_version = "HTTP/1.0" if self.request_version == "HTTP/0.9" else self.request_version
        self._send_json(code, {"error": f"{message or http.HTTPStatus(code).phrase}."})

    def _refuse_preflight(self, path: str):
        raise ClientError(403, "This app answers its own page only; other web sites may not send it requests.")

    def _get(self, path: str):
        if path in self.studio.page:
            self._send(200, *self.studio.page[path])
        elif path == "/api/info":
            self._send_json(200, self.studio.info())
        elif (match := _PHOTO_PATH.fullmatch(path)) and match.group(2) == "gray.png":
            self._send(200, self.studio.gray_png(match.group(1)), "image/png")
        else:
            raise ClientError(404, f"Nothing at {path}.")

    def _post(self, path: str):
        if path == "/api/photos":
            self._send_json(201, self.studio.add_photo(self._body(self.studio.limits.upload_bytes, "photo", PHOTO_TYPE)))
        elif (match := _PHOTO_PATH.fullmatch(path)) and match.group(2) == "colourize":
            payload = self._json_body()
            png, seconds = self.studio.colourize_png(match.group(1), payload)
            timing = ", ".join(f"{name};dur={value * 1000:.1f}" for name, value in seconds.items())
            self._send(200, png, "image/png", {"Server-Timing": timing})
        elif match := _SUGGEST_PATH.fullmatch(path):
            self._send_json(200, self.studio.suggest(match.group(1), self._json_body()))
        else:
            raise ClientError(404, f"Nothing to post to at {path}.")

    def _answer(self, route):
        """Run the route; a refusal becomes its JSON answer, a failure of the app a 500 the page can show.

        A client that went away or fell silent gets nothing, and the console no traceback: there is
        nobody to tell and nothing to mend.
        """
        try:
            self._check_host()
            self._check_origin()
            route(urllib.parse.urlsplit(self.path).path)
        except ClientError as error:
            self.close_connection = True  # a refused request's body may be unread: the connection cannot go on
            self.connection.settimeout(IDLE_SECONDS)  # a late request leaves it at what was left of its deadline
            self._send_json(error.status, {"error": error.message})
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as error:  # noqa: BLE001  the person sees a sentence; the console keeps the traceback
            traceback.print_exc()
            self._send_json(500, {"error": f"The app failed on this request: {type(error).__name__}: {error}"})

    def _check_host(self) -> None:
        """On a loopback address, answer only requests addressed to this computer by name or number.

        Otherwise a web page elsewhere could reach the app through a DNS name of its own that it
        points at 127.0.0.1 (DNS rebinding) and read the photos.
        """
        allowed = self.server.allowed_hosts
        if allowed is not None and (self.headers.get("Host") or "").lower() not in allowed:
            raise ClientError(403, f"This app answers requests for {sorted(allowed)[0]} only.")

    def _check_origin(self) -> None:
        """A browser names the site of the page that sends a request (Origin): only the app's own page may.

        Otherwise any web site the person visits could post photos to the app and evict theirs.
        """
        origin = self.headers.get("Origin")
        if origin is not None and origin.lower() != f"http://{self.headers.get('Host', '')}".lower():
            raise ClientError(403, "This app answers its own page only; other web sites may not send it requests.")

    def _body(self, limit: int, what: str, content_type: str) -> bytes:
        """The request body of this content type, refused (after discarding it) above `limit` bytes."""
        try:
            length = int(self.headers["Content-Length"])
        except (TypeError, ValueError):
            raise ClientError(411, f"Send the {what} with a Content-Length.") from None
        if length < 0:
            self.close_connection = True
            raise ClientError(400, f"The Content-Length {length} is negative.")
        given = (self.headers.get("Content-Type") or "none").split(";")[0].strip().lower()
        if given != content_type:
            self._discard(length)
            raise ClientError(415, f"Send the {what} as {content_type}, not {given[:60]}.")
        if length > limit:
            self._discard(length)
            raise ClientError(413, f"This {what} is {length / 1e6:.1f} MB, more than the limit of "
                              f"{limit / 1e6:g} MB (--max_upload_mb).")
        return self.rfile.read(length)

    def _discard(self, length: int) -> None:
        if length > MAX_DISCARD_BYTES:
            self.close_connection = True
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                break
            length -= len(chunk)

    def _json_body(self):
        try:
            return json.loads(self._body(MAX_JSON_BYTES, "request", JSON_TYPE))
        except ValueError:
            raise ClientError(400, "The request is not valid JSON.") from None
        except RecursionError:
            raise ClientError(400, "The request's JSON is nested too deeply.") from None

    def _send_json(self, status: int, content: dict) -> None:
        self._send(status, json.dumps(content).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": content_type, "Content-Length": str(len(body)),
                            "Cache-Control": "no-store", **_SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002  the console keeps to the address line
        pass


class Server(http.server.ThreadingHTTPServer):
    """A thread per connection, at most MAX_CONNECTIONS of them; clients that go away are not errors."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int]):
        super().__init__(address, Handler)
        self._connections = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request, client_address):
        if not self._connections.acquire(blocking=False):
            _answer_busy(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._connections.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def _answer_busy(request) -> None:
    """503, written straight to a connection over the cap, which gets no thread."""
    body = json.dumps({"error": "The app has too many open connections; try again in a moment."}).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), "Connection": "close",
               "Server": Handler.server_version, **_SECURITY_HEADERS}
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    try:
        request.settimeout(1)
        request.sendall(f"HTTP/1.1 503 Service Unavailable\r\n{head}\r\n".encode() + body)
    except OSError:
        pass  # the client is gone already


def make_server(model: str | None, host: str, port: int, limits: Limits) -> Server:
    """The app's server, listening, with its model loaded and warmed up; raises errors.UsageError or OSError.

    It binds before loading the model, so a busy port is reported at once, not after the load.
    """
    server = Server((host, port))
    server.allowed_hosts = _loopback_names(*server.server_address[:2])
    try:
        server.studio = Studio(inference.load(model, warm=True), limits)
    except BaseException:
        server.server_close()
        raise
    return server


def _loopback_names(host: str, port: int) -> set[str] | None:
    """The Host headers a loopback server answers ("localhost:8080", ...); None (any) on other addresses.

    On port 80 browsers leave the port out of Host.
    """
    if not ipaddress.ip_address(host).is_loopback:
        return None
    names = ("127.0.0.1", "localhost", "[::1]", host)
    return {f"{name}:{port}" for name in names} | ({*names} if port == 80 else set())


def address(server: Server) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"
