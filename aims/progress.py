"""Progress on long waits, where a person reads it.

At a terminal, a live line under the log says what is going on, how far it got and for how long
(rich, imported only then: its start-up cost is for a person, not for scripts). Anything else (a
pipe, CI, the tests that parse the output) gets exactly the log lines, as before.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class Tracker:
    """Log lines, plus the live line at a terminal."""

    def __init__(self, progress: Progress | None = None, task: TaskID | None = None) -> None:
        self._progress = progress
        self._task = task

    def say(self, line: str) -> None:
        """A line of the log: printed above the live line, never interpreted as markup."""
        if self._progress is None:
            print(line, flush=True)
            return
        from rich.text import Text

        self._progress.console.print(Text(line))

    def step(self, message: str, indent: str = "") -> None:
        """A step of the work: logged, and what the live line says is being done."""
        self.say(f"{indent}{message}")
        self.update(doing=message)

    def update(self, *, done: int | None = None, total: int | None = None, doing: str | None = None) -> None:
        """Move the live line: `done` of `total`, and what is being done now."""
        if self._progress is None or self._task is None:
            return
        self._progress.update(self._task, completed=done, total=total, description=doing)


@contextmanager
def tracking(doing: str, total: int | None = None) -> Iterator[Tracker]:
    """A tracker for one long wait; the live line goes away when it ends."""
    if not sys.stdout.isatty():
        yield Tracker()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = [SpinnerColumn(), TextColumn("{task.description}", markup=False)]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    with Progress(*columns, TimeElapsedColumn(), transient=True) as progress:
        yield Tracker(progress, progress.add_task(doing, total=total))
