"""Routing through faults: a router joins, one is killed, the broker restarts (issue 17).

    make bench-faults BENCH_FAULTS_ARGS="--events 500 --repeat 3"
    .venv/bin/python -m bench.faults [--events N] [--repeat N] [--backend sqlite|postgres]
                                     [--subjects N] [--pool-limit N] [--kill first|joiner]
                                     [--join-at F] [--kill-at F] [--settle-seconds S]
                                     [--drain-timeout S]

Real parts only, each its own process, state in `.aims/bench-faults`: a KRaft Kafka broker (the jars
shared from `.aims/kafka/libs`), a Prefect server (SQLite, or PostgreSQL 15 from `infra.postgres` with
--backend postgres), `aims worker` with the work pool's concurrency limit from
AIMS_WORK_POOL_CONCURRENCY (--pool-limit), and routers as `aims router --name …` processes with
the stack's policy (so data checks are coalesced as in the stack). Each round runs two phases, each
on a fresh topic and consumer group:

1. FLOOR  — N events published at once to one router, no faults.
2. FAULTS — N fresh events published at once to router A; when --join-at of them have runs a
   second router B joins; when --kill-at have runs, one of them (--kill) is SIGKILLed; as soon as the
   survivor holds every partition, the broker is stopped and started again (it must come back at
   the same address, or nothing finds it: printed).

The events are published at once rather than as a stream: every fault then lands on a backlog, with
records in flight and uncommitted — where a lost or doubled event would come from — and the fault
phase's drain is directly comparable with the floor's. A stream slower than the routers would hide
what the faults cost in the stream's own length.

Events are the three kinds `aims demo` sends (bench.router's `templates`), unique ids and versions,
spread over --subjects subjects. Per phase:
- time to drain: from the first publish until every event has its flow run in Prefect (looked up by
  idempotency key `source#id`) and the group's committed offsets reach the topic's end (lag 0);
  polled every second. The ratio fault drain / floor drain is the figure to watch.
- lost (an event without a run) and duplicated (an event with more than one run), counted once the
  phase's runs have finished (or the cap below): either gives exit status 1. Runs that Crashed are
  counted apart: such an event has its run, but nothing runs it again.
- the worker's processes: every 0.5 s its whole process tree (the worker, its warm spares and
  flow-run processes) from /proc: peak VmRSS sum, peak Pss sum, peak process count; and Prefect's
  Pending and Running runs, whose peak must stay at or under the pool's limit (printed next to it).
  Sampled from before the first publish until the phase's runs have finished, or --settle-seconds
  after the drain. Runs not finished by then are deleted (unstarted ones at once, started ones after
  up to 2 minutes more), and the next phase waits until the worker is back to its idle processes,
  so that no phase's runs are executed or measured during the next one.

Nothing here fails on a time: the exit status says whether something crashed (1), an event was
lost or doubled (1), or the run was interrupted (130). Each phase prints the machine's load average:
the machine is shared, and the numbers move with it; --repeat N prints medians.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import REPO, Progress, Teardown, fmt, interrupt, load_average, tree_memory

if TYPE_CHECKING:
    from connectors.prefect_api import PrefectApi
    from infra.kafka_broker import KafkaBroker
    from infra.processes import ManagedProcess
    from schemas.events import AimsEvent
    from schemas.settings import AimsSettings

BACKENDS = ("sqlite", "postgres")
# Prefect state types: a run in one of these holds no slot and no process any more. PAUSED too: a
# suspended run has left its process (none of the three flows here suspends).
SETTLED = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED", "PAUSED")
UNSTARTED = ("SCHEDULED",)  # Late and AwaitingRetry are Scheduled too
ACTIVE = ("PENDING", "RUNNING")  # what the work pool's limit counts
# Lag 0 while runs are missing: the offsets passed events whose run was never created. Give Prefect's
# reads this long to show late runs before calling them lost.
LOST_GRACE = 30.0
MB = 1024 * 1024


# -- pure parts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """Runs per event: each event of these kinds starts exactly one flow, so one run per key."""

    events: int
    runs: int
    lost: list[str]  # keys with no run
    duplicated: dict[str, int]  # key → its runs, where more than one


def tally(keys: Sequence[str], run_keys: Iterable[str | None]) -> Tally:
    """Count the runs found for `keys` (the idempotency key of every run read back from Prefect)."""
    wanted = set(keys)
    counts = Counter(k for k in run_keys if k in wanted)
    return Tally(
        events=len(keys),
        runs=sum(counts.values()),
        lost=[k for k in keys if counts[k] == 0],
        duplicated={k: n for k, n in sorted(counts.items()) if n > 1},
    )


def make_events(base: list[AimsEvent], count: int, label: str, subjects: int) -> list[AimsEvent]:
    """`count` events cycling through the kinds, unique ids and versions, over `subjects` subjects."""
    from events.routing import routes_for

    events = []
    for i in range(count):
        template = base[i % len(base)]
        if len(routes_for(template.type)) != 1:
            raise RuntimeError(
                f"{template.type} starts {len(routes_for(template.type))} flows: the counting "
                "here assumes one run per event"
            )
        raw = template.model_dump(mode="json", exclude_none=True)
        raw["id"] = f"faults-{label}-{i:06d}"
        raw.pop("subject", None)  # derived again from the payload field below
        subject_field = type(template).subject_field
        raw["data"][subject_field] = f"{raw['data'][subject_field]}-{i % subjects:02d}"
        if "version" in raw["data"]:
            # A new model version or dataset version each time, as a registry or pipeline sends them:
            # the same version again would be a repeat the flows treat differently.
            raw["data"]["version"] = f"{label}-{i:06d}"
        events.append(type(template).model_validate(raw))
    return events


def median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


# -- the stack ----------------------------------------------------------------------------------


@dataclass
class Stack(Teardown):
    """Broker, Prefect server and worker for the whole run; stopped in reverse order."""

    state: Path
    args: argparse.Namespace
    say: Progress
    bootstrap: str = ""
    api_url: str = ""
    broker: KafkaBroker | None = None
    worker: ManagedProcess | None = None
    pool_limit: int | None = None
    idle_processes: int | None = None  # the worker's tree before the first phase: itself and its spares
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Teardown.__init__(self, self.say)  # started(), close(): stopped in reverse order

    def api(self) -> PrefectApi:
        from connectors.prefect_api import PrefectApi

        return PrefectApi(self.api_url, timeout=30)

    def process_env(self, **extra: str) -> dict[str, str]:
        return {**self.env, **extra}

    def heartbeat(self, name: str) -> dict[str, Any]:
        path = self.state / "routers" / f"router-{name}.json"
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):  # not written yet, or replaced while read
            return {}

    def partitions(self, name: str) -> set[int]:
        return set(self.heartbeat(name).get("partitions") or [])


def prepare_state(state: Path, say: Progress) -> None:
    from infra.postgres import PostgresServer, PostgresUnavailable

    # A PostgreSQL left running by an interrupted run would hold its folder.
    leftover = PostgresServer(state, "prefect", database="prefect")
    if leftover.data_dir.exists():
        try:
            leftover.stop()
        except (PostgresUnavailable, OSError, subprocess.SubprocessError) as exc:
            say(f"a PostgreSQL left by an earlier run would not stop: {exc}")
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    # Flows may draft baseline suites for the benchmark's datasets: into a copy, never into suites/.
    shutil.copytree(REPO / "suites", state / "suites")
    say(f"state folder {state} (fresh)")


def start_stack(stack: Stack) -> None:
    from events.topics import ensure_topics, topic_specs
    from infra.kafka_broker import KafkaBroker
    from infra.postgres import PostgresServer
    from infra.prefect_server import PrefectServer, prefect_client_env
    from schemas.settings import AimsSettings, load_settings

    say, state = stack.say, stack.state
    settings = load_settings()
    if settings.kafka_bootstrap_servers:
        # The fault phase restarts the broker: an existing cluster is not ours to restart.
        raise SystemExit("KAFKA_BOOTSTRAP_SERVERS is set: this benchmark starts and restarts its own broker")
    say("Kafka: starting a local KRaft broker…")
    broker = KafkaBroker(state, settings.kafka_home, libs_dir=settings.state_path / "kafka" / "libs")
    stack.broker = broker
    stack.started("the Kafka broker", broker.stop)
    stack.bootstrap = broker.start()
    say(f"Kafka: broker ready at {stack.bootstrap}")

    database_url = None
    if stack.args.backend == "postgres":
        say("starting PostgreSQL…")
        postgres = PostgresServer(state, "prefect", database="prefect")
        stack.started("PostgreSQL", postgres.stop)
        database_url = postgres.start()
        say(f"PostgreSQL ready: {database_url}")
    say("starting the Prefect server…")
    server = PrefectServer(state, database_url=database_url)
    stack.started("the Prefect server", server.stop)
    stack.api_url = server.start()
    say(f"Prefect server ({stack.args.backend}) ready at {stack.api_url}")

    env = dict(os.environ)
    # The routers turn Prefect's client retries off themselves, the worker keeps them: as in the stack.
    env.pop("PREFECT_CLIENT_MAX_RETRIES", None)
    env.update(prefect_client_env(state, stack.api_url))
    env.update(
        {
            "AIMS_STATE_DIR": str(state),
            "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
            "AIMS_SUITES_DIR": str(state / "suites"),
            # The stack's policy, wherever this is started from (its coalescing window included).
            "AIMS_POLICY_FILE": str(_policy_file(settings.policy_file)),
            "AIMS_WORK_POOL_CONCURRENCY": str(stack.args.pool_limit),
        }
    )
    stack.env = env
    # Flows publish their outcome events on the default topic, as in the stack; no router reads it
    # here, so the runs counted are exactly the ones the phases' events started.
    ensure_topics(stack.bootstrap, topic_specs(AimsSettings(state_dir=state)))
    start_worker(stack)


def _policy_file(configured: Path) -> Path:
    return configured if configured.is_absolute() else REPO / configured


def start_worker(stack: Stack) -> None:
    """`aims worker`; returns once the deployments exist and a flow-run process is warm."""
    from infra.deployments import served, worker_ready
    from infra.processes import ManagedProcess, wait_until
    from infra.stack import aims_command

    worker = ManagedProcess("worker", aims_command("worker"), stack.state / "logs" / "worker.log", stack.env)
    worker.start()
    stack.worker = worker
    stack.started("the worker", lambda: worker.stop(30))
    api = stack.api()
    try:
        waited = wait_until(
            lambda: worker_ready(stack.state, worker.pid) and served(api), 240, "the worker", worker
        )
        stack.pool_limit = pool_limit(api, stack.env)
    finally:
        api.close()
    stack.say(f"worker (pid {worker.pid}) ready after {waited:.1f}s; work pool limit: {stack.pool_limit}")
    if stack.pool_limit is None:
        stack.say(
            "  the work pool has NO concurrency limit: this worker predates AIMS_WORK_POOL_CONCURRENCY, "
            "so a burst may start as many flow-run processes as it has runs"
        )


def pool_limit(api: PrefectApi, env: dict[str, str]) -> int | None:
    """The limit Prefect holds for the work pool (what the worker set from the setting, or none)."""
    from schemas.settings import AimsSettings

    pool = AimsSettings(state_dir=Path(env["AIMS_STATE_DIR"])).work_pool
    response = api.request("GET", f"/work_pools/{pool}")
    response.raise_for_status()
    limit = response.json().get("concurrency_limit")
    return int(limit) if limit is not None else None


# -- one phase's topic, routers and events ------------------------------------------------------


@dataclass
class Phase:
    stack: Stack
    name: str  # floor1, faults1, …
    events: list[AimsEvent]
    settings: AimsSettings
    routers: dict[str, ManagedProcess] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return [e.dedup_key for e in self.events]

    @property
    def all_partitions(self) -> set[int]:
        return set(range(self.settings.events_partitions))

    def topic_env(self) -> dict[str, str]:
        return {
            "AIMS_EVENTS_TOPIC": self.settings.events_topic,
            "AIMS_DEAD_LETTER_TOPIC": self.settings.dead_letter_topic,
            "AIMS_CONSUMER_GROUP": self.settings.consumer_group,
        }

    def start_router(self, name: str) -> ManagedProcess:
        """`aims router --name NAME` as its own process, as tests/support.py `router_process` starts it."""
        from infra.processes import ManagedProcess

        proc = ManagedProcess(
            f"router-{name}",
            [sys.executable, "-m", "aims", "router", "--name", name],
            self.stack.state / "logs" / f"router-{name}.log",
            self.stack.process_env(**self.topic_env()),
        )
        proc.start()
        self.routers[name] = proc
        return proc

    def stop_routers(self) -> dict[str, int | None]:
        return {name: proc.stop(60) for name, proc in self.routers.items()}


def new_phase(stack: Stack, name: str, base: list[AimsEvent], tag: str) -> Phase:
    from events.topics import ensure_topics, topic_specs
    from schemas.settings import AimsSettings

    topic = f"bench.faults.{tag}.{name}"
    settings = AimsSettings(
        state_dir=stack.state,
        events_topic=topic,
        dead_letter_topic=f"{topic}.dlq",
        consumer_group=f"bench-faults-{tag}-{name}",
    )
    ensure_topics(stack.bootstrap, topic_specs(settings))
    events = make_events(base, stack.args.events, f"{tag}-{name}", stack.args.subjects)
    return Phase(stack, name, events, settings)


def publish(phase: Phase) -> tuple[float, int]:
    """Send every event at once; (monotonic time of the first send, the topic's end offset total)."""
    from events.codec import encode_structured
    from events.kafka_clients import make_producer

    producer = make_producer(phase.stack.bootstrap, client_id=f"bench-faults-{phase.name}")
    try:
        encoded = [(e.key.encode(), *encode_structured(e)) for e in phase.events]
        first = time.monotonic()
        futures = [
            producer.send(phase.settings.events_topic, key=k, value=v, headers=h) for k, v, h in encoded
        ]
        producer.flush(60)
        ends: dict[int, int] = {}
        for future in futures:
            meta = future.get(30)
            ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
    finally:
        producer.close(timeout=10)
    # A fresh topic with one producer: the highest acknowledged offset + 1 is each partition's end.
    return first, sum(ends.values())


def wait_assigned(phase: Phase, name: str, want: Callable[[set[int]], bool], timeout: float = 120) -> float:
    """Seconds until router NAME's heartbeat shows partitions that satisfy `want`."""
    from infra.processes import wait_until

    return wait_until(
        lambda: want(phase.stack.partitions(name)),
        timeout,
        f"router {name}'s partitions",
        phase.routers[name],
    )


def wait_split(phase: Phase, first: str, joiner: str, timeout: float = 120) -> float:
    """Seconds until both heartbeats show the rebalance done: the joiner holds partitions, and the two
    hold every partition between them, none twice (a heartbeat is up to ~2 s old)."""
    from infra.processes import wait_until

    def split() -> bool:
        a, b = phase.stack.partitions(first), phase.stack.partitions(joiner)
        return bool(b) and not a & b and a | b == phase.all_partitions

    return wait_until(split, timeout, f"router {joiner} joining {first}", phase.routers[joiner])


# -- watching a phase ---------------------------------------------------------------------------


class DrainWatch:
    """Every second: runs created for the phase's keys, and the group's committed offsets."""

    def __init__(self, phase: Phase, first_publish: float, end_total: int, timeout: float) -> None:
        self.phase = phase
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
                        admin = make_admin(self.phase.stack.bootstrap, request_timeout_ms=5000)
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
                self._stop.wait(max(0.0, 1.0 - (time.monotonic() - now)))
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


# -- after the drain: the runs finish, are counted, and are cleared ------------------------------


def count_states(api: PrefectApi, keys: list[str], types: Sequence[str]) -> int:
    return api.count_runs({"idempotency_key": {"any_": keys}, "state": {"type": {"any_": list(types)}}})


def settle(phase: Phase, say: Progress, first_publish: float) -> float | None:
    """Wait until every run of the phase has finished, at most --settle-seconds; seconds from the
    first publish until they had, or None if the cap came first."""
    import httpx

    keys = phase.keys
    cap = time.monotonic() + phase.stack.args.settle_seconds
    api = phase.stack.api()
    next_report = time.monotonic() + 30
    try:
        while time.monotonic() < cap:
            try:
                settled = count_states(api, keys, SETTLED)
            except httpx.HTTPError:
                settled = -1  # busy: asked again below
            if settled >= len(keys):
                return time.monotonic() - first_publish
            if time.monotonic() > next_report:
                say(f"  … {max(settled, 0)}/{len(keys)} runs finished")
                next_report = time.monotonic() + 30
            time.sleep(2)
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


# -- the phases ---------------------------------------------------------------------------------


def finish_phase(phase: Phase, sampler: Sampler, watch: DrainWatch, first: float) -> dict[str, Any]:
    """After the drain: wait for the runs, count them, clear them; the phase's figures."""
    say = phase.stack.say
    say(f"  waiting for the runs to finish (at most {phase.stack.args.settle_seconds:g}s)…")
    settled_s = settle(phase, say, first)
    sampler.stop()
    counted, states = read_back(phase)
    unstarted, started = clear_runs(phase, say)
    baseline_rss, baseline_processes = sampler.first or (0, 0)
    if phase.stack.idle_processes is None:
        phase.stack.idle_processes = baseline_processes
    wait_idle(phase.stack)
    if counted.lost:
        say(f"  LOST: {len(counted.lost)} events without a run, e.g. {counted.lost[:5]}")
    if counted.duplicated:
        say(
            f"  DUPLICATED: {len(counted.duplicated)} events with several runs, e.g. "
            f"{dict(list(counted.duplicated.items())[:5])}"
        )
    return {
        "events": counted.events,
        "runs": counted.runs,
        "lost": len(counted.lost),
        "duplicated": len(counted.duplicated),
        "drain_s": watch.drain_s,
        "gave_up": watch.gave_up,
        "settled_s": settled_s,
        "states": states,
        # Crashed before or while running: the event has its run, but nothing runs it again.
        "crashed": states.get("Crashed", 0),
        "deleted_unstarted": unstarted,
        "deleted_started": started,
        "baseline_rss_mb": baseline_rss / MB,
        "baseline_processes": baseline_processes,
        "peak_rss_mb": sampler.peak_rss / MB,
        "peak_pss_mb": sampler.peak_pss / MB,
        "peak_processes": sampler.peak_processes,
        "peak_running": sampler.peak_running,
        "peak_active": sampler.peak_active,
        "samples": f"{sampler.memory_samples} memory / {sampler.prefect_samples} Prefect",
    }


def run_floor(stack: Stack, base: list[AimsEvent], tag: str, n: int) -> dict[str, Any]:
    """N events at once to one router, no faults: the drain the fault phase is compared with."""
    say = stack.say
    phase = new_phase(stack, f"floor{n}", base, tag)
    name = f"floor{n}"
    load = [load_average()]
    sampler = Sampler(stack)
    watch: DrainWatch | None = None
    phase.start_router(name)
    try:
        waited = wait_assigned(phase, name, lambda p: p == phase.all_partitions)
        say(f"  router {name} holds partitions {sorted(phase.all_partitions)} after {waited:.1f}s")
        sampler.start()
        first, end = publish(phase)
        say(f"  published {len(phase.events)} events to {phase.settings.events_topic} (end offsets {end})")
        watch = DrainWatch(phase, first, end, stack.args.drain_timeout).start()
        watch.wait(say)
        say(
            f"FLOOR: drained in {fmt(watch.drain_s, '.1f')}s"
            + (f"; GAVE UP: {watch.gave_up}" if watch.gave_up else "")
        )
        alive = phase.routers[name].alive()
        if not alive:
            say(f"  router {name} EXITED during the phase: {phase.routers[name].failure()}")
    except BaseException:
        sampler.stop()
        if watch is not None:
            watch.stop()
        raise
    finally:
        exits = phase.stop_routers()
    result = finish_phase(phase, sampler, watch, first)
    load.append(load_average())
    result.update({"load": load, "routers_exited": [] if alive else [name], "exit_codes": exits})
    result["logs"] = log_summary(stack.state, [name])
    return result


def run_faults(stack: Stack, base: list[AimsEvent], tag: str, n: int) -> dict[str, Any]:
    """N events at once to router A; B joins, one is SIGKILLed, the broker restarts; then the drain."""
    say, args = stack.say, stack.args
    broker = stack.broker
    assert broker is not None
    phase = new_phase(stack, f"faults{n}", base, tag)
    first_name, joiner = f"a{n}", f"b{n}"
    victim, survivor = (first_name, joiner) if args.kill == "first" else (joiner, first_name)
    count = len(phase.events)
    load = [load_average()]
    result: dict[str, Any] = {"victim": victim, "survivor": survivor, "joiner": joiner}
    sampler = Sampler(stack)
    watch: DrainWatch | None = None
    phase.start_router(first_name)
    try:
        waited = wait_assigned(phase, first_name, lambda p: p == phase.all_partitions)
        say(f"  router {first_name} holds partitions {sorted(phase.all_partitions)} after {waited:.1f}s")
        sampler.start()
        first, end = publish(phase)
        say(f"  published {count} events to {phase.settings.events_topic} (end offsets {end})")
        watch = DrainWatch(phase, first, end, args.drain_timeout).start()
        running = watch

        def since() -> float:
            return time.monotonic() - first

        def reach(fraction: float, what: str, key: str) -> None:
            while running.fraction < fraction and not running.done.wait(0.25):
                pass
            if running.done.is_set():
                say(f"  NOTE: {what} comes after the drain ended ({running.runs}/{count} had runs)")
            result[f"{key}_fraction"] = running.fraction
            result[f"{key}_s"] = since()

        # 1. A second router joins once routing is under way.
        reach(args.join_at, f"router {joiner} joining", "join")
        say(f"  {watch.runs}/{count} have runs at +{since():.1f}s: starting router {joiner}")
        phase.start_router(joiner)
        result["joiner_assigned_s"] = wait_split(phase, first_name, joiner)
        say(
            f"  router {joiner} got partitions after {result['joiner_assigned_s']:.1f}s: {first_name} has "
            f"{sorted(stack.partitions(first_name))}, {joiner} {sorted(stack.partitions(joiner))}"
        )
        # 2. One of them is SIGKILLed: no commit, no leaving the group; the survivor waits for the
        # group to notice (the session timeout) and reads the victim's partitions from their commits.
        reach(args.kill_at, f"killing router {victim}", "kill")
        held = sorted(stack.partitions(victim))
        say(f"  {watch.runs}/{count} have runs at +{since():.1f}s: SIGKILL router {victim} (it held {held})")
        phase.routers[victim].kill()
        killed = time.monotonic()
        wait_assigned(phase, survivor, lambda p: p == phase.all_partitions)
        result["takeover_s"] = time.monotonic() - killed
        say(f"  router {survivor} holds every partition {result['takeover_s']:.1f}s after the kill")
        # 3. The broker stops and starts again: every client has its address, so it must keep it.
        reach(0.0, "the broker restart", "restart")
        before = broker.bootstrap
        say(f"  {watch.runs}/{count} have runs at +{since():.1f}s: stopping the broker at {before}")
        down = time.monotonic()
        broker.stop()
        after = broker.start()
        result["broker_down_s"] = time.monotonic() - down
        result["broker_before"], result["broker_after"] = before, after
        say(
            f"  broker back after {result['broker_down_s']:.1f}s at {after} "
            + ("(the same address)" if after == before else "— A NEW ADDRESS: the routers cannot find it")
        )
        watch.wait(say)
        say(
            f"FAULTS: drained in {fmt(watch.drain_s, '.1f')}s"
            + (f"; GAVE UP: {watch.gave_up}" if watch.gave_up else "")
        )
        alive = phase.routers[survivor].alive()
        if not alive:
            say(f"  router {survivor} EXITED during the phase: {phase.routers[survivor].failure()}")
    except BaseException:
        sampler.stop()
        if watch is not None:
            watch.stop()
        raise
    finally:
        exits = phase.stop_routers()
    result.update(finish_phase(phase, sampler, watch, first))
    load.append(load_average())
    result.update({"load": load, "routers_exited": [] if alive else [survivor], "exit_codes": exits})
    result["logs"] = log_summary(stack.state, [first_name, joiner])
    return result


def log_summary(state: Path, routers: list[str]) -> dict[str, dict[str, Any]]:
    """Per router log: warnings, errors and tracebacks, and the first few distinct warning texts."""
    summary: dict[str, dict[str, Any]] = {}
    for name in routers:
        try:
            lines = (state / "logs" / f"router-{name}.log").read_text(errors="replace").splitlines()
        except OSError:
            continue
        notable = [ln for ln in lines if " WARNING " in ln or " ERROR " in ln]
        texts: list[str] = []
        for line in notable:
            # "date time LEVEL logger: message": the message, without the numbers that change.
            text = line.split(": ", 1)[-1][:140]
            shape = "".join("#" if c.isdigit() else c for c in text)
            if shape not in {"".join("#" if c.isdigit() else c for c in t) for t in texts}:
                texts.append(text)
        summary[name] = {
            "warnings": sum(" WARNING " in ln for ln in lines),
            "errors": sum(" ERROR " in ln for ln in lines),
            "tracebacks": sum(ln.startswith("Traceback") for ln in lines),
            "examples": texts[:4],
        }
    return summary


# -- the report ---------------------------------------------------------------------------------

PHASES = ("floor", "faults")


def merged(rounds: list[dict[str, Any]], phase: str, key: str) -> float | None:
    return median([r[phase].get(key) for r in rounds])


def ratio(r: dict[str, Any]) -> float | None:
    floor, faults = r["floor"].get("drain_s"), r["faults"].get("drain_s")
    return faults / floor if floor and faults is not None else None


def per_round(rounds: list[dict[str, Any]], phase: str, key: str, spec: str = ".1f") -> str:
    return "/".join(fmt(r[phase].get(key), spec) for r in rounds)


def render(rounds: list[dict[str, Any]], args: argparse.Namespace, limit: int | None) -> list[str]:
    n = len(rounds)
    lines = [
        f"Fault run ({args.events} events over {args.subjects} subjects, published at once; Prefect on "
        f"{args.backend}; `aims worker` with a work pool limit of {_limit(limit)}; "
        + (f"medians of {n} rounds)" if n > 1 else "1 round)")
    ]
    header = (
        "phase",
        "drain s",
        "lost",
        "dup",
        "runs",
        "all finished s",
        "worker peak RSS / PSS MB",
        "procs",
        f"Running / Pending+Running (limit {_limit(limit)})",
        "load start→end",
    )
    rows: list[tuple[str, ...]] = [header]
    for phase in PHASES:
        lost = sum(r[phase]["lost"] for r in rounds)
        dup = sum(r[phase]["duplicated"] for r in rounds)
        loads = " ".join(f"{r[phase]['load'][0]}→{r[phase]['load'][1]}" for r in rounds)
        rows.append(
            (
                phase,
                fmt(merged(rounds, phase, "drain_s"), ".1f"),
                str(lost),
                str(dup),
                fmt(merged(rounds, phase, "runs"), ".0f"),
                fmt(merged(rounds, phase, "settled_s"), ".1f"),
                _pair(rounds, phase, "peak_rss_mb", "peak_pss_mb"),
                fmt(merged(rounds, phase, "peak_processes"), ".0f"),
                _pair(rounds, phase, "peak_running", "peak_active"),
                loads,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for i, row in enumerate(rows):
        cells = [
            c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(
        f"ratio fault drain / floor drain: {fmt(median([ratio(r) for r in rounds]), '.2f')}"
        + (f" (per round {'/'.join(fmt(ratio(r), '.2f') for r in rounds)})" if n > 1 else "")
        + "; the lost and dup columns are totals over the rounds, the rest medians"
    )
    for k, r in enumerate(rounds, 1):
        f = r["faults"]
        prefix = f"round {k}: " if n > 1 else ""
        same = f.get("broker_after") == f.get("broker_before")
        lines.append(
            f"{prefix}router {f['joiner']} joined at {_pct(f, 'join')} "
            f"routed (+{fmt(f.get('join_s'), '.1f')}s; "
            f"partitions after {fmt(f.get('joiner_assigned_s'), '.1f')}s); router {f['victim']} SIGKILLed at "
            f"{_pct(f, 'kill')} (+{fmt(f.get('kill_s'), '.1f')}s), its partitions at {f['survivor']} after "
            f"{fmt(f.get('takeover_s'), '.1f')}s (heartbeat every "
            f"~2s); broker restarted at {_pct(f, 'restart')} "
            f"(+{fmt(f.get('restart_s'), '.1f')}s): down {fmt(f.get('broker_down_s'), '.1f')}s, "
            f"{f.get('broker_before')} → {f.get('broker_after')} ({'same address' if same else 'MOVED'})"
        )
        for phase in PHASES:
            p = r[phase]
            exited = ", ".join(p["routers_exited"]) or "none"
            codes = ", ".join(f"{name} {code}" for name, code in p["exit_codes"].items())
            finished = (
                f"all finished {fmt(p['settled_s'], '.1f')}s after the first publish"
                if p["settled_s"] is not None
                else f"NOT all finished {args.settle_seconds:g}s after the drain"
            )
            lines.append(
                f"{prefix}{phase}: {p['runs']} runs for {p['events']} events, {finished}; "
                f"states {p['states']}; "
                f"deleted unfinished {p['deleted_unstarted']} unstarted + {p['deleted_started']} started; "
                f"surviving routers that exited: {exited} (exit codes on stop: {codes}); worker before "
                f"publishing {p['baseline_processes']} processes, {p['baseline_rss_mb']:.0f} MB RSS; "
                f"samples {p['samples']}" + (f"; GAVE UP: {p['gave_up']}" if p["gave_up"] else "")
            )
            for name, log in p["logs"].items():
                if log["warnings"] or log["errors"] or log["tracebacks"]:
                    lines.append(
                        f"{prefix}  router-{name}.log: {log['warnings']} warnings, {log['errors']} errors, "
                        f"{log['tracebacks']} tracebacks; e.g. " + " | ".join(log["examples"])
                    )
    if n > 1:
        for phase in PHASES:
            lines.append(
                f"per round, {phase}: drain s {per_round(rounds, phase, 'drain_s')}, peak RSS MB "
                f"{per_round(rounds, phase, 'peak_rss_mb', '.0f')}, procs "
                f"{per_round(rounds, phase, 'peak_processes', '.0f')}, Running "
                f"{per_round(rounds, phase, 'peak_running', '.0f')}, "
                f"lost {per_round(rounds, phase, 'lost', 'd')}, "
                f"dup {per_round(rounds, phase, 'duplicated', 'd')}"
            )
        lines.append(
            f"per round, takeover s {per_round(rounds, 'faults', 'takeover_s')}, broker down s "
            f"{per_round(rounds, 'faults', 'broker_down_s')}"
        )
    lines.append("")
    lines.append(summary_line(rounds, limit))
    return lines


def _pair(rounds: list[dict[str, Any]], phase: str, a: str, b: str) -> str:
    return f"{fmt(merged(rounds, phase, a), '.0f')} / {fmt(merged(rounds, phase, b), '.0f')}"


def _limit(limit: int | None) -> str:
    return "none" if limit is None else str(limit)


def _pct(result: dict[str, Any], key: str) -> str:
    value = result.get(f"{key}_fraction")
    return "–" if value is None else f"{100 * value:.0f}%"


def summary_line(rounds: list[dict[str, Any]], limit: int | None) -> str:
    lost = sum(r[p]["lost"] for r in rounds for p in PHASES)
    dup = sum(r[p]["duplicated"] for r in rounds for p in PHASES)
    running = max(r[p]["peak_running"] for r in rounds for p in PHASES)
    active = max(r[p]["peak_active"] for r in rounds for p in PHASES)
    over = limit is not None and active > limit
    crashed = sum(r[p]["crashed"] for r in rounds for p in PHASES)
    return (
        f"faults: lost {lost}, duplicated {dup}; drain "
        f"{fmt(merged(rounds, 'faults', 'drain_s'), '.1f')}s vs floor "
        f"{fmt(merged(rounds, 'floor', 'drain_s'), '.1f')}s = "
        f"{fmt(median([ratio(r) for r in rounds]), '.2f')}×; "
        f"takeover {fmt(merged(rounds, 'faults', 'takeover_s'), '.1f')}s; broker down "
        f"{fmt(merged(rounds, 'faults', 'broker_down_s'), '.1f')}s; worker peak "
        f"{fmt(max(r[p]['peak_rss_mb'] for r in rounds for p in PHASES), '.0f')} MB RSS, "
        f"{max(r[p]['peak_processes'] for r in rounds for p in PHASES)} processes, {running} Running "
        f"({active} Pending+Running; limit {_limit(limit)}{', OVER THE LIMIT' if over else ''}); "
        f"runs Crashed {crashed}. "
        "Times never fail the benchmark; a lost or doubled event does."
    )


# -- the whole benchmark ------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    import traceback

    from bench.router import templates
    from schemas.settings import load_settings

    say = Progress("faults")
    state = load_settings().state_path / "bench-faults"
    stack = Stack(state, args, say)
    signal.signal(signal.SIGTERM, interrupt)
    rounds: list[dict[str, Any]] = []
    crashed = interrupted = False
    try:
        prepare_state(state, say)
        start_stack(stack)
        base = templates(state / "data")
        tag = time.strftime("%H%M%S")
        for n in range(1, args.repeat + 1):
            of = f" (round {n} of {args.repeat})" if args.repeat > 1 else ""
            say(f"FLOOR{of}: {args.events} events at once to one router, no faults…")
            floor = run_floor(stack, base, tag, n)
            say(
                f"FAULTS{of}: {args.events} events at once to router a{n}; b{n} joins at "
                f"{100 * args.join_at:.0f}%, {args.kill} router killed at {100 * args.kill_at:.0f}%, then "
                "the broker restarts…"
            )
            faults = run_faults(stack, base, tag, n)
            rounds.append({"floor": floor, "faults": faults})
    except KeyboardInterrupt:
        say("interrupted: stopping what was started")
        interrupted = True
    except Exception:  # noqa: BLE001 - printed; the stack must still stop and finished rounds be reported
        traceback.print_exc()
        crashed = True
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.close()
    if rounds:
        print()
        print("\n".join(render(rounds, args, stack.pool_limit)), flush=True)
        print(
            f"logs: {state / 'logs'} (routers, worker), {state / 'kafka' / 'broker.log'}, "
            f"{state / 'prefect' / 'server.log'}"
        )
    wrong = any(r[p]["lost"] or r[p]["duplicated"] for r in rounds for p in PHASES)
    return 130 if interrupted else 1 if crashed or wrong else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.faults",
        description="Events routed while a router joins, one is killed and the broker restarts.",
    )
    parser.add_argument(
        "--events", type=int, default=500, metavar="N", help="events per phase (default %(default)s)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="rounds of floor and faults; medians (default %(default)s)",
    )
    parser.add_argument(
        "--backend", choices=BACKENDS, default="sqlite", help="Prefect's database (default %(default)s)"
    )
    parser.add_argument(
        "--subjects",
        type=int,
        default=40,
        metavar="N",
        help="distinct subjects (Kafka keys) (default %(default)s)",
    )
    parser.add_argument(
        "--pool-limit",
        type=int,
        default=4,
        metavar="N",
        help="AIMS_WORK_POOL_CONCURRENCY for the worker: runs at once (default %(default)s)",
    )
    parser.add_argument(
        "--kill",
        choices=("first", "joiner"),
        default="first",
        help="which router is SIGKILLed: the one that had every partition, or the one that joined "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--join-at",
        type=float,
        default=0.1,
        metavar="F",
        help="share of events with runs when the second router joins (default %(default)s)",
    )
    parser.add_argument(
        "--kill-at",
        type=float,
        default=0.3,
        metavar="F",
        help="share of events with runs when one router is killed (default %(default)s); the broker "
        "restarts as soon as the survivor holds every partition",
    )
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=300,
        metavar="S",
        help="after the drain, how long the phase's runs may take to finish (default %(default)s)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=1200,
        metavar="S",
        help="after the first publish, how long the drain may take before events count as lost "
        "(default %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Ctrl-C stops everything in order, even when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.events < 10 or args.repeat < 1 or args.subjects < 1 or args.pool_limit < 0:
        raise SystemExit(
            "--events needs at least 10, --repeat and --subjects at least 1, --pool-limit 0 or more"
        )
    if not 0 < args.join_at < args.kill_at < 1:
        raise SystemExit("expected 0 < --join-at < --kill-at < 1")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The broker is down on purpose for a while: the clients' connection errors are expected noise.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
