"""What every benchmark shares: the repository's root, progress with elapsed time, how busy the machine
was, numbers formatted for the report (percentiles, ratios against a floor), stopping what was started,
and the memory of a process tree."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


class Progress:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.start = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.start:6.1f}s {self.prefix}] {message}", flush=True)


def load_average() -> float:
    """The 1-minute load average: the machine is shared, so the numbers say how busy it was."""
    return round(os.getloadavg()[0], 1)


def fmt(value: Any, spec: str) -> str:
    """`value` in `spec`; a dash for a figure not measured (None) or undefined (NaN)."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return format(value, spec)


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); q in [0, 100]."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ratio(value: float | None, floor: float | None) -> float | None:
    """`value` / `floor`, or None when either was not measured (or the floor is 0 or NaN)."""
    if value is None or floor is None or value != value or floor != floor or floor == 0:
        return None
    return value / floor


def ratio_text(value: float | None, floor: float | None, spec: str = ".2f") -> str:
    """`value` against `floor` as the report prints it: `0.97×`, or a dash when unmeasured."""
    measured = ratio(value, floor)
    return "–" if measured is None else f"{format(measured, spec)}×"


def parse_time(text: str) -> float:
    """An ISO 8601 timestamp (as Prefect's API gives them) in seconds since the epoch."""
    return datetime.fromisoformat(text).timestamp()


class Teardown:
    """What a benchmark started, stopped in reverse order; one failing stop does not keep the rest running."""

    def __init__(self, say: Progress | Callable[[str], None]) -> None:
        self.say = say
        self._stops: list[tuple[str, Callable[[], object]]] = []

    def started(self, what: str, stop: Callable[[], object]) -> None:
        self._stops.append((what, stop))

    def close(self) -> None:
        while self._stops:
            what, stop = self._stops.pop()
            self.say(f"stopping {what}…")
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - the rest must still be stopped; the error is printed
                self.say(f"  stopping {what} failed: {exc!r}")


def interrupt(signum: int, frame: object) -> None:
    """A signal handler that unwinds like Ctrl-C, so servers started in `finally` blocks stop."""
    raise KeyboardInterrupt(f"signal {signum}")


# -- memory of a process and its descendants ------------------------------------------------------


@dataclass(frozen=True)
class TreeMemory:
    """One sample of a process tree: resident memory summed over the live processes in it."""

    rss_bytes: int  # VmRSS summed: shared libraries are counted once per process
    pss_bytes: int  # Pss summed (each shared page split among its users): what the tree costs
    processes: int


def _ppid_and_state(pid: int) -> tuple[int, str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone between the listing and the read
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ")": split on the last one.
    fields = stat.rsplit(")", 1)[-1].split()
    return int(fields[1]), fields[0]


def process_tree(root: int) -> list[int]:
    """`root` and every live descendant (zombies left out), from the parent pids in /proc/*/stat.

    The parent pid of every process is read rather than /proc/<pid>/task/*/children, which only
    kernels built with CONFIG_PROC_CHILDREN have.
    """
    children: dict[int, list[int]] = {}
    alive: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        found = _ppid_and_state(int(entry.name))
        if found is None:
            continue
        ppid, state = found
        children.setdefault(ppid, []).append(int(entry.name))
        if state not in ("Z", "X"):
            alive.add(int(entry.name))
    tree: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in alive:
            tree.append(pid)
        # A zombie's children were handed to init already: nothing is lost by walking it anyway.
        todo.extend(children.get(pid, []))
    return tree


def _status_kb(path: Path, field: str) -> int:
    try:
        text = path.read_text()
    except OSError:  # the process ended, or smaps_rollup is not readable here
        return 0
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0  # kernel threads and exiting processes have no VmRSS line


def process_rss(pid: int) -> int:
    """Resident bytes of the process alone, without its children; 0 once it is gone."""
    return _status_kb(Path(f"/proc/{pid}/status"), "VmRSS") * 1024


def tree_memory(root: int) -> TreeMemory:
    """Resident and proportional memory of `root` and its descendants, now (Linux /proc)."""
    pids = process_tree(root)
    rss = sum(_status_kb(Path(f"/proc/{pid}/status"), "VmRSS") for pid in pids)
    pss = sum(_status_kb(Path(f"/proc/{pid}/smaps_rollup"), "Pss") for pid in pids)
    return TreeMemory(rss_bytes=rss * 1024, pss_bytes=pss * 1024, processes=len(pids))
