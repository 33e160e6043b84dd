"""`aims probe router|worker`: whether the router or the worker running on this host is alive, read
from the files it keeps in the state folder, for a container's liveness and readiness checks
(Kubernetes exec probes, infra/deploy/k8s/): exit 0 when it is, 1 with the reason.

- router: its heartbeat (`routers/router-<name>.json`, events/router_liveness.py), rewritten every
  ~2 s by its consumer loop, also while it holds on Kafka, the register or Prefect (a restart would
  not help then). Alive: a heartbeat from this host younger than `max_age`, partitions or none (a
  router beyond the partition count waits idle in the group, ready to take over).
- worker: its status file (`workers/<pid>.json`, infra.worker_status): ready once a flow-run process
  finished importing. That file changes only when the pool does, so it says nothing of liveness:
  the worker's liveness is Prefect's own health check (`aims worker --with-healthcheck`).

Only this host's files count: the local stack shares one state folder between processes, and a
pod's state folder is its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from aims.status_routers import HEARTBEAT_STALE_SECONDS, router_view
from infra.processes import pid_alive
from infra.worker_status import worker_ready

ROUTER_MAX_AGE = float(HEARTBEAT_STALE_SECONDS)


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str


def probe_router(state: Path, hostname: str, now: float, max_age: float = ROUTER_MAX_AGE) -> ProbeResult:
    """Alive when a router on `hostname` wrote its heartbeat less than `max_age` seconds ago."""
    directory = state / "routers"
    seen: list[str] = []
    for path in sorted(directory.glob("router-*.json")):
        _, view = router_view(path, now, hostname)
        if view is None or view.get("host") != hostname:
            continue  # its process is gone, or another host's router
        at = view.get("at")
        if not isinstance(at, float | int):
            seen.append(f"router {view['name']}: heartbeat unreadable")
            continue
        age = now - at
        if -max_age < age < max_age:
            partitions = view.get("partitions")
            holding = view.get("holding_on")
            detail = f"holding on {holding}" if holding else f"partitions {partitions}"
            return ProbeResult(True, f"router {view['name']}: heartbeat {max(age, 0):.1f} s old ({detail})")
        seen.append(f"router {view['name']}: last heartbeat {age:.0f} s ago (limit {max_age:.0f} s)")
    if not seen:
        return ProbeResult(False, f"no heartbeat from a router on {hostname} in {directory}")
    return ProbeResult(False, "; ".join(seen))


def probe_worker(state: Path) -> ProbeResult:
    """Ready when a worker whose process runs here has a flow-run process ready (or keeps none)."""
    directory = state / "workers"
    seen: list[str] = []
    for path in sorted(directory.glob("*.json")):
        if not path.stem.isdigit():
            continue
        pid = int(path.stem)
        if not pid_alive(pid):
            continue  # left by a worker that was killed
        if worker_ready(state, pid):
            return ProbeResult(True, f"worker pid {pid}: ready ({_pool_line(path)})")
        seen.append(f"worker pid {pid}: no flow-run process ready yet ({_pool_line(path)})")
    if not seen:
        return ProbeResult(False, f"no running worker's status in {directory}")
    return ProbeResult(False, "; ".join(seen))


def _pool_line(path: Path) -> str:
    try:
        status = json.loads(path.read_text())
    except (OSError, ValueError):
        return "status unreadable"
    return f"{status.get('ready', '?')} of {status.get('size', '?')} flow-run processes ready"
