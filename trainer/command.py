"""What every command (`python -m trainer.task | colorize | evaluate | study | app`) shares.

Imported first by each of them: it hides TensorFlow's C++ start-up noise (CUDA
factories, oneDNN, TF-TRT notices) unless the user set a level, which only
works before TensorFlow is imported. `run(main)` then keeps the project's one
error convention (`pipeline.errors`) for flags too: a bad or unknown flag, a
missing required one or a stray argument is one line, `error: ...`, exit 2;
and `--help` prints the command's own text and flags and exits 0 (absl's exits
1, under a header naming the module's file).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags  # noqa: E402

from pipeline import errors  # noqa: E402

_HELP = {"-h", "-?", "--help", "--helpshort"}


def _parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        errors.exit_with(errors.UsageError(f"{'; '.join(str(error).splitlines())} (--help lists the flags)"))


def help_text() -> str:
    """The command's docstring, then its flags (those it defines or adopts) with their defaults and bounds."""
    listing = flags.FLAGS.module_help(sys.argv[0]).strip().split("\n", 1)[1]  # its first line names the file
    return f"{(sys.modules['__main__'].__doc__ or '').strip()}\n\nflags:\n{listing}\n\n--helpfull lists absl's own flags too."


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

    app.run(guarded, flags_parser=_parse_flags)
