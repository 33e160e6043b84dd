"""Router throughput and latency against Prefect on PostgreSQL and SQLite (issue 2).

    make bench BENCH_ARGS="--backend both"
    .venv/bin/python -m bench.router [--backend postgres|sqlite|both] [--floor-runs N] [--events N]
                                     [--concurrency N] [--steady-seconds S] [--repeat N]
                                     [--skip-running]

Per backend, in this order, on a fresh Prefect server (for PostgreSQL on a fresh PostgreSQL 15
server from `infra.postgres`, fsync off):

1. RUNNING  — the worker (`aims worker`, started as `aims up` starts it) polls the deployments'
   work pool; a few events, spaced apart, go through the router; latency = produce → the flow
   run's `start_time` (state Running), split into created → Pending (the worker's poll) and
   Pending → Running (handing the run to a warm process, which loads it and proposes Running).
2. FLOOR    — a tight client loop, one `create_flow_run_from_deployment` at a time (after a few
   warm-up runs), with the parameters the router sends and unique idempotency keys: runs/s, p50,
   p99. A repeated key must return the same run. For comparison, the same loop through
   `PrefectLauncher.launch` (what the router calls: read the deployment by name, then create).
3. ROUTER   — M events are published to a fresh topic first, then an in-process `events.router.Router`
   with the real `PrefectLauncher` drains them: events/s from the first flow run created to the last,
   and its ratio to the floor.
4. STEADY   — the router already running on a fresh topic (and warmed up by a few events); events
   are produced at half the floor rate for S seconds; latency = the run's `created` (Prefect API,
   looked up by idempotency key) minus the produce time, split into produce → launch called (Kafka
   and the router's batching) and the launch itself.

Events are the three `aims demo` samples with unique ids, spread over SUBJECTS subjects (AI
systems, datasets): the router keeps one subject's events in order and runs different subjects
concurrently, up to `--concurrency`.

How the deployments exist without their runs being executed: the worker registers them, runs
phase 1, and is stopped (with --skip-running it is stopped as soon as they exist). Runs are still
created from them; nothing polls for runs any more, so in phases 2-4 they stay Scheduled and the
benchmark measures run creation only. Starting the real worker keeps the deployments exactly as the
stack defines them and keeps the flows out of this process. Because those runs stay Scheduled, the
Prefect server runs with its late-runs service off: it would spend the server's time marking hundreds
of them Late, which a polled work pool never sees. Every other server service runs as in the stack.

Process layout: this process starts one Kafka broker (state folder `.aims/bench`) and runs each
backend in a fresh child process (`--child`): the Prefect SDK reads PREFECT_API_URL and its other
settings from the environment, so the child sets them before it imports Prefect. Each phase prints
the machine's load average: the machine is shared and the numbers move with it. Nothing here fails
on a time: numbers and targets are printed, the exit status says only whether something crashed.
"""

from __future__ import annotations

import argparse
import asyncio
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from bench.common import Progress, fmt, interrupt, load_average, parse_time

if TYPE_CHECKING:
    from connectors.prefect_api import FlowRunView, PrefectApi
    from events.router import Router
    from infra.processes import ManagedProcess
    from schemas.events import AimsEvent
    from schemas.settings import AimsSettings

BACKENDS = ("postgres", "sqlite")
# Distinct subjects (Kafka keys) in the generated events: the router runs one subject's events in
# order, different subjects concurrently, so a realistic spread of AI systems and datasets.
SUBJECTS = 16
FLOOR_WARMUP = 5
STEADY_WARMUP = 3
TERMINAL = {"Completed", "Failed", "Crashed", "Cancelled"}
TARGET_RATIO = 0.8
TARGET_P99_CREATED_MS = 300.0
TARGET_P50_RUNNING_S = 2.0


# -- small helpers ----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); q in [0, 100]."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def bench_root() -> Path:
    from schemas.settings import load_settings

    return load_settings().state_path / "bench"


def deployment_names() -> list[str]:
    from events.routing import ROUTES

    return sorted({r.deployment for routes in ROUTES.values() for r in routes})


# -- events -----------------------------------------------------------------------------------


def templates(folder: Path) -> list[AimsEvent]:
    """One event of each type, as `aims demo` publishes them (its data file included)."""
    from aims.demo import sample_events

    first: dict[str, AimsEvent] = {}
    for event in sample_events(folder):
        first.setdefault(event.type, event)
    return list(first.values())


def make_events(base: list[AimsEvent], count: int, label: str, tag: str) -> list[AimsEvent]:
    """`count` events cycling through the types, each with a unique id and one of SUBJECTS subjects."""
    events = []
    for i in range(count):
        template = base[i % len(base)]
        raw = template.model_dump(mode="json", exclude_none=True)
        raw["id"] = f"bench-{tag}-{label}-{i:06d}"
        raw.pop("subject", None)  # derived again from the payload field below
        subject_field = type(template).subject_field
        raw["data"][subject_field] = f"{raw['data'][subject_field]}-{i % SUBJECTS:02d}"
        events.append(type(template).model_validate(raw))
    return events


def runs_by_key(api: PrefectApi, keys: list[str]) -> dict[str, FlowRunView]:
    found: dict[str, FlowRunView] = {}
    for start in range(0, len(keys), 50):  # the API caps a page at 200 rows
        for run in api.runs_for_keys(keys[start : start + 50]):
            if run.idempotency_key is not None:
                found[run.idempotency_key] = run
    return found


# -- the router in a thread -------------------------------------------------------------------

Launches = dict[str, tuple[float, float]]  # idempotency key → (launch called, launch returned), epoch s


class TimedLauncher:
    """The real `PrefectLauncher`, timing each launch: the Prefect share of the router's latency."""

    def __init__(self, launches: Launches) -> None:
        from connectors.prefect_runs import PrefectLauncher

        self._inner = PrefectLauncher()
        self._launches = launches
        self._first_call: dict[str, float] = {}

    async def __aenter__(self) -> TimedLauncher:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._inner.__aexit__(*exc_info)

    async def launch(
        self,
        deployment: str,
        parameters: dict[str, Any],
        idempotency_key: str,
        start_at: datetime | None = None,
        tags: list[str] | None = None,
    ) -> UUID:
        # The router retries a launch that timed out: time from the first attempt.
        called = self._first_call.setdefault(idempotency_key, time.time())
        run_id = await self._inner.launch(deployment, parameters, idempotency_key, start_at, tags)
        self._launches[idempotency_key] = (called, time.time())
        return run_id

    async def resume(self, deployment: str, tag: str, run_input: dict[str, Any]) -> UUID | None:
        return await self._inner.resume(deployment, tag, run_input)


class RouterThread:
    """`events.router.Router` with the real PrefectLauncher (timed), run in a thread of this process."""

    def __init__(self, settings: AimsSettings, bootstrap: str, name: str) -> None:
        from events.router import Router
        from events.topics import ensure_topics, topic_specs

        ensure_topics(bootstrap, topic_specs(settings))
        self.launches: Launches = {}
        self.router: Router = Router(settings, bootstrap, lambda: TimedLauncher(self.launches), name=name)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"router-{name}", daemon=True)

    def _run(self) -> None:
        try:
            self.router.run()
        except BaseException as exc:  # noqa: BLE001 - reported by check() in the main thread
            self.error = exc

    def check(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"the router crashed: {self.error!r}") from self.error
        if not self.thread.is_alive():
            raise RuntimeError("the router thread ended")

    def start(self, timeout: float = 90) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.router.wait_ready(0.5):
            self.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the router got no partitions within {timeout:.0f}s")

    @property
    def handled(self) -> int:
        return self.router.stats.routed + self.router.stats.dead_lettered

    def wait_handled(self, count: int, timeout: float, say: Progress, every: float = 10) -> None:
        deadline = time.monotonic() + timeout
        next_report = time.monotonic() + every
        while self.handled < count:
            self.check()
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(
                    f"the router handled {self.handled} of {count} events in {timeout:.0f}s "
                    f"(last error: {self.router.stats.last_error or 'none'})"
                )
            if now > next_report:
                say(f"  … {self.handled}/{count} events routed")
                next_report = now + every
            time.sleep(0.05)

    def stop(self) -> None:
        self.router.stop()
        self.thread.join(60)


# -- one backend, in a child process ----------------------------------------------------------


@dataclass
class Context:
    backend: str
    state: Path
    bootstrap: str
    api_url: str
    tag: str
    args: argparse.Namespace
    say: Progress
    base_events: list[AimsEvent]

    def settings(self, phase: str) -> AimsSettings:
        from schemas.settings import AimsSettings

        name = f"bench.{self.backend}.{self.tag}.{phase}"
        return AimsSettings(
            state_dir=self.state,
            events_topic=name,
            dead_letter_topic=f"{name}.dlq",
            consumer_group=f"bench-{self.backend}-{self.tag}-{phase}",
            router_concurrency=self.args.concurrency,
        )

    def api(self) -> PrefectApi:
        from connectors.prefect_api import PrefectApi

        return PrefectApi(self.api_url, timeout=30)


@contextlib.contextmanager
def running_router(ctx: Context, phase: str) -> Iterator[tuple[RouterThread, AimsSettings]]:
    settings = ctx.settings(phase)
    router = RouterThread(settings, ctx.bootstrap, f"bench-{phase}")
    try:
        router.start()
        yield router, settings
    finally:
        router.stop()


def start_worker(ctx: Context) -> ManagedProcess:
    """`aims worker` with the stack's environment; returns once every routed deployment exists."""
    import httpx

    from events.topics import ensure_topics, topic_specs
    from infra.processes import ManagedProcess, wait_until
    from infra.stack import aims_command
    from schemas.settings import AimsSettings

    # Flows publish their outcome events on the default topic, as in the stack.
    ensure_topics(ctx.bootstrap, topic_specs(AimsSettings(state_dir=ctx.state)))
    env = dict(os.environ)
    # Baseline suites drafted for the benchmark's datasets go to its state folder, not the repository.
    env["AIMS_SUITES_DIR"] = str(ctx.state / "suites")
    env["KAFKA_BOOTSTRAP_SERVERS"] = ctx.bootstrap
    proc = ManagedProcess("worker", aims_command("worker"), ctx.state / "logs" / "worker.log", env)
    proc.start()

    def served() -> bool:
        from infra.deployments import worker_ready

        # Measured from a worker whose flow-run processes are warm, as `aims up` hands it over.
        if not worker_ready(ctx.state, proc.pid):
            return False
        return all(
            httpx.get(f"{ctx.api_url}/deployments/name/{name}", timeout=5).status_code == 200
            for name in deployment_names()
        )

    try:
        waited = wait_until(served, 180, "the worker", proc)
    except BaseException:
        proc.stop(30)
        raise
    ctx.say(f"deployments registered by the worker after {waited:.1f}s: {', '.join(deployment_names())}")
    return proc


def measure_running(ctx: Context) -> dict[str, Any]:
    """Produce → Running with the worker polling; a few events, spaced apart."""
    from events.producer import EventPublisher

    count, spacing = ctx.args.running_events, ctx.args.running_spacing
    events = make_events(ctx.base_events, count, "running", ctx.tag)
    keys = [e.dedup_key for e in events]
    produced: dict[str, float] = {}
    api = ctx.api()
    try:
        with running_router(ctx, "running") as (router, settings):
            publisher = EventPublisher(ctx.bootstrap, settings.events_topic)
            try:
                for i, event in enumerate(events):
                    produced[event.dedup_key] = time.time()
                    publisher.publish(event)
                    ctx.say(f"  produced {i + 1}/{count} ({event.type})")
                    if i + 1 < count:
                        time.sleep(spacing)
            finally:
                publisher.close()
            deadline = time.monotonic() + 180
            runs: dict[str, FlowRunView] = {}
            while time.monotonic() < deadline:
                router.check()
                runs = runs_by_key(api, keys)
                if len(runs) == count and all(r.start_time for r in runs.values()):
                    break
                time.sleep(0.5)
        started = {k: r for k, r in runs.items() if r.start_time}
        if len(started) < count:
            ctx.say(f"  only {len(started)} of {count} runs reached Running within the time allowed")
        to_running = [parse_time(r.start_time or "") - produced[k] for k, r in started.items()]
        to_created = [parse_time(r.created) - produced[k] for k, r in runs.items()]
        ctx.say("  waiting for the runs to finish before the worker is stopped…")
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            runs = runs_by_key(api, keys)
            if all(r.state in TERMINAL for r in runs.values()):
                break
            time.sleep(1)
        states: dict[str, int] = {}
        for run in runs.values():
            states[run.state] = states.get(run.state, 0) + 1
        pickup, spawn = state_gaps(ctx.api_url, list(started.values()))
    finally:
        api.close()
    result = {
        "running_pickup_p50_s": percentile(pickup, 50),
        "running_spawn_p50_s": percentile(spawn, 50),
        "running_events": count,
        "running_started": len(started),
        "running_p50_s": percentile(to_running, 50),
        "running_max_s": max(to_running, default=float("nan")),
        "running_created_p50_ms": percentile(to_created, 50) * 1000,
        "running_states": states,
    }
    ctx.say(
        f"RUNNING: produce → Running p50 {result['running_p50_s']:.2f}s, max {result['running_max_s']:.2f}s "
        f"(produce → created p50 {result['running_created_p50_ms']:.0f} ms); final states {states}"
    )
    ctx.say(
        f"  of which created → Pending (worker poll) p50 {result['running_pickup_p50_s']:.2f}s, "
        f"Pending → Running (warm process, flow load) p50 {result['running_spawn_p50_s']:.2f}s"
    )
    return result


def state_gaps(api_url: str, runs: list[FlowRunView]) -> tuple[list[float], list[float]]:
    """Per run: created → first Pending (the worker picked it up), Pending → Running."""
    import httpx

    pickup, spawn = [], []
    with httpx.Client(base_url=api_url, timeout=30) as http:
        for run in runs:
            response = http.get("/flow_run_states/", params={"flow_run_id": run.id})
            response.raise_for_status()
            first: dict[str, float] = {}
            for state in response.json():
                stamp = parse_time(state["timestamp"])
                first[state["type"]] = min(stamp, first.get(state["type"], stamp))
            if "PENDING" in first and "RUNNING" in first:
                pickup.append(first["PENDING"] - parse_time(run.created))
                spawn.append(first["RUNNING"] - first["PENDING"])
    return pickup, spawn


async def _launcher_loop(ctx: Context, events: list[AimsEvent]) -> dict[str, Any]:
    """What the router pays Prefect per event: `PrefectLauncher.launch`, one at a time."""
    from connectors.prefect_runs import PrefectLauncher
    from events.routing import ROUTES

    latencies: list[float] = []
    async with PrefectLauncher() as launcher:
        start = time.perf_counter()
        for event in events:
            route = ROUTES[event.type][0]
            t0 = time.perf_counter()
            await launcher.launch(route.deployment, route.parameters(event), event.dedup_key)
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
    return {
        "launcher_runs": len(events),
        "launcher_rate": len(events) / elapsed,
        "launcher_p50_ms": percentile(latencies, 50) * 1000,
        "launcher_p99_ms": percentile(latencies, 99) * 1000,
    }


async def _floor(ctx: Context, events: list[AimsEvent], launcher_events: list[AimsEvent]) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    from events.routing import ROUTES

    async with get_client() as client:
        ids = {name: (await client.read_deployment_by_name(name)).id for name in deployment_names()}

        async def create(event: AimsEvent) -> Any:
            route = ROUTES[event.type][0]
            return await client.create_flow_run_from_deployment(
                ids[route.deployment],
                parameters=route.parameters(event),
                idempotency_key=event.dedup_key,
                state=Scheduled(),
            )

        warmup, measured = events[:FLOOR_WARMUP], events[FLOOR_WARMUP:]
        first_ids = [(await create(e)).id for e in warmup]
        latencies: list[float] = []
        start = time.perf_counter()
        for i, event in enumerate(measured, 1):
            t0 = time.perf_counter()
            await create(event)
            latencies.append(time.perf_counter() - t0)
            if i % 50 == 0 and i < len(measured):
                ctx.say(f"  … {i}/{len(measured)} runs, {i / (time.perf_counter() - start):.1f} runs/s")
        elapsed = time.perf_counter() - start
        again = await create(warmup[0])
    launcher = await _launcher_loop(ctx, launcher_events)
    same = again.id == first_ids[0]
    ctx.say(
        f"  idempotency: key {warmup[0].dedup_key!r} again → run {again.id} "
        f"({'the same run' if same else 'A DIFFERENT RUN: first was ' + str(first_ids[0])})"
    )
    return {
        "floor_runs": len(measured),
        "floor_rate": len(measured) / elapsed,
        "floor_p50_ms": percentile(latencies, 50) * 1000,
        "floor_p99_ms": percentile(latencies, 99) * 1000,
        "floor_max_ms": max(latencies) * 1000,
        "idempotent_same_run": same,
        **launcher,
    }


def measure_floor(ctx: Context, round_no: int = 0) -> dict[str, Any]:
    count = ctx.args.floor_runs + FLOOR_WARMUP
    events = make_events(ctx.base_events, count, f"floor{round_no}", ctx.tag)
    launcher_count = max(10, ctx.args.floor_runs // 2)
    launcher_events = make_events(ctx.base_events, launcher_count, f"launcher{round_no}", ctx.tag)
    result = asyncio.run(_floor(ctx, events, launcher_events))
    ctx.say(
        f"FLOOR: {result['floor_rate']:.1f} runs/s over {result['floor_runs']} runs, "
        f"p50 {result['floor_p50_ms']:.0f} ms, p99 {result['floor_p99_ms']:.0f} ms, "
        f"max {result['floor_max_ms']:.0f} ms"
    )
    ctx.say(
        f"  for comparison, PrefectLauncher.launch one at a time (read deployment + create): "
        f"{result['launcher_rate']:.1f} runs/s over {result['launcher_runs']} runs, "
        f"p50 {result['launcher_p50_ms']:.0f} ms, p99 {result['launcher_p99_ms']:.0f} ms"
    )
    return result


def measure_router(ctx: Context, floor_rate: float, round_no: int = 0) -> dict[str, Any]:
    """Publish M events first, then let a fresh router drain them."""
    from events.producer import EventPublisher

    count = ctx.args.events
    events = make_events(ctx.base_events, count, f"throughput{round_no}", ctx.tag)
    settings = ctx.settings(f"throughput{round_no}")
    from events.topics import ensure_topics, topic_specs

    ensure_topics(ctx.bootstrap, topic_specs(settings))
    publisher = EventPublisher(ctx.bootstrap, settings.events_topic)
    try:
        for event in events:
            publisher.publish(event)
    finally:
        publisher.close()
    ctx.say(f"  published {count} events to {settings.events_topic}; starting the router")
    router = RouterThread(settings, ctx.bootstrap, f"bench-throughput{round_no}")
    try:
        router.start()
        ready = time.monotonic()
        router.wait_handled(count, timeout=120 + 10 * count / max(floor_rate, 0.1), say=ctx.say)
        wall = time.monotonic() - ready
        stats = router.router.stats
    finally:
        router.stop()
    api = ctx.api()
    try:
        runs = runs_by_key(api, [e.dedup_key for e in events])
    finally:
        api.close()
    created = sorted(parse_time(r.created) for r in runs.values())
    span = created[-1] - created[0] if len(created) > 1 else float("nan")
    rate = (len(created) - 1) / span if span > 0 else float("nan")
    result = {
        "router_events": count,
        "router_runs": len(runs),
        "router_dead_lettered": stats.dead_lettered,
        "router_rate": rate,
        "router_wall_rate": count / wall if wall > 0 else float("nan"),
        "ratio": rate / floor_rate if floor_rate > 0 else float("nan"),
    }
    ctx.say(
        f"ROUTER: {rate:.1f} events/s first→last run created ({len(runs)} runs, "
        f"{stats.dead_lettered} dead-lettered; {result['router_wall_rate']:.1f} events/s wall from "
        f"partitions assigned), ratio to the floor {result['ratio']:.2f}"
    )
    return result


def measure_steady(ctx: Context, floor_rate: float, round_no: int = 0) -> dict[str, Any]:
    """Produce at half the floor rate into a running router; produce → run created."""
    from events.codec import encode_structured
    from events.kafka_clients import make_producer

    rate = floor_rate / 2
    count = max(5, round(rate * ctx.args.steady_seconds))
    events = make_events(ctx.base_events, count + STEADY_WARMUP, f"steady{round_no}", ctx.tag)
    warmup, measured = events[:STEADY_WARMUP], events[STEADY_WARMUP:]
    produced: dict[str, float] = {}
    producer = make_producer(ctx.bootstrap, client_id="bench-steady")
    try:
        with running_router(ctx, f"steady{round_no}") as (router, settings):

            def send(event: AimsEvent) -> Any:
                value, headers = encode_structured(event)
                produced[event.dedup_key] = time.time()
                return producer.send(
                    settings.events_topic, key=event.key.encode(), value=value, headers=headers
                )

            for event in warmup:  # connections, metadata, the first Prefect requests
                send(event).get(timeout=30)
            router.wait_handled(STEADY_WARMUP, timeout=120, say=ctx.say)
            ctx.say(f"  producing {count} events at {rate:.2f}/s for ~{count / rate:.0f}s")
            futures = []
            start = time.monotonic()
            for i, event in enumerate(measured):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                futures.append(send(event))
                if i and i % max(1, round(rate * 10)) == 0:
                    ctx.say(f"  … {i}/{count} produced, {router.handled - STEADY_WARMUP} routed")
            producer.flush(timeout=30)
            for future in futures:
                future.get(timeout=30)
            timeout = 120 + 10 * count / max(floor_rate, 0.1)
            router.wait_handled(STEADY_WARMUP + count, timeout=timeout, say=ctx.say)
    finally:
        producer.close(timeout=10)
    api = ctx.api()
    try:
        runs = runs_by_key(api, [e.dedup_key for e in measured])
    finally:
        api.close()
    latencies = [parse_time(r.created) - produced[k] for k, r in runs.items()]
    launches = {k: router.launches[k] for k in runs if k in router.launches}
    to_launch = [launches[k][0] - produced[k] for k in launches]
    in_launch = [launches[k][1] - launches[k][0] for k in launches]
    result = {
        "steady_to_launch_p50_ms": percentile(to_launch, 50) * 1000,
        "steady_to_launch_p99_ms": percentile(to_launch, 99) * 1000,
        "steady_launch_p50_ms": percentile(in_launch, 50) * 1000,
        "steady_launch_p99_ms": percentile(in_launch, 99) * 1000,
        "steady_rate": rate,
        "steady_events": count,
        "steady_runs": len(runs),
        "steady_p50_ms": percentile(latencies, 50) * 1000,
        "steady_p99_ms": percentile(latencies, 99) * 1000,
        "steady_max_ms": max(latencies, default=float("nan")) * 1000,
    }
    ctx.say(
        f"STEADY: {count} events at {rate:.2f}/s: produce → created p50 {result['steady_p50_ms']:.0f} ms, "
        f"p99 {result['steady_p99_ms']:.0f} ms, max {result['steady_max_ms']:.0f} ms"
    )
    ctx.say(
        f"  of which produce → launch called (Kafka, batching) p50 {result['steady_to_launch_p50_ms']:.0f} / "
        f"p99 {result['steady_to_launch_p99_ms']:.0f} ms; PrefectLauncher.launch p50 "
        f"{result['steady_launch_p50_ms']:.0f} / p99 {result['steady_launch_p99_ms']:.0f} ms"
    )
    return result


def medians(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each number's median over the rounds; flags hold only if they held every round."""
    merged: dict[str, Any] = {}
    for key, first in rounds[0].items():
        values = [r[key] for r in rounds]
        if isinstance(first, bool):
            merged[key] = all(values)
        elif isinstance(first, int):
            merged[key] = statistics.median_low(values)  # counts stay whole
        elif isinstance(first, float):
            merged[key] = statistics.median(values)
        else:
            merged[key] = first
    return merged


def _stopper(say: Progress, what: str, stop: Callable[[], object]) -> Callable[[], None]:
    """A cleanup step that runs once, whether called early or by the final cleanup."""
    done = threading.Event()

    def run() -> None:
        if done.is_set():
            return
        done.set()
        say(f"stopping {what}…")
        try:
            stop()
        except Exception as exc:  # noqa: BLE001 - keep stopping the rest; the error is printed
            say(f"stopping {what} failed: {exc}")

    return run


def run_backend(args: argparse.Namespace) -> int:
    from infra.postgres import PostgresServer
    from infra.prefect_server import PrefectServer, prefect_client_env

    backend = args.backend
    say = Progress(backend)
    state = bench_root() / backend
    cleanup = contextlib.ExitStack()
    signal.signal(signal.SIGTERM, interrupt)
    try:
        # A fresh start: PostgreSQL left running by an interrupted run would hold its folder.
        leftover = PostgresServer(state, "prefect", database="prefect")
        if backend == "postgres" and leftover.data_dir.exists():
            leftover.stop()
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir(parents=True)
        database_url = None
        if backend == "postgres":
            say("starting PostgreSQL…")
            postgres = PostgresServer(state, "prefect", database="prefect")
            cleanup.callback(_stopper(say, "PostgreSQL", postgres.stop))
            database_url = postgres.start()
            say(f"PostgreSQL ready: {database_url}")
        # Runs created in phases 2-4 stay Scheduled (nothing executes them); the late-runs service
        # would then spend the server's time marking hundreds of them Late, which a served
        # deployment never sees. Every other service runs as in the stack.
        os.environ["PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED"] = "false"
        say("starting the Prefect server (late-runs service off)…")
        server = PrefectServer(state, database_url=database_url)
        cleanup.callback(_stopper(say, "the Prefect server", server.stop))
        api_url = server.start()
        say(f"Prefect server ready at {api_url}")
        # Before the first `import prefect`: the SDK reads these from the environment.
        os.environ.update(prefect_client_env(state, api_url))

        ctx = Context(
            backend=backend,
            state=state,
            bootstrap=args.bootstrap,
            api_url=api_url,
            tag=time.strftime("%Y%m%d%H%M%S"),
            args=args,
            say=say,
            base_events=templates(state / "data"),
        )
        result: dict[str, Any] = {"backend": backend, "concurrency": args.concurrency}
        loads: dict[str, list[float]] = {}
        result["load"] = loads
        say("starting the worker (aims worker)…")
        worker = start_worker(ctx)
        stop_worker = _stopper(say, "the worker", lambda: worker.stop(30))
        cleanup.callback(stop_worker)
        if args.skip_running:
            say("RUNNING: skipped (--skip-running)")
        else:
            say(f"RUNNING: {args.running_events} events, {args.running_spacing:g}s apart, worker polling…")
            loads["running"] = [load_average()]
            result.update(measure_running(ctx))
            loads["running"].append(load_average())
        stop_worker()  # from here on, created runs stay Scheduled

        rounds: list[dict[str, Any]] = []
        for n in range(args.repeat):
            of = f" (round {n + 1} of {args.repeat})" if args.repeat > 1 else ""
            suffix = str(n + 1) if args.repeat > 1 else ""
            measured: dict[str, Any] = {}
            say(f"FLOOR{of}: {args.floor_runs} runs, one at a time (after {FLOOR_WARMUP} warm-up runs)…")
            loads[f"floor{suffix}"] = [load_average()]
            measured.update(measure_floor(ctx, n))
            loads[f"floor{suffix}"].append(load_average())
            say(f"ROUTER{of}: {args.events} events, concurrency {args.concurrency}…")
            loads[f"router{suffix}"] = [load_average()]
            measured.update(measure_router(ctx, measured["floor_rate"], n))
            loads[f"router{suffix}"].append(load_average())
            say(f"STEADY{of}: half the floor rate for {args.steady_seconds:g}s…")
            loads[f"steady{suffix}"] = [load_average()]
            measured.update(measure_steady(ctx, measured["floor_rate"], n))
            loads[f"steady{suffix}"].append(load_average())
            rounds.append(measured)
        result.update(medians(rounds))
        result["rounds"] = rounds
        Path(args.result).write_text(json.dumps(result, indent=2))
        return 0
    except KeyboardInterrupt:
        say("interrupted: stopping what was started")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cleanup.close()


# -- the whole benchmark ----------------------------------------------------------------------


def render_table(results: list[dict[str, Any]]) -> str:
    header = (
        "backend",
        "floor runs/s",
        "floor p50/p99 ms",
        "router ev/s",
        "ratio",
        "steady ev/s",
        "created p50/p99 ms",
        "Running p50 s",
    )
    rows = [header]
    for r in results:
        if "error" in r:
            rows.append((r["backend"], r["error"], "", "", "", "", "", ""))
            continue
        rows.append(
            (
                r["backend"],
                fmt(r.get("floor_rate"), ".1f"),
                f"{fmt(r.get('floor_p50_ms'), '.0f')} / {fmt(r.get('floor_p99_ms'), '.0f')}",
                fmt(r.get("router_rate"), ".1f"),
                fmt(r.get("ratio"), ".2f"),
                fmt(r.get("steady_rate"), ".2f"),
                f"{fmt(r.get('steady_p50_ms'), '.0f')} / {fmt(r.get('steady_p99_ms'), '.0f')}",
                fmt(r.get("running_p50_s"), ".2f"),
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def verdicts(result: dict[str, Any]) -> str:
    def check(name: str, value: Any, ok: Callable[[float], bool], shown: str) -> str:
        if value is None or value != value:
            return f"{name} –"
        return f"{name} {shown} {'meets' if ok(value) else 'MISSES'}"

    return "; ".join(
        [
            check(
                "ratio",
                result.get("ratio"),
                lambda v: v >= TARGET_RATIO,
                f"{fmt(result.get('ratio'), '.3f')} (≥ {TARGET_RATIO})",
            ),
            check(
                "p99 created",
                result.get("steady_p99_ms"),
                lambda v: v <= TARGET_P99_CREATED_MS,
                f"{fmt(result.get('steady_p99_ms'), '.0f')} ms (≤ {TARGET_P99_CREATED_MS:.0f})",
            ),
            check(
                "p50 Running",
                result.get("running_p50_s"),
                lambda v: v <= TARGET_P50_RUNNING_S,
                f"{fmt(result.get('running_p50_s'), '.2f')} s (≤ {TARGET_P50_RUNNING_S:g})",
            ),
        ]
    )


def per_round(rounds: list[dict[str, Any]]) -> str:
    def values(key: str, spec: str) -> str:
        return "/".join(fmt(r.get(key), spec) for r in rounds)

    return (
        f"floor runs/s {values('floor_rate', '.1f')}, floor p99 ms {values('floor_p99_ms', '.0f')}, "
        f"router ev/s {values('router_rate', '.1f')}, ratio {values('ratio', '.2f')}, "
        f"created p99 ms {values('steady_p99_ms', '.0f')}"
    )


def child_command(args: argparse.Namespace, backend: str, bootstrap: str, result: Path) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "bench.router",
        "--child",
        "--backend",
        backend,
        "--bootstrap",
        bootstrap,
        "--result",
        str(result),
        "--floor-runs",
        str(args.floor_runs),
        "--events",
        str(args.events),
        "--concurrency",
        str(args.concurrency),
        "--repeat",
        str(args.repeat),
        "--steady-seconds",
        str(args.steady_seconds),
        "--running-events",
        str(args.running_events),
        "--running-spacing",
        str(args.running_spacing),
    ]
    if args.skip_running:
        command.append("--skip-running")
    return command


def run_all(args: argparse.Namespace) -> int:
    from infra.kafka_broker import KafkaBroker
    from schemas.settings import load_settings

    settings = load_settings()
    root = settings.state_path / "bench"
    say = Progress("bench")
    backends = list(BACKENDS) if args.backend == "both" else [args.backend]
    broker: KafkaBroker | None = None
    child: subprocess.Popen[bytes] | None = None

    def on_term(signum: int, frame: object) -> None:
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    results: list[dict[str, Any]] = []
    crashed = interrupted = False
    try:
        bootstrap = settings.kafka_bootstrap_servers
        if bootstrap:
            say(f"Kafka: using the existing cluster at {bootstrap}")
        else:
            say("Kafka: starting a local KRaft broker…")
            root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(root / "kafka" / "data", ignore_errors=True)  # topics of earlier runs
            broker = KafkaBroker(root, settings.kafka_home)
            bootstrap = broker.start()
            say(f"Kafka: broker ready at {bootstrap}")
        for backend in backends:
            result_path = root / f"result-{backend}.json"
            result_path.unlink(missing_ok=True)
            say(f"=== {backend}: a fresh child process ===")
            child = subprocess.Popen(child_command(args, backend, bootstrap, result_path))
            try:
                code = child.wait()
            except KeyboardInterrupt:
                say("interrupted: waiting for the child to stop what it started…")
                try:
                    child.wait(120)
                except subprocess.TimeoutExpired:
                    child.kill()
                raise
            if code == 0 and result_path.exists():
                results.append(json.loads(result_path.read_text()))
            else:
                crashed = True
                results.append({"backend": backend, "error": f"crashed (exit {code}); see the output above"})
    except KeyboardInterrupt:
        say("interrupted")
        interrupted = True
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if broker is not None:
            say("stopping the Kafka broker…")
            broker.stop()
    if results:
        print()
        print(
            "Router benchmark (a fresh Prefect server per backend, PostgreSQL with fsync off, one Kafka "
            f"broker; floor {args.floor_runs} runs, "
            f"{args.events} events, router concurrency {args.concurrency}, steady {args.steady_seconds:g}s"
            + (f"; medians of {args.repeat} rounds)" if args.repeat > 1 else ")")
        )
        print(render_table(results))
        print()
        for r in results:
            if "error" in r:
                continue
            print(f"{r['backend']}: {verdicts(r)}")
            print(
                f"  floor max {fmt(r.get('floor_max_ms'), '.0f')} ms; idempotent repeat returned the "
                f"same run: {r.get('idempotent_same_run')}; router: {r.get('router_runs')} runs for "
                f"{r.get('router_events')} events, {r.get('router_dead_lettered')} dead-lettered, "
                f"{fmt(r.get('router_wall_rate'), '.1f')} events/s wall; steady max "
                f"{fmt(r.get('steady_max_ms'), '.0f')} ms over {r.get('steady_runs')} runs"
            )
            if len(r.get("rounds", [])) > 1:
                print(f"  per round: {per_round(r['rounds'])}")
            loads = ", ".join(f"{phase} {a}→{b}" for phase, (a, b) in r.get("load", {}).items())
            print(f"  1-minute load average at the start→end of each phase (2 cores, shared): {loads}")
            if "running_p50_s" in r:
                print(
                    f"  Running: {r['running_started']}/{r['running_events']} runs started, max "
                    f"{fmt(r['running_max_s'], '.2f')} s; final states {r['running_states']}"
                )
        print(
            f"\ntargets: ratio ≥ {TARGET_RATIO}, p99 produce→created ≤ {TARGET_P99_CREATED_MS:.0f} ms at "
            f"half the floor rate, p50 produce→Running ≤ {TARGET_P50_RUNNING_S:g} s. "
            "Times never fail the benchmark."
        )
    return 130 if interrupted else 1 if crashed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.router",
        description="Router throughput and latency against Prefect on PostgreSQL and SQLite.",
    )
    parser.add_argument(
        "--backend",
        choices=[*BACKENDS, "both"],
        default="both",
        help="Prefect database to measure (default %(default)s)",
    )
    parser.add_argument(
        "--floor-runs",
        type=int,
        default=200,
        metavar="N",
        help="flow runs in the client-loop floor (default %(default)s)",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=300,
        metavar="N",
        help="events in the router throughput run (default %(default)s)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        metavar="N",
        help="router_concurrency: run creations in flight (default %(default)s)",
    )
    parser.add_argument(
        "--steady-seconds",
        type=float,
        default=30,
        metavar="S",
        help="length of the half-floor-rate latency run (default %(default)s)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="rounds of floor, router and steady; the table shows medians (default %(default)s)",
    )
    parser.add_argument(
        "--skip-running",
        action="store_true",
        help="skip produce → Running (the worker still registers the deployments)",
    )
    parser.add_argument(
        "--running-events",
        type=int,
        default=10,
        metavar="N",
        help="events in the produce → Running sample (default %(default)s)",
    )
    parser.add_argument(
        "--running-spacing",
        type=float,
        default=5,
        metavar="S",
        help="seconds between those events (default %(default)s)",
    )
    # Internal: one backend in a fresh process.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Ctrl-C stops everything in order, even when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.floor_runs < 10 or args.events < 10 or args.repeat < 1:
        raise SystemExit("--floor-runs and --events need at least 10, --repeat at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)
    if args.child:
        if args.backend == "both" or not args.bootstrap or not args.result:
            raise SystemExit("--child needs one --backend, --bootstrap and --result")
        return run_backend(args)
    return run_all(args)


if __name__ == "__main__":
    raise SystemExit(main())
