"""Small helpers for the child processes of the local stack: ports, waiting, clean stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


class ManagedProcess:
    """A child process with its output in a log file, stopped with SIGTERM then SIGKILL."""

    def __init__(self, name: str, command: Sequence[str], log_path: Path, env: Mapping[str, str]) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self.env = dict(env)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, cwd: Path | None = None) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        # Own process group: Ctrl-C in the terminal reaches the supervisor only, which then
        # stops the children in order instead of all of them dying at once.
        self.proc = subprocess.Popen(
            self.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=cwd,
            start_new_session=True,
        )
        log.close()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL, no chance to clean up: for crash tests."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def failure(self) -> str:
        return (
            f"{self.name} exited with {self.proc.returncode if self.proc else '?'}; "
            f"last lines of {self.log_path}:\n{tail(self.log_path)}"
        )


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, process: ManagedProcess | None = None
) -> float:
    """Poll `check` until true; fail early if `process` died. Returns the seconds waited."""
    start = time.monotonic()
    while True:
        if process is not None and process.proc is not None and not process.alive():
            raise RuntimeError(f"{what}: {process.failure()}")
        try:
            if check():
                return time.monotonic() - start
        except Exception:  # noqa: BLE001 - the thing we wait for is not up yet
            pass
        if time.monotonic() - start > timeout:
            detail = f"\n{process.failure()}" if process is not None else ""
            raise TimeoutError(f"{what}: not ready after {timeout:.0f}s{detail}")
        time.sleep(0.25)


def stop_pid(pid: int, timeout: float = 30) -> bool:
    """Stop a process we did not start (a detached stack); True if it is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False
