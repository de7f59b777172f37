"""What every command (`python -m trainer.task | colorize | evaluate | study | app`) shares.

Imported first by each of them: it hides TensorFlow's C++ start-up noise (CUDA
factories, oneDNN, TF-TRT notices) unless the user set a level or gave
`--verbose`, which only works before TensorFlow is imported. XLA logs through
absl, which that level does not reach ("Compiled cluster using XLA!"): while a
command runs, lines in absl's log format written to the process's stderr by
native code are dropped, unless `--verbose`; the command's own lines (Python's
sys.stderr) and anything else native code writes still reach the console.
`run(main)` then keeps the project's one
error convention (`pipeline.errors`) for flags too: a bad or unknown flag, a
missing required one or a stray argument is one line, `error: ...`, exit 2;
and `--help` prints the command's own text and flags and exits 0 (absl's exits
1, under a header naming the module's file).
"""

import atexit
import os
import re
import sys
import threading

VERBOSE = "--verbose" in sys.argv[1:]
if not VERBOSE:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags  # noqa: E402

from pipeline import errors  # noqa: E402

flags.DEFINE_bool("verbose", False, "Also show TensorFlow's, XLA's and absl's own log lines.")

_HELP = {"-h", "-?", "--help", "--helpshort"}
# absl's log line ("I0000 00:00:1796693914.516928   26836 device_compiler.h:188] ...") and its preamble
_NATIVE_LOG = re.compile(rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] |WARNING: All log messages before "
                         rb"absl::InitializeLog\(\) is called)")


def hide_native_logs() -> None:
    """Native code's stderr (fd 2) through a filter that drops absl's log lines; Python's sys.stderr keeps the
    console itself. A thread forwards the rest; at exit, fd 2 is given back and what is left is forwarded."""
    console = os.dup(2)
    sys.stderr.flush()
    sys.stderr = open(console, "w", buffering=1, closefd=False)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)

    def forward():
        with open(read, "rb") as lines:
            for line in lines:
                if not _NATIVE_LOG.match(line):
                    os.write(console, line)

    forwarding = threading.Thread(target=forward, daemon=True)
    forwarding.start()

    def restore():
        os.dup2(console, 2)  # closes the pipe's last write end here: the thread reads to its end and stops
        forwarding.join(timeout=2)

    atexit.register(restore)


def _parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        errors.exit_with(errors.UsageError(f"{'; '.join(str(error).splitlines())} (--help lists the flags)"))


def help_text() -> str:
    """The command's docstring, then its flags (those it defines or adopts) with their defaults and bounds."""
    listing = flags.FLAGS.module_help(sys.argv[0]).strip().split("\n", 1)[1]  # its first line names the file
    return (f"{(sys.modules['__main__'].__doc__ or '').strip()}\n\nflags:\n{listing}\n  --[no]verbose: "
            f"{flags.FLAGS['verbose'].help}\n\n--helpfull lists absl's own flags too.")


def run(main, takes_arguments: bool = False) -> None:
    """absl's app.run(main), with every usage error, of flags or of main, reported as one line.

    takes_arguments: main uses the positional arguments (photos); else any is refused.
    """
    if _HELP & set(sys.argv[1:]):
        print(help_text())
        sys.exit(0)

    def guarded(argv):
        if len(argv) > 1 and not takes_arguments:
            errors.exit_with(errors.UsageError(f"unexpected arguments: {' '.join(argv[1:])}; this command takes only "
                                               "flags"))
        try:
            return main(argv)
        except errors.UsageError as error:
            errors.exit_with(error)

    if not VERBOSE:
        hide_native_logs()
    app.run(guarded, flags_parser=_parse_flags)
