"""Watching a phase of the fault benchmark (bench.faults): its drain, the worker's memory and Prefect's
active runs while it lasts, then the runs finishing, counted and cleared before the next phase.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bench.common import Progress, tree_memory
from bench.faults_stack import ACTIVE, LOST_GRACE, SETTLED, UNSTARTED, Phase, Stack, Tally, tally
from connectors.prefect_runs import SUPERSEDED

if TYPE_CHECKING:
    from connectors.prefect_api import PrefectApi


class DrainWatch:
    """Every second (`interval`): runs created for the phase's keys, and the group's committed offsets."""

    def __init__(
        self, phase: Phase, first_publish: float, end_total: int, timeout: float, interval: float = 1.0
    ) -> None:
        self.phase = phase
        # Seconds between looks: a burst of 10,000 keys makes each look a large query of its own.
        self.interval = interval
        self.first_publish = first_publish
        self.end_total = end_total
        self.timeout = timeout
        self.runs = 0
        self.committed: int | None = None
        self.drained_at: float | None = None  # monotonic
        self.gave_up: str | None = None
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"drain-{phase.name}", daemon=True)

    @property
    def fraction(self) -> float:
        return self.runs / len(self.phase.events)

    @property
    def drain_s(self) -> float | None:
        return None if self.drained_at is None else self.drained_at - self.first_publish

    def start(self) -> DrainWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def wait(self, say: Progress, every: float = 15) -> None:
        while not self.done.wait(every):
            lag = "?" if self.committed is None else str(self.end_total - self.committed)
            say(f"  … {self.runs}/{len(self.phase.events)} events have runs, lag {lag}")

    def _run(self) -> None:
        import httpx
        from kafka.errors import KafkaError

        from events.kafka_clients import make_admin

        api = self.phase.stack.api()
        admin: Any = None
        keys = self.phase.keys
        group = self.phase.settings.consumer_group
        lag_zero_since: float | None = None
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                with contextlib.suppress(httpx.HTTPError):  # the server is busy: asked again next second
                    self.runs = api.count_runs({"idempotency_key": {"any_": keys}})
                try:
                    if admin is None:
                        admin = make_admin(self.phase.stack.kafka, request_timeout_ms=5000)
                    offsets = admin.list_group_offsets(group).get(group, {})
                    self.committed = sum(o.offset for o in offsets.values() if o.offset >= 0)
                except (KafkaError, OSError):
                    # The broker is restarting (or the group's coordinator moving): reconnect next time.
                    self.committed = None
                    if admin is not None:
                        with contextlib.suppress(KafkaError, OSError):
                            admin.close()
                    admin = None
                lag_zero = self.committed is not None and self.committed >= self.end_total
                if lag_zero and self.runs >= len(keys):
                    # When both were seen, not when the look began: never shorter than it was.
                    self.drained_at = time.monotonic()
                    return
                lag_zero_since = (lag_zero_since or now) if lag_zero else None
                if lag_zero_since is not None and now - lag_zero_since > LOST_GRACE:
                    self.gave_up = (
                        f"lag 0 for {LOST_GRACE:.0f}s with {len(keys) - self.runs} events without a run"
                    )
                    return
                if now - self.first_publish > self.timeout:
                    self.gave_up = f"not drained within {self.timeout:.0f}s"
                    return
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - now)))
        finally:
            self.done.set()
            api.close()
            if admin is not None:
                with contextlib.suppress(KafkaError, OSError):
                    admin.close()


class Sampler:
    """Every 0.5 s: the worker's process tree from /proc, and Prefect's Pending and Running runs."""

    def __init__(self, stack: Stack, interval: float = 0.5) -> None:
        assert stack.worker is not None and stack.worker.pid is not None
        self.stack = stack
        self.worker_pid = stack.worker.pid
        self.interval = interval
        self.first: tuple[int, int] | None = None  # (RSS, processes) before anything was published
        self.peak_rss = self.peak_pss = self.peak_processes = 0
        self.peak_running = self.peak_active = 0
        self.memory_samples = self.prefect_samples = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._memory, name="sample-memory", daemon=True),
            # Its own thread: a Prefect request can take seconds on a busy server.
            threading.Thread(target=self._prefect, name="sample-prefect", daemon=True),
        ]

    def start(self) -> Sampler:
        # Here, not in the thread: the baseline must be taken before anything is published.
        idle = tree_memory(self.worker_pid)
        self.first = (idle.rss_bytes, idle.processes)
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(30)

    def _memory(self) -> None:
        while not self._stop.is_set():
            sample = tree_memory(self.worker_pid)
            self.peak_rss = max(self.peak_rss, sample.rss_bytes)
            self.peak_pss = max(self.peak_pss, sample.pss_bytes)
            self.peak_processes = max(self.peak_processes, sample.processes)
            self.memory_samples += 1
            self._stop.wait(self.interval)

    def _prefect(self) -> None:
        import httpx

        api = self.stack.api()
        body = {"flow_runs": {"state": {"type": {"any_": list(ACTIVE)}}}, "limit": 200}
        try:
            while not self._stop.is_set():
                with contextlib.suppress(httpx.HTTPError, ValueError):  # busy server: the next sample
                    response = api.request("POST", "/flow_runs/filter", json=body)
                    response.raise_for_status()
                    types = Counter((r.get("state") or {}).get("type") for r in response.json())
                    self.peak_running = max(self.peak_running, types["RUNNING"])
                    self.peak_active = max(self.peak_active, types["RUNNING"] + types["PENDING"])
                    self.prefect_samples += 1
                self._stop.wait(self.interval)
        finally:
            api.close()


def count_states(api: PrefectApi, keys: list[str], types: Sequence[str], but: Sequence[str] = ()) -> int:
    """Runs of these events in a state of these types, but not of the names `but`."""
    state: dict[str, Any] = {"type": {"any_": list(types)}}
    if but:
        state["name"] = {"not_any_": list(but)}
    return api.count_runs({"idempotency_key": {"any_": keys}, "state": state})


def settle(phase: Phase, say: Progress, first_publish: float) -> float | None:
    """Wait until every run of the phase has finished, at most --settle-seconds; seconds from the
    first publish until they had, or None if the cap came first."""
    import httpx

    keys = phase.keys
    cap = time.monotonic() + phase.stack.args.settle_seconds
    # Each look names every key: for a burst of 10,000 that is a large query, which the server answers
    # beside the checks it is waiting for. Every 10 s then; every 2 s for a few hundred.
    interval = max(2.0, len(keys) / 1000)
    api = phase.stack.api()
    next_report = time.monotonic() + 30
    try:
        while time.monotonic() < cap:
            try:
                # A run stood down as superseded has finished once a check has recorded its change.
                settled = count_states(api, keys, SETTLED, but=[SUPERSEDED])
            except httpx.HTTPError:
                settled = -1  # busy: asked again below
            if settled >= len(keys):
                return time.monotonic() - first_publish
            if time.monotonic() > next_report:
                say(f"  … {max(settled, 0)}/{len(keys)} runs finished")
                next_report = time.monotonic() + 30
            time.sleep(interval)
    finally:
        api.close()
    return None


def read_back(phase: Phase) -> tuple[Tally, dict[str, int]]:
    api = phase.stack.api()
    try:
        runs = api.runs_for_keys(phase.keys)
    finally:
        api.close()
    return tally(phase.keys, (r.idempotency_key for r in runs)), dict(Counter(r.state for r in runs))


def clear_runs(phase: Phase, say: Progress) -> tuple[int, int]:
    """Delete the phase's unstarted runs, give started ones 2 minutes, then delete what is left.

    Returns (unstarted deleted, started deleted). Keeps a phase's runs from running during the next.
    """
    api = phase.stack.api()
    keys = phase.keys

    def delete(types: Sequence[str]) -> int:
        runs = api.flow_runs(
            {"idempotency_key": {"any_": keys}, "state": {"type": {"any_": list(types)}}}, 200
        )
        gone = 0
        while runs:
            for run in runs:
                api.delete_run(run.id)
            gone += len(runs)
            runs = api.flow_runs(
                {"idempotency_key": {"any_": keys}, "state": {"type": {"any_": list(types)}}}, 200
            )
        return gone

    try:
        unstarted = delete(UNSTARTED)
        if unstarted:
            say(f"  deleted {unstarted} runs that had not started")
        deadline = time.monotonic() + 120
        while count_states(api, keys, ACTIVE) and time.monotonic() < deadline:
            time.sleep(2)
        started = delete([*ACTIVE, *UNSTARTED])
        if started:
            say(f"  deleted {started} runs still not finished 2 minutes later")
        return unstarted, started
    finally:
        api.close()


def wait_idle(stack: Stack, timeout: float = 120) -> None:
    """Until the worker is back to the processes it had idle (itself and its spares): a flow-run
    process may outlive its run's final state while it flushes, and must not count in the next phase."""
    assert stack.worker is not None and stack.worker.pid is not None
    idle = stack.idle_processes or 0
    deadline = time.monotonic() + timeout
    while (now := tree_memory(stack.worker.pid).processes) > idle:
        if time.monotonic() > deadline:
            stack.say(f"  the worker still has {now} processes after {timeout:.0f}s (idle: {idle}); going on")
            return
        time.sleep(1)
