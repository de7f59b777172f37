"""Progress while scoring, so scoring a few thousand photos on a CPU does not look hung."""

import sys
import time

import keras

PROGRESS_SECONDS = 30.0


class Progress:
    """Keras's progress bar on a terminal; elsewhere (a log, a pipe) a plain line every PROGRESS_SECONDS."""

    def __init__(self, total: int | None):
        self.total, self.count, self.start = total, 0, time.perf_counter()
        self.last = self.start
        self.bar = keras.utils.Progbar(total, unit_name="photo") if sys.stdout.isatty() else None

    def add(self, count: int) -> None:
        self.count += count
        if self.bar:
            self.bar.add(count)
        elif time.perf_counter() - self.last >= PROGRESS_SECONDS:
            self.last = time.perf_counter()
            self._line()

    def done(self) -> None:
        if not self.bar:
            self._line()

    def _line(self) -> None:
        of = f"/{self.total}" if self.total else ""
        rate = self.count / max(time.perf_counter() - self.start, 1e-9)
        print(f"  scored {self.count}{of} photos, {rate:.1f} photos/s", flush=True)
