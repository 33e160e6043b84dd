"""The router benchmark's measurements for one backend (bench.router): the create-run floor, the steady
stream, and produce → Running through the real worker (the throughput phase is bench.router_throughput).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import Progress, parse_time, percentile
from bench.router_parts import (
    FLOOR_WARMUP,
    STEADY_WARMUP,
    TERMINAL,
    RouterThread,
    deployment_names,
    make_events,
    runs_by_key,
)

if TYPE_CHECKING:
    from pydantic import SecretStr

    from connectors.prefect_api import FlowRunView, PrefectApi
    from events.kafka_clients import KafkaConnection
    from infra.processes import ManagedProcess
    from schemas.events import AimsEvent
    from schemas.settings import AimsSettings


@dataclass
class Context:
    backend: str
    state: Path
    kafka: KafkaConnection  # the brokers, with the settings' client security
    api_url: str
    tag: str
    args: argparse.Namespace
    say: Progress
    base_events: list[AimsEvent]
    # The installation's key: `aims demo`'s events come from an urn:aims: source, which a router
    # dead-letters unless signed with it; the routers verify with it, the worker's flows sign with it.
    signing_key: SecretStr

    def settings(self, phase: str) -> AimsSettings:
        from schemas.settings import AimsSettings

        name = f"bench.{self.backend}.{self.tag}.{phase}"
        return AimsSettings(
            state_dir=self.state,
            events_topic=name,
            dead_letter_topic=f"{name}.dlq",
            consumer_group=f"bench-{self.backend}-{self.tag}-{phase}",
            router_concurrency=self.args.concurrency,
            event_signing_key=self.signing_key,
        )

    def api(self) -> PrefectApi:
        from connectors.prefect_api import PrefectApi

        return PrefectApi(self.api_url, timeout=30)


@contextlib.contextmanager
def running_router(ctx: Context, phase: str) -> Iterator[tuple[RouterThread, AimsSettings]]:
    settings = ctx.settings(phase)
    router = RouterThread(settings, ctx.kafka, f"bench-{phase}")
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
    ensure_topics(ctx.kafka, topic_specs(AimsSettings(state_dir=ctx.state)))
    env = dict(os.environ)
    # Baseline suites drafted for the benchmark's datasets go to its state folder, not the repository.
    env["AIMS_SUITES_DIR"] = str(ctx.state / "suites")
    env["KAFKA_BOOTSTRAP_SERVERS"] = ctx.kafka.bootstrap
    env["AIMS_EVENT_SIGNING_KEY"] = ctx.signing_key.get_secret_value()
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
            publisher = EventPublisher(ctx.kafka, settings.events_topic, signing_key=ctx.signing_key)
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


def measure_steady(ctx: Context, floor_rate: float, round_no: int = 0) -> dict[str, Any]:
    """Produce at half the floor rate into a running router; produce → run created."""
    from events.codec import encode_structured
    from events.kafka_clients import make_producer
    from schemas.signing import seal

    rate = floor_rate / 2
    count = max(5, round(rate * ctx.args.steady_seconds))
    events = make_events(ctx.base_events, count + STEADY_WARMUP, f"steady{round_no}", ctx.tag)
    warmup, measured = events[:STEADY_WARMUP], events[STEADY_WARMUP:]
    produced: dict[str, float] = {}
    producer = make_producer(ctx.kafka, client_id="bench-steady")
    try:
        with running_router(ctx, f"steady{round_no}") as (router, settings):

            def send(event: AimsEvent) -> Any:
                value, headers = encode_structured(seal(event, ctx.signing_key))
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
