"""What runs beside the soak (bench.soak): the producer at a steady rate that never gives an event up,
the consumer group's lag, and the memory of every process of the stack, each in a thread.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bench.common import process_rss, tree_memory
from bench.soak_figures import LagSample, MemorySample, group_lag

if TYPE_CHECKING:
    from bench.faults_stack import Phase


class RatedProducer:
    """The phase's events at `rate` per second; a send that fails (the broker is down) is sent again
    until acknowledged, as a producer that must not lose an event would. A copy sent twice is the
    router's to dedupe (same source#id)."""

    def __init__(self, phase: Phase, rate: float) -> None:
        from events.codec import encode_structured
        from schemas.signing import seal

        self.phase = phase
        self.rate = rate
        key = phase.stack.signing_key
        self._encoded = [(e.key.encode(), *encode_structured(seal(e, key))) for e in phase.events]
        self._lock = threading.Lock()
        self._failed: deque[int] = deque()
        self.acked: set[int] = set()
        self.ends: dict[int, int] = {}  # partition → highest acknowledged offset + 1
        self.resent = 0
        self.first: float | None = None  # monotonic time of the first send
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-producer", daemon=True)

    def start(self) -> RatedProducer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    @property
    def end_total(self) -> int:
        with self._lock:
            return sum(self.ends.values())

    def ends_now(self) -> dict[int, int]:
        with self._lock:
            return dict(self.ends)

    def _ok(self, i: int, meta: Any) -> None:
        with self._lock:
            self.acked.add(i)
            self.ends[meta.partition] = max(self.ends.get(meta.partition, 0), meta.offset + 1)

    def _failed_send(self, i: int, exc: BaseException) -> None:
        with self._lock:
            if i not in self.acked:
                self._failed.append(i)

    def _send(self, producer: Any, i: int) -> None:
        from kafka.errors import KafkaError

        key, value, headers = self._encoded[i]
        try:
            future = producer.send(self.phase.settings.events_topic, key=key, value=value, headers=headers)
        except KafkaError as exc:  # no metadata within max_block_ms: the broker is away
            self._failed_send(i, exc)
            return
        future.add_callback(self._ok, i)
        future.add_errback(self._failed_send, i)

    def _retry_failed(self, producer: Any) -> None:
        while True:
            with self._lock:
                if not self._failed:
                    return
                i = self._failed.popleft()
            self.resent += 1
            self._send(producer, i)

    def _run(self) -> None:
        from kafka.errors import KafkaError

        from events.kafka_clients import make_producer

        # A short block: while the broker is down the loop keeps its pace and sends again later.
        producer = make_producer(self.phase.stack.kafka, client_id="bench-soak", max_block_ms=2000)
        count = len(self._encoded)
        try:
            start = self.first = time.monotonic()
            for i in range(count):
                if self._stop.is_set():
                    return
                self._retry_failed(producer)
                delay = start + i / self.rate - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                self._send(producer, i)
            # Then until every event is acknowledged (the last failures sent again).
            while len(self.acked) < count and not self._stop.is_set():
                producer.flush(30)
                self._retry_failed(producer)
                self._stop.wait(0.5)
        finally:
            self.finished.set()
            try:
                producer.close(timeout=10)
            except KafkaError as exc:
                # Interrupted while the broker was away: its unanswered sends were never counted as
                # acknowledged, so nothing is lost to the figures; a traceback would only hide the report.
                print(f"soak producer: closed without its last answers ({type(exc).__name__})", flush=True)


class LagWatch:
    """Every `interval` s: the group's lag (acknowledged end offsets minus committed offsets)."""

    def __init__(self, phase: Phase, producer: RatedProducer, start: float, interval: float = 2.0) -> None:
        self.phase = phase
        self.producer = producer
        self.start_at = start
        self.interval = interval
        self.samples: list[LagSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-lag", daemon=True)

    def start(self) -> LagWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        from kafka.errors import KafkaError

        from events.kafka_clients import make_admin

        group = self.phase.settings.consumer_group
        admin: Any = None
        try:
            while not self._stop.wait(self.interval):
                lag: int | None = None
                try:
                    if admin is None:
                        admin = make_admin(self.phase.stack.kafka, request_timeout_ms=5000)
                    offsets = admin.list_group_offsets(group).get(group, {})
                    committed = {tp.partition: o.offset for tp, o in offsets.items() if o.offset >= 0}
                    lag = group_lag(self.producer.ends_now(), committed)
                except (KafkaError, OSError):  # the broker is down: reconnect on the next look
                    if admin is not None:
                        with contextlib.suppress(KafkaError, OSError):
                            admin.close()
                    admin = None
                self.samples.append((time.monotonic() - self.start_at, lag))
        finally:
            if admin is not None:
                with contextlib.suppress(KafkaError, OSError):
                    admin.close()


class MemoryWatch:
    """Every `interval` s, each role's resident memory: its process (and with `tree`, its descendants)
    as the role's pid function names it now — a restarted process is sampled under its new pid."""

    def __init__(self, start: float, interval: float = 5.0) -> None:
        self.start_at = start
        self.interval = interval
        self.roles: dict[str, tuple[Callable[[], int | None], bool]] = {}
        self.samples: dict[str, list[MemorySample]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-memory", daemon=True)

    def watch(self, role: str, pid: Callable[[], int | None], tree: bool = True) -> None:
        self.roles[role] = (pid, tree)
        self.samples[role] = []

    def start(self) -> MemoryWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def sample(self) -> None:
        now = time.monotonic() - self.start_at
        for role, (pid_of, tree) in self.roles.items():
            pid = pid_of()
            rss = 0
            if pid is not None:
                rss = tree_memory(pid).rss_bytes if tree else process_rss(pid)
            self.samples[role].append((now, pid, rss))

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return
