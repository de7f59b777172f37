"""Wall time and peak memory of a command's whole process tree, for the benchmarks.

Peak memory is the largest sum of resident set sizes over the process and all
its descendants (a Beam job's workers included), sampled every 50 ms from /proc.
CPU time is the sum over the same processes of the last CPU time seen for each
(a process's last 50 ms may be missed): on a shared machine, where a process
does not get a core to itself, it is what a job costs.
"""

import dataclasses
import pathlib
import os
import subprocess
import sys
import time

_PAGE = os.sysconf("SC_PAGE_SIZE")
_REPO = pathlib.Path(__file__).resolve().parents[1]
_TICK = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass
class Measurement:
    seconds: float
    peak_mb: float
    output: str
    cpu_seconds: float = 0.0


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(parent, []).append(int(entry))
    return tree


def _tree_usage(pid: int, cpu_ticks: dict[int, int]) -> int:
    """The resident bytes of `pid` and its descendants now; records each one's CPU ticks in `cpu_ticks`."""
    tree, total, todo = _children(), 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/statm") as handle:
                total += int(handle.read().split()[1]) * _PAGE
            with open(f"/proc/{current}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            cpu_ticks[current] = int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
        todo.extend(tree.get(current, []))
    return total


def run(args: list[str], env: dict | None = None) -> Measurement:
    """Run a command to completion; raise if it fails."""
    start = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, **(env or {})})
    peak, cpu_ticks = 0, {}
    while process.poll() is None:
        peak = max(peak, _tree_usage(process.pid, cpu_ticks))
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    output = process.stdout.read()
    if process.returncode:
        raise RuntimeError(f"{' '.join(args)} failed ({process.returncode}):\n{output[-3000:]}")
    return Measurement(seconds, peak / 2**20, output, sum(cpu_ticks.values()) / _TICK)


def python(*args: str, env: dict | None = None) -> Measurement:
    return run([sys.executable, *args], env)


def beam_job(inputs: list, output, workers: int, *flags: str, python: str = sys.executable,
             env: dict | None = None) -> Measurement:
    """The project's Beam job over `inputs` with `workers` worker processes, run by `python` from this checkout."""
    return run([str(python), "-m", "beam_jobs.preprocess", *(f"--input={i}" for i in inputs), f"--output={output}",
                f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing", *flags],
               env={"PYTHONPATH": str(_REPO), **(env or {})})


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    cells = [headers, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
