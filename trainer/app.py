"""A local web page to colourize a photo and steer it with colour hints.

    python -m trainer.app [--model PATH] [--port 8080] [--host 127.0.0.1]

Open the printed address in a browser, open a photo (gray or colour: colour is
discarded first) and see it gray beside the model's colourization. Clicking
the photo pins the chosen colour's chroma at that point (`trainer.network.hints`) and
re-colourizes it; the result downloads as a PNG at the photo's own size.

Photos are kept in this process's memory only, never written anywhere; the few
most recent ones are kept. Uploads above --max_upload_mb or --max_pixels are
refused with a message before anything is decoded. The page is plain HTML, CSS
and JavaScript from `trainer/applying/app_page` and fetches nothing from the internet.
"""

from trainer import command  # first: it quiets TensorFlow's start-up

from absl import flags

from pipeline import errors
from trainer.applying import web_app

flags.DEFINE_string("model", None, "A .keras model, a training run's model_dir, a SavedModel folder or a "
                    "TensorFlow Lite file from trainer.export (*.tflite: it colourizes, with hints, but does not "
                    "suggest colours) (default: the model shipped with the project).")
flags.DEFINE_string("host", "127.0.0.1", "Address to listen on; the default lets only this computer in.")
flags.DEFINE_integer("port", 8080, "Port to listen on (0: any free port).", lower_bound=0, upper_bound=65535)
flags.DEFINE_float("max_upload_mb", 20.0, "Largest photo file accepted, in megabytes (10^6 bytes).",
                   lower_bound=0.0)
flags.DEFINE_integer("max_pixels", 40_000_000, "Largest photo accepted, in pixels (width x height), read from "
                     "the file header before decoding.", lower_bound=1)
flags.DEFINE_float("request_seconds", web_app.REQUEST_SECONDS, "A request's line, headers and body must all "
                   "arrive within this many seconds, or it is answered 408.", lower_bound=1.0)
flags.DEFINE_integer("decode_memory_mb", web_app.DECODE_MEMORY_BYTES // 10**6, "Memory that photos being decoded "
                     "(and gray previews being made) may hold at once, in megabytes, counted from each photo's "
                     "header; the others wait.", lower_bound=1)
FLAGS = flags.FLAGS


def main(argv):
    limits = web_app.Limits(int(FLAGS.max_upload_mb * 1e6), FLAGS.max_pixels, FLAGS.request_seconds,
                            FLAGS.decode_memory_mb * 10**6)
    try:
        server = web_app.make_server(FLAGS.model, FLAGS.host, FLAGS.port, limits)
    except OSError as error:
        raise errors.UsageError(f"cannot listen on {FLAGS.host}:{FLAGS.port}: {error.strerror or error}") from None
    print(f"Colourizing at {web_app.address(server)} (Ctrl+C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    command.run(main)
