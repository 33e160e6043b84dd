"""Progress on long waits: a live line for a person at a terminal, the plain log for anything else."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import time
from aims.progress import tracking
with tracking("flow runs finished", total=3) as progress:
    progress.say("  check-data-quality [bold]x[/bold] Completed")
    progress.update(done=2)
    time.sleep(0.5)
print("after")
"""


def run(script: str, tty: bool) -> str:
    if not tty:
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
        )
        return done.stdout
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
    )
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(timeout=60) == 0
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_a_pipe_gets_the_log_lines_only() -> None:
    assert run(SCRIPT, tty=False) == "  check-data-quality [bold]x[/bold] Completed\nafter\n"


def test_a_terminal_gets_a_live_line_with_the_count_and_the_log_as_written() -> None:
    out = run(SCRIPT, tty=True)
    assert "flow runs finished" in out and "2/3" in out
    # A log line is data: its brackets are printed, never taken for styles.
    assert "check-data-quality [bold]x[/bold] Completed" in out
    assert out.rstrip().endswith("after")
