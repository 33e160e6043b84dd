"""Small helpers for the child processes of the local stack: ports, waiting, clean stops."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if a server could listen on `port` now.

    The probe binds the way the servers themselves do, with SO_REUSEADDR (Java's ServerSocket, so
    Kafka, and uvicorn, so Prefect and the gateway, all set it): connections of a stopped server
    that linger in TIME_WAIT do not keep its successor off the port, while a socket someone LISTENS
    on still does. Without it a restarted broker saw its own old port as taken and moved away from
    the address every client had.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
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


class Cancelled(RuntimeError):
    """A wait given up because the stack is stopping."""


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    process: ManagedProcess | Sequence[ManagedProcess] | None = None,
    cancel: threading.Event | None = None,
) -> float:
    """Poll `check` until true; fail early if `process` (or any of several) died or `cancel` is set.
    Returns seconds waited."""
    processes = [] if process is None else [process] if isinstance(process, ManagedProcess) else process
    start = time.monotonic()
    while True:
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"{what}: no longer waited for, the stack is stopping")
        for watched in processes:
            if watched.proc is not None and not watched.alive():
                raise RuntimeError(f"{what}: {watched.failure()}")
        try:
            if check():
                return time.monotonic() - start
        except Exception:  # noqa: BLE001 - the thing we wait for is not up yet
            pass
        if time.monotonic() - start > timeout:
            detail = "".join(f"\n{watched.failure()}" for watched in processes)
            raise TimeoutError(f"{what}: not ready after {timeout:.0f}s{detail}")
        time.sleep(0.25)


def pid_alive(pid: int) -> bool:
    """True while `pid` runs. A zombie (exited, not yet reaped by its parent) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    try:
        # Field 3 of /proc/<pid>/stat is the state; the command name before it is in parentheses
        # and may itself contain spaces or parentheses, hence the split on the last ")".
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        # Gone since kill(0); or no procfs at all (macOS), where kill(0) is all we know.
        return not Path("/proc/self").exists()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def process_args(pid: int) -> list[str] | None:
    """The command line `pid` runs, or None if it is gone or cannot be read.

    Used to check that a pid read from a file still is the process that wrote it before signalling
    it: pids are recycled, and a stale file must never get an unrelated process killed.
    """
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return None  # gone
        return _ps_args(pid)
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a] or None


def _ps_args(pid: int) -> list[str] | None:
    # No procfs: ask ps. Its output joins the arguments with spaces, good enough to recognise a command.
    try:
        out = subprocess.run(
            ["ps", "-ww", "-o", "args=", "-p", str(pid)], capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return out.stdout.split() or None


def stop_pid(pid: int, timeout: float = 30) -> bool:
    """Stop a process we did not start (a detached stack); True if it is gone."""
    return not stop_pids([pid], timeout, kill=False)


def stop_pids(pids: Iterable[int], timeout: float = 30, kill: bool = True) -> list[int]:
    """SIGTERM every pid at once, wait until they are gone; after `timeout`, SIGKILL the rest if `kill`.

    Returns the pids that did not stop on SIGTERM. The caller has checked that each pid is the
    process it means (`process_args`).
    """
    waiting = []
    for pid in dict.fromkeys(pids):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        waiting.append(pid)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        waiting = [p for p in waiting if pid_alive(p)]
        if waiting:
            time.sleep(0.1)
    stubborn = [p for p in waiting if pid_alive(p)]
    if kill:
        for pid in stubborn:
            with contextlib.suppress(ProcessLookupError):  # it stopped just now after all
                os.kill(pid, signal.SIGKILL)
    return stubborn
