"""The create-run floor measured against a running stack: what Prefect gives a client that does
nothing but create runs, one at a time, so that a benchmark of the stack has its ratio in the same run.

bench.router measures the same floor through the Prefect SDK in a process of its own (the SDK reads
its settings from the environment at import); the stack benchmarks (burst, soak) run beside a live
worker, so this one posts the same request (`POST /deployments/{id}/create_flow_run`, what
`create_flow_run_from_deployment` sends) over plain HTTP, and schedules each run a day ahead: the
worker never takes them, and they are deleted afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bench.common import Progress, load_average, percentile

if TYPE_CHECKING:
    from connectors.prefect_api import PrefectApi
    from schemas.events import AimsEvent

# The first requests open connections and warm the server's caches: not part of the floor.
WARMUP = 5


@dataclass(frozen=True)
class Floor:
    runs: int  # measured, after the warm-up
    rate: float  # runs/s, one request at a time
    p50_ms: float
    p99_ms: float
    load: tuple[float, float]  # the machine's 1-minute load average at the start and the end


def create_run_floor(api: PrefectApi, events: Sequence[AimsEvent], say: Progress) -> Floor:
    """Create one run per event (the first WARMUP unmeasured) with the router's deployment, parameters,
    name, tags and idempotency key; delete them all afterwards."""
    from events.routing import ROUTES, labels

    if len(events) <= WARMUP:
        raise ValueError(f"the floor needs more than {WARMUP} events")
    load_start = load_average()
    ids: dict[str, str] = {}
    created: list[str] = []
    latencies: list[float] = []
    # A day ahead: created like the router's runs, never due while the benchmark lasts.
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    start = 0.0
    try:
        for i, event in enumerate(events):
            if i == WARMUP:
                start = time.perf_counter()
            route = ROUTES[event.type][0]
            if route.deployment not in ids:
                found = api.request("GET", f"/deployments/name/{route.deployment}")
                found.raise_for_status()
                ids[route.deployment] = found.json()["id"]
            name, tags = labels(route, event)
            body = {
                "parameters": route.parameters(event),
                "idempotency_key": event.dedup_key,
                "name": name,
                "tags": tags,
                "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": later}},
            }
            t0 = time.perf_counter()
            # PrefectApi repeats a 503 (SQLite busy): safe here, the idempotency key returns the same run.
            response = api.request("POST", f"/deployments/{ids[route.deployment]}/create_flow_run", json=body)
            response.raise_for_status()
            if i >= WARMUP:
                latencies.append(time.perf_counter() - t0)
            created.append(response.json()["id"])
        elapsed = time.perf_counter() - start
    finally:
        for run_id in created:
            api.delete_run(run_id)
    floor = Floor(
        runs=len(latencies),
        rate=len(latencies) / elapsed if elapsed > 0 else float("nan"),
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        load=(load_start, load_average()),
    )
    say(
        f"FLOOR: {floor.rate:.1f} runs/s created one at a time over {floor.runs} runs, p50 "
        f"{floor.p50_ms:.0f} ms, p99 {floor.p99_ms:.0f} ms (load {floor.load[0]}→{floor.load[1]})"
    )
    return floor
