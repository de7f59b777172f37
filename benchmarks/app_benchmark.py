"""How long a person waits for the colour-hint page (`python -m trainer.app`) to re-colourize a photo.

    .venv/bin/python benchmarks/app_benchmark.py [--model PATH] [--photos ../shared/data] [--repeats 9]

Starts the app's own server in this process on a free port of 127.0.0.1, with the shipped model unless
--model is given, uploads a real flower photo resized to 1024x768 (and, for scale, to 4000x3000, a phone
photo) over HTTP as the page does, and re-colourizes it with 0, 1 and 8 hints, as clicks on the page do.
Times are medians of --repeats requests after one warm-up: server-side from the app's own Server-Timing
header (colourizing: network, edge-aware upsampling, recombining; then PNG encoding), and the round trip
the page sees (plus HTTP over loopback and the PNG's transfer; decoding and drawing it in the browser are
not included). A model trained without hints is timed without them, and the table says so.
"""

import argparse
import json
import pathlib
import statistics
import sys
import threading
import time
import urllib.request

import cv2

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import measure  # noqa: E402
from trainer.applying import web_app  # noqa: E402

SIZES = ((1024, 768), (4000, 3000))
HINT_COUNTS = (0, 1, 8)
COLOURS = ("#e02424", "#2060e8", "#2ca02c", "#f2d024")


def _photo(photos: pathlib.Path, size: tuple[int, int]) -> bytes:
    """A real flower photo at `size`, as a JPEG file a person would open."""
    source = cv2.imread(str(sorted(photos.glob("flowers/tulip/*.jpg"))[0]))
    resized = cv2.resize(source, size, interpolation=cv2.INTER_CUBIC)
    return cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()


def _post(url: str, data: bytes, content_type: str):
    """(headers, body, seconds) of one POST, timed as the page waits for it."""
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type})
    start = time.perf_counter()
    with urllib.request.urlopen(request) as response:
        body = response.read()
        return response.headers, body, time.perf_counter() - start


def _server_seconds(headers) -> dict[str, float]:
    """'colourize;dur=812.3, encode;dur=40.1' -> {'colourize': 0.8123, 'encode': 0.0401}."""
    parts = (part.strip().split(";dur=") for part in headers["Server-Timing"].split(","))
    return {name: float(milliseconds) / 1000 for name, milliseconds in parts}


def _hints(count: int, width: int, height: int) -> list[dict]:
    """`count` hints spread over the photo, as a person would scatter clicks."""
    return [{"x": width * (i + 1) / (count + 1), "y": height * ((i * 3) % (count + 1) + 1) / (count + 2),
             "color": COLOURS[i % len(COLOURS)]} for i in range(count)]


def _measure(base: str, photo_id: str, hints: list[dict], repeats: int) -> list[float]:
    """Median seconds: colourizing, PNG encoding, both (server side), round trip; after one warm-up."""
    url, body = f"{base}api/photos/{photo_id}/colourize", json.dumps({"hints": hints}).encode()
    _post(url, body, "application/json")
    samples = []
    for _ in range(repeats):
        headers, _, seconds = _post(url, body, "application/json")
        server = _server_seconds(headers)
        samples.append([server["colourize"], server["encode"], server["colourize"] + server["encode"], seconds])
    return [statistics.median(column) for column in zip(*samples)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="A .keras model or run dir (default: the shipped model).")
    parser.add_argument("--photos", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    server = web_app.make_server(args.model, "127.0.0.1", 0, web_app.Limits(upload_bytes=100_000_000, pixels=50_000_000))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base, hint_aware = web_app.address(server), server.studio.hint_aware
    rows = []
    try:
        for width, height in SIZES:
            _, body, _ = _post(f"{base}api/photos", _photo(pathlib.Path(args.photos), (width, height)),
                               "application/octet-stream")
            photo_id = json.loads(body)["id"]
            for count in HINT_COUNTS if hint_aware else (0,):
                timings = _measure(base, photo_id, _hints(count, width, height), args.repeats)
                rows.append([f"{width}x{height}", count, *(f"{t:.3f}" for t in timings)])
    finally:
        server.shutdown()
        server.server_close()
    print(f"Model: {args.model or 'the shipped model'}"
          f"{'' if hint_aware else ' (trained without hints: timed without them)'}; median of {args.repeats}.\n")
    print(measure.table(["photo", "hints", "colourize s", "PNG encode s", "server-side s", "round trip s"], rows))


if __name__ == "__main__":
    main()
