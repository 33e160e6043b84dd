"""What every benchmark prints with: progress with elapsed time, and how busy the machine was."""

from __future__ import annotations

import os
import time


class Progress:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.start = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.start:6.1f}s {self.prefix}] {message}", flush=True)


def load_average() -> float:
    """The 1-minute load average: the machine is shared, so the numbers say how busy it was."""
    return round(os.getloadavg()[0], 1)


def interrupt(signum: int, frame: object) -> None:
    """A signal handler that unwinds like Ctrl-C, so servers started in `finally` blocks stop."""
    raise KeyboardInterrupt(f"signal {signum}")
