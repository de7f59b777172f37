"""The web page's server: photos in memory, colourized and re-colourized with hints.

The library behind `python -m trainer.app` (see there). It answers only its own page:
other web sites the person visits cannot post to it (Origin, content types that make
browsers ask first, which it refuses), and no request can make it decode past the pixel
limit, hold a connection forever or open threads without bound.

The HTTP is aiohttp's (its low-level `web.Server`): an asynchronous server, so that an idle or slow
connection costs a socket, not a thread, and a maintained parser that refuses what it cannot read. The app
adds, on aiohttp's connection (`_Connection`), what aiohttp does not do: a deadline for the request's line
and headers, a cap per client address, and its refusals as JSON with the headers of every answer.
"""

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import http
import ipaddress
import importlib.resources
import json
import os
import re
import secrets
import socket
import threading
import time
import traceback

import aiohttp
from aiohttp import http_exceptions, web, web_protocol

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
# A hints or suggestion request: MAX_HINTS hints take about 5 kB of JSON, so this fixed limit is ample and no
# flag sets it.
MAX_JSON_BYTES = 64_000
# Connections one client address may hold open at once (the next is answered 503 at once). An open connection
# costs a socket, not a thread: the cap is there so that one host cannot take every socket the app may open.
MAX_CONNECTIONS = 32
# A request's line, headers and body must all arrive within this many seconds, or it is answered 408: clients
# that trickle a byte now and then, or send nothing, cannot hold a connection for ever.
REQUEST_SECONDS = 60
# Threads that decode photos and run the model: requests beyond them wait without holding anything but a socket.
WORKER_THREADS = 4
# Longest request line or header line, and most headers, the app reads (414 and 431 beyond).
MAX_LINE_BYTES = 8190
MAX_HEADERS = 100
# How long a connection answered before its request was read still has its bytes read and dropped.
LINGER_SECONDS = 2
SERVER_NAME = "flower-colorizer"  # the Server header: the app's name, not the Python or aiohttp version
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
                 "too_many_scans": "This photo would take too long to decode",
                 "too_slow": "This photo would take too long to decode"}
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


class _Connection(web_protocol.RequestHandler):
    """aiohttp's connection, one request long, held to the app's rules before any handler runs.

    At most MAX_CONNECTIONS from one client address (the next is answered 503 at once); the request's line
    and headers must arrive within the request deadline (else 408); a request line without an HTTP version
    (HTTP/0.9, which aiohttp would wait on for headers that never come) is answered 400 at once; aiohttp's own
    refusals of what it cannot parse are JSON with the headers of every other answer, and leave nothing in the
    console.
    """

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.request_seconds = self._manager.request_seconds
        self.deadline = self._loop.time() + self.request_seconds
        self._first_line = b""  # until the request line has arrived: what has of it
        self._first_line_bytes = 0
        self._answered = False  # by the app itself, before aiohttp had a request (503, 408, HTTP/0.9)
        self._address = (transport.get_extra_info("peername") or ("",))[0]
        if not self._manager.admit(self._address):
            self._address = None
            self._answer_now(503, "The app has too many open connections from your address; try again in a moment.")
            return
        self._late = self._loop.call_at(self.deadline, self._answer_now, 408,
                                        RequestDeadline.sentence(self.request_seconds))

    def connection_lost(self, exc) -> None:
        if self._address is not None:
            self._manager.release(self._address)
            self._address = None
            self._late.cancel()
        super().connection_lost(exc)

    def arrived(self) -> None:
        """The request's line and headers are in: what is left of the deadline is its body's."""
        self._late.cancel()

    def data_received(self, data: bytes) -> None:
        if self._answered:
            return
        if self._first_line is not None:
            self._first_line = (self._first_line + data)[:MAX_LINE_BYTES + 2]
            end = self._first_line.find(b"\n")
            self._first_line_bytes = end if end >= 0 else len(self._first_line)
            if end >= 0:
                words = self._first_line[:end].split()
                self._first_line = None
                if len(words) == 2:
                    self._answer_now(400, "Send the request with its HTTP version (HTTP/1.0 or HTTP/1.1), not as "
                                          "HTTP/0.9.")
                    return
        super().data_received(data)

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """aiohttp's refusal of a request it could not parse (or a failure of the app) as the app answers."""
        if isinstance(exc, http_exceptions.LineTooLong):
            status, said = (414, "The request line is too long") if self._first_line_bytes > MAX_LINE_BYTES else (
                431, "A request header is too long")
        elif isinstance(exc, http_exceptions.BadHttpMessage):
            status, said = (431, "The request has too many headers") if "Too many headers" in exc.message else (
                400, f"The request could not be read: {_PARSE_ERRORS.get(exc.message.split(':')[0], exc.message.splitlines()[0])}")
        else:
            if not isinstance(exc, ConnectionError):  # a client gone is nobody's to mend: no traceback
                traceback.print_exception(exc)
            said = f"The app failed on this request: {type(exc).__name__}: {exc}"
        return _json(status, {"error": said.rstrip(".:") + "."})

    def _answer_now(self, status: int, sentence: str) -> None:
        """Write an answer straight to the connection, whatever its request has sent so far, and end it.

        What the client still sends is read and dropped for a moment before the connection closes: closed with
        unread bytes, it would be reset, and the client might lose the answer.
        """
        self._answered = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_raw_answer(status, sentence))
            self.transport.write_eof()
            self._loop.call_later(LINGER_SECONDS, self.force_close)


class _Server(web.Server):
    """aiohttp's low-level server with the app's connections (`_Connection`) and their count per address."""

    def __init__(self, handler, request_seconds: float):
        # aiohttp's own idle timeout is only a backstop, after the deadline has answered 408.
        super().__init__(handler, keepalive_timeout=2 * request_seconds, lingering_time=request_seconds,
                         max_line_size=MAX_LINE_BYTES, max_field_size=MAX_LINE_BYTES, max_headers=MAX_HEADERS,
                         access_log=None)
        self.request_seconds = request_seconds
        self._open = collections.Counter()

    def __call__(self) -> _Connection:
        return _Connection(self, loop=self._loop, **self._kwargs)

    def admit(self, address: str) -> bool:
        self._open[address] += 1
        if self._open[address] > MAX_CONNECTIONS:
            self.release(address)
            return False
        return True

    def release(self, address: str) -> None:
        self._open[address] -= 1
        if not self._open[address]:
            del self._open[address]


# aiohttp's parse errors, named as a person can act on them.
_PARSE_ERRORS = {"Invalid character in Content-Length": "its Content-Length is not a number of bytes (it is "
                                                        "negative, or not a number)",
                 "Transfer-Encoding can't be present with Content-Length": "it has both a Content-Length and a "
                                                                           "Transfer-Encoding"}


class RequestDeadline(ClientError):
    """The request's line, headers and body did not all arrive in time."""

    def __init__(self, seconds: float):
        super().__init__(408, self.sentence(seconds))

    @staticmethod
    def sentence(seconds: float) -> str:
        return f"The request took more than {seconds:g} seconds to arrive; send it again."


def _headers(content_type: str, extra: dict | None = None) -> dict[str, str]:
    return {"Content-Type": content_type, "Cache-Control": "no-store", "Server": SERVER_NAME, **_SECURITY_HEADERS,
            **(extra or {})}


def _json(status: int, content: dict) -> web.Response:
    return _answer(status, json.dumps(content).encode(), "application/json")


def _answer(status: int, body: bytes, content_type: str, extra: dict | None = None) -> web.Response:
    """An answer with the headers of every answer; the connection closes after it."""
    response = web.Response(status=status, body=body, headers=_headers(content_type, extra))
    response.force_close()
    return response


def _raw_answer(status: int, sentence: str) -> bytes:
    """The bytes of a JSON answer written without aiohttp: for a connection over the cap or out of time."""
    body = json.dumps({"error": sentence}).encode()
    head = "".join(f"{name}: {value}\r\n" for name, value in {
        **_headers("application/json"), "Content-Length": str(len(body)), "Connection": "close"}.items())
    return f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n{head}\r\n".encode() + body


class Pages:
    """The page's requests, routed to the Studio on a bounded pool of threads; every refusal is JSON."""

    def __init__(self, studio: Studio, allowed_hosts: set[str] | None):
        self.studio = studio
        self.allowed_hosts = allowed_hosts
        self._work = concurrent.futures.ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="studio")

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        """Run the route; a refusal becomes its JSON answer, a failure of the app a 500 the page can show.

        A client that went away gets nothing, and the console no traceback: there is nobody to tell.
        """
        request.protocol.arrived()
        try:
            if request.version not in (aiohttp.HttpVersion10, aiohttp.HttpVersion11):
                raise ClientError(505, f"This app speaks HTTP/1.0 and HTTP/1.1, not HTTP/{request.version.major}."
                                       f"{request.version.minor}.")
            route = {"GET": self._get, "POST": self._post, "OPTIONS": self._refuse_preflight}.get(request.method)
            if route is None:
                raise ClientError(501, f"This app does not answer {request.method[:20]} requests.")
            self._check_host(request)
            self._check_origin(request)
            return await route(request)
        except ClientError as error:
            return _json(error.status, {"error": error.message})
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as error:  # noqa: BLE001  the person sees a sentence; the console keeps the traceback
            traceback.print_exc()
            return _json(500, {"error": f"The app failed on this request: {type(error).__name__}: {error}"})

    async def _run(self, function, *args):
        """function(*args) on the Studio's threads: decoding and the model never hold up the connections."""
        return await asyncio.get_running_loop().run_in_executor(self._work, function, *args)

    async def _refuse_preflight(self, request):
        """A browser asks this before another web site's script may post a photo or hints: the answer is no."""
        raise ClientError(403, "This app answers its own page only; other web sites may not send it requests.")

    async def _get(self, request):
        path = request.path
        if path in self.studio.page:
            return _answer(200, *self.studio.page[path])
        if path == "/api/info":
            return _json(200, self.studio.info())
        if (match := _PHOTO_PATH.fullmatch(path)) and match.group(2) == "gray.png":
            return _answer(200, await self._run(self.studio.gray_png, match.group(1)), "image/png")
        raise ClientError(404, f"Nothing at {path}.")

    async def _post(self, request):
        path = request.path
        if path == "/api/photos":
            limit = self.studio.limits.upload_bytes
            data = await self._body(request, limit, "photo", PHOTO_TYPE, f"{limit / 1e6:g} MB (--max_upload_mb)")
            return _json(201, await self._run(self.studio.add_photo, data))
        if (match := _PHOTO_PATH.fullmatch(path)) and match.group(2) == "colourize":
            payload = await self._json_body(request)
            png, seconds = await self._run(self.studio.colourize_png, match.group(1), payload)
            timing = ", ".join(f"{name};dur={value * 1000:.1f}" for name, value in seconds.items())
            return _answer(200, png, "image/png", {"Server-Timing": timing})
        if match := _SUGGEST_PATH.fullmatch(path):
            payload = await self._json_body(request)
            return _json(200, await self._run(self.studio.suggest, match.group(1), payload))
        raise ClientError(404, f"Nothing to post to at {path}.")

    def _check_host(self, request) -> None:
        """On a loopback address, answer only requests addressed to this computer by name or number.

        Otherwise a web page elsewhere could reach the app through a DNS name of its own that it
        points at 127.0.0.1 (DNS rebinding) and read the photos.
        """
        if self.allowed_hosts is not None and (request.headers.get("Host") or "").lower() not in self.allowed_hosts:
            raise ClientError(403, f"This app answers requests for {sorted(self.allowed_hosts)[0]} only.")

    def _check_origin(self, request) -> None:
        """A browser names the site of the page that sends a request (Origin): only the app's own page may.

        Otherwise any web site the person visits could post photos to the app and evict theirs.
        """
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() != f"http://{request.headers.get('Host', '')}".lower():
            raise ClientError(403, "This app answers its own page only; other web sites may not send it requests.")

    async def _body(self, request, limit: int, what: str, content_type: str, limit_said: str) -> bytes:
        """The request body of this content type, refused above `limit` bytes (limit_said states it with what
        sets it), or when it has not all arrived by the request's deadline. aiohttp reads and discards what a
        refused request still sends, so that the client, still sending, gets the refusal."""
        length = request.content_length
        if length is None:
            raise ClientError(411, f"Send the {what} with a Content-Length.")
        given = (request.headers.get("Content-Type") or "none").split(";")[0].strip().lower()
        if given != content_type:
            raise ClientError(415, f"Send the {what} as {content_type}, not {given[:60]}.")
        if length > limit:
            raise ClientError(413, f"This {what} is {length / 1e6:.1f} MB, more than the limit of {limit_said}.")
        seconds = request.protocol.deadline - asyncio.get_running_loop().time()
        if length == 0:
            return b""
        try:
            return await asyncio.wait_for(request.content.readexactly(length), max(seconds, 0))
        except asyncio.TimeoutError:
            raise RequestDeadline(request.protocol.request_seconds) from None
        except asyncio.IncompleteReadError:
            raise ConnectionResetError("the client went away") from None

    async def _json_body(self, request):
        data = await self._body(request, MAX_JSON_BYTES, "request", JSON_TYPE,
                                f"{MAX_JSON_BYTES // 1000} kB, the app's own for hints")
        try:
            return json.loads(data)
        except ValueError:
            raise ClientError(400, "The request is not valid JSON.") from None
        except RecursionError:
            raise ClientError(400, "The request's JSON is nested too deeply.") from None


class Server:
    """The app's HTTP server: aiohttp on a socket bound at once, served by serve_forever until shutdown."""

    def __init__(self, host: str, port: int):
        self.socket = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.server_address = self.socket.getsockname()
        self.allowed_hosts = _loopback_names(*self.server_address[:2])
        self.studio: Studio | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def serve_forever(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        runner = web.ServerRunner(_Server(Pages(self.studio, self.allowed_hosts), self.studio.limits.request_seconds),
                                  handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, self.socket).start()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def shutdown(self) -> None:
        """Stop serve_forever, from another thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    def server_close(self) -> None:
        self.socket.close()


def make_server(model: str | None, host: str, port: int, limits: Limits) -> Server:
    """The app's server, listening, with its model loaded and warmed up; raises errors.UsageError or OSError.

    It binds before loading the model, so a busy port is reported at once, not after the load.
    """
    server = Server(host, port)
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
