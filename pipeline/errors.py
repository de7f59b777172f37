"""The project's one error convention.

A problem the person running a command can fix (a bad flag value, a missing
file, records that do not fit the run) is a `UsageError`: every command
prints it as one line, `error: ...`, and exits with status 2, no traceback.
Anything else is a bug and keeps its traceback.
"""

import sys


class UsageError(ValueError):
    """A problem the person can fix, named in one line."""


class DataError(UsageError):
    """The records cannot be used as asked: no manifest, an empty split, ..."""


class ConfigError(UsageError):
    """A configuration that cannot work: a strategy, a model, flags that contradict each other."""


EXIT_STATUS = 2


def report(error: UsageError) -> int:
    """Print a usage error as the convention says; return the command's exit status."""
    print(f"error: {error}", file=sys.stderr)
    return EXIT_STATUS


def exit_with(error: UsageError):
    """Report a usage error and end the command."""
    sys.exit(report(error))
