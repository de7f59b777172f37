"""How long a suggested colour takes: a click on the page, and `trainer.colorize --suggest`.

    .venv/bin/python benchmarks/suggest_latency_benchmark.py [--model PATH] [--photos ../shared/data] [--runs 3]

The page: the app's own server in this process (started as `python -m trainer.app` starts it, so warmed up),
real flower photos opened over HTTP at sizes it has not seen, and on each: the first suggestion at a point,
the first with a hint, then a later one; round trip of the page's API call, as the page waits for it.
The command: fresh processes, alternated --runs times, median wall time of `trainer.colorize PHOTO --output`,
of `trainer.colorize PHOTO --suggest X,Y`, and of both in one command; what --suggest adds is the difference.
"""

import argparse
import json
import pathlib
import statistics
import sys
import tempfile
import threading

import cv2

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import measure  # noqa: E402
from benchmarks.app_benchmark import _post  # noqa: E402
from trainer.applying import web_app  # noqa: E402

SIZES = ((1024, 768), (800, 600), (640, 427), (333, 517), (4000, 3000))


def _jpeg(source: pathlib.Path, size: tuple[int, int]) -> bytes:
    return cv2.imencode(".jpg", cv2.resize(cv2.imread(str(source)), size), [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()


def page(model: str | None, sources: list[pathlib.Path]) -> list[list]:
    server = web_app.make_server(model, "127.0.0.1", 0, web_app.Limits(upload_bytes=100_000_000, pixels=50_000_000))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base, rows = web_app.address(server), []
    try:
        for (width, height), source in zip(SIZES, sources):
            _, body, _ = _post(f"{base}api/photos", _jpeg(source, (width, height)), "application/octet-stream")
            url = f"{base}api/photos/{json.loads(body)['id']}/suggest"
            hint = [{"x": width // 3, "y": height // 3, "color": "#d02030"}]
            seconds = []
            for x, y, hints in ((width // 2, height // 2, []), (width // 4, height // 2, hint),
                                (width // 2, height // 4, hint)):
                seconds.append(_post(url, json.dumps({"x": x, "y": y, "hints": hints}).encode(),
                                     "application/json")[2])
            rows.append([f"{width}x{height}", *(f"{s:.3f}" for s in seconds)])
    finally:
        server.shutdown()
        server.server_close()
    return rows


def command(model: str | None, source: pathlib.Path, runs: int) -> list[list]:
    work = pathlib.Path(tempfile.mkdtemp(prefix="suggest-benchmark-"))
    photo = work / "photo.jpg"
    photo.write_bytes(_jpeg(source, (1024, 768)))
    model_flag = [f"--model={model}"] if model else []
    variants = {"colourize (--output)": [f"--output={work / 'out'}"], "suggest (--suggest 512,384)":
                ["--suggest=512,384"], "both": [f"--output={work / 'both'}", "--suggest=512,384"]}
    times = {name: [] for name in variants}
    for _ in range(runs):
        for name, flags in variants.items():
            times[name].append(measure.python("-m", "trainer.colorize", str(photo), *flags, *model_flag,
                                              env={"PYTHONPATH": str(REPO)}).seconds)
    base = statistics.median(times["colourize (--output)"])
    return [[name, f"{statistics.median(values):.2f}", f"{statistics.median(values) - base:+.2f}"]
            for name, values in times.items()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="A .keras model or run dir (default: the shipped model).")
    parser.add_argument("--photos", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sources = sorted(pathlib.Path(args.photos).glob("flowers/*/*.jpg"))[::301][:len(SIZES)]
    print("The page's API on a warm server, one photo per size, each opened fresh (seconds, round trip):\n")
    print(measure.table(["photo", "first suggestion", "first with a hint", "a later one"], page(args.model, sources)))
    print(f"\n`trainer.colorize` on a 1024x768 photo, fresh processes, median of {args.runs} (seconds):\n")
    print(measure.table(["command", "wall s", "vs colourize"], command(args.model, sources[0], args.runs)))


if __name__ == "__main__":
    main()
