"""The gateway app served by a real uvicorn in a thread, raw HTTP over a socket, and the process's RSS.

Not a test module. The size and concurrency caps are about what a server does with bytes on a socket
(flow control, when it answers, when it closes), which Starlette's in-process test client cannot show:
it hands the app the whole body at once.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.app import uvicorn_config
from schemas.settings import AimsSettings

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@contextmanager
def served(app: Any, settings: AimsSettings) -> Iterator[int]:
    """`app` under uvicorn with the gateway's own server settings, on a free loopback port; yields it."""
    import uvicorn

    server = uvicorn.Server(uvicorn_config(app, settings))
    sock = socket.create_server(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    # Off the main thread uvicorn installs no signal handlers; `should_exit` stops it.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(2000):
        if server.started or not thread.is_alive():
            break
        time.sleep(0.005)
    assert server.started, "uvicorn did not start"
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


def _kib(key: str) -> int:
    found = re.search(rf"^{key}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    assert found is not None, f"no {key} in {_STATUS}"
    return int(found.group(1)) * 1024


def rss() -> int:
    """This process's resident set now, in bytes (the server runs in this process)."""
    return _kib("VmRSS")


@dataclass
class PeakRss:
    """The highest RSS of this process since `start`, in bytes above what it was then.

    The kernel's high-water mark (VmHWM) is reset by writing 5 to /proc/self/clear_refs, so a peak
    set by an earlier test does not hide this one; where that is refused, RSS is sampled instead.
    """

    baseline: int = 0
    exact: bool = False
    sampled: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> PeakRss:
        self.baseline = rss()
        try:
            _CLEAR_REFS.write_text("5")
            self.exact = True
        except OSError:
            self.exact = False
        self.sampled = self.baseline
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.sampled = max(self.sampled, rss())

    def growth(self) -> int:
        peak = max(self.sampled, rss(), _kib("VmHWM") if self.exact else 0)
        return peak - self.baseline

    def stop(self) -> int:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        return self.growth()


@dataclass
class Exchange:
    """What came back for one raw request: the bytes, and how much of the body was sent."""

    received: bytes
    sent_body: int

    @property
    def status(self) -> int | None:
        found = re.match(rb"HTTP/1\.1 (\d{3}) ", self.received)
        return int(found.group(1)) if found else None

    @property
    def head(self) -> str:
        return self.received.split(b"\r\n\r\n", 1)[0].decode("latin-1")


def exchange(
    port: int,
    path: str,
    headers: dict[str, str],
    body: Iterable[bytes],
    *,
    chunked: bool,
    give_up: Any = None,
    wait: float = 20.0,
) -> Exchange:
    """POST `body` piece by piece, reading the answer at the same time.

    The answer is read by its own thread while the body is still going out: a server that answers
    early and closes makes the next send fail (and may reset the connection), and the answer must
    have been read by then. Sending stops when the answer's head is in, when the server closed, or
    when `give_up()` says so (a test's budget, e.g. memory); `wait` bounds how long the answer is
    awaited after the last byte, so a server that never answers fails the test instead of hanging it.
    """
    conn = socket.create_connection(("127.0.0.1", port))
    received = bytearray()
    answered = threading.Event()
    closed = threading.Event()

    def read() -> None:
        try:
            while chunk := conn.recv(65536):
                received.extend(chunk)
                if b"\r\n\r\n" in received:
                    answered.set()
        except OSError:
            pass
        finally:
            answered.set()
            closed.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    sent = 0
    try:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        for piece in body:
            if answered.is_set():
                break
            if give_up is not None and give_up():
                return Exchange(bytes(received), sent)
            conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            sent += len(piece)
        else:
            if chunked:
                conn.sendall(b"0\r\n\r\n")
        answered.wait(wait)
    except OSError:
        pass  # the server closed while the body was going out: its answer, if any, was read
    finally:
        # Half-close, then give the reader the rest of the answer (the server closes after a cap).
        with suppress(OSError):
            conn.shutdown(socket.SHUT_WR)
        closed.wait(5)
        conn.close()
        reader.join(5)
    return Exchange(bytes(received), sent)


def zeros(total: int, piece: int = 64 * 1024) -> Iterator[bytes]:
    """`total` bytes in pieces, made as they are sent: the test itself never holds more than one."""
    chunk = b"0" * piece
    left = total
    while left > 0:
        yield chunk[: min(piece, left)]
        left -= piece
