"""The job's own file-system calls, for local and gs:// paths alike, answered in one line when they cannot work.

Beam's Cloud Storage client retries for about 120 s before it gives up on a
bucket it cannot reach (no network, no credentials, a wrong address) and then
ends in a traceback. The launcher asks about each gs:// path in a thread it
waits for at most REACH_SECONDS, so such a path is named, with what to check,
before anything starts.
"""

import threading

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems

from pipeline.errors import UsageError

REACH_SECONDS = 20
CLOUD_SETUP = "bash scripts/setup.sh dataflow"


def is_cloud(path: str) -> bool:
    return path.startswith("gs://")


def join(folder: str, name: str) -> str:
    """folder/name for local and gs:// paths alike (FileSystems.join needs the cloud libraries to build a graph)."""
    return f"{folder.rstrip('/')}/{name}"


def _first_match(pattern: str) -> bool:
    try:
        return bool(FileSystems.match([pattern], limits=[1])[0].metadata_list)
    except ValueError as error:  # no file system for the scheme: gs:// without Beam's gcp extra
        if is_cloud(pattern):
            raise UsageError(f"{pattern}: this Python cannot read gs:// paths (Beam's gcp extra is not installed); "
                             f"run `{CLOUD_SETUP}` and use .venv-dataflow/bin/python") from None
        raise UsageError(f"{pattern}: {error}") from None


def _root_cause(error: Exception) -> str:
    """The first line of the innermost error: Beam wraps each path's error in a BeamIOError, maybe twice."""
    while isinstance(error, BeamIOError) and error.exception_details:
        error = next(iter(error.exception_details.values()))
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def _within_deadline(ask, path: str):
    """ask(path), or a UsageError naming the path if Cloud Storage does not answer in REACH_SECONDS.

    The thread is a daemon: one still retrying does not keep the command from exiting.
    """
    answer = {}

    def run():
        try:
            answer["value"] = ask(path)
        except Exception as error:  # any failure of Cloud Storage is the path's problem, told in one line
            answer["error"] = error

    thread = threading.Thread(target=run, name=f"asking {path}", daemon=True)
    thread.start()
    thread.join(REACH_SECONDS)
    check = ("check the network, the credentials (gcloud auth application-default login, or the "
             "service account's roles) and the bucket's name")
    if thread.is_alive():
        raise UsageError(f"{path}: no answer from Cloud Storage within {REACH_SECONDS} s; {check}")
    error = answer.get("error")
    if isinstance(error, UsageError):
        raise error
    if error is not None:
        raise UsageError(f"{path}: {_root_cause(error)}; {check}")
    return answer["value"]


def matches(pattern: str) -> bool:
    """Whether any file matches `pattern`; on gs://, within REACH_SECONDS or a UsageError."""
    if not is_cloud(pattern):
        return _first_match(pattern)
    return _within_deadline(_first_match, pattern)


def check_reachable(folder: str) -> None:
    """A UsageError, in one line, unless `folder` can be listed (on gs://, within REACH_SECONDS)."""
    matches(join(folder, "**"))


def delete_folder(folder: str) -> None:
    """Delete `folder` and everything under it, if it exists.

    On gs:// the trailing '/' is what makes Beam delete a folder: without it,
    it deletes the one object of that exact name, which a folder never is, and
    leaves every file under it in place. Locally, with it, Beam would empty
    the directory and leave it; without it, it removes the directory.
    """
    if is_cloud(folder):
        FileSystems.delete([folder.rstrip("/") + "/"])
    elif FileSystems.exists(folder):
        FileSystems.delete([folder])
