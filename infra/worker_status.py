"""Where a running `aims worker` says how ready it is: `<state>/workers/<pid>.json`.

The worker (infra.serving) writes the file; the stack, the benchmarks and the tests read it. It is
a module of its own so that readers need neither the flows nor the worker to find it.
"""

from __future__ import annotations

import json
from pathlib import Path


def worker_status_path(state_dir: Path, pid: int) -> Path:
    return state_dir / "workers" / f"{pid}.json"


def worker_ready(state_dir: Path, pid: int | None) -> bool:
    """True once that worker has at least one flow-run process that finished importing."""
    if pid is None:
        return False
    try:
        status = json.loads(worker_status_path(state_dir, pid).read_text())
    except (OSError, ValueError):
        return False
    return int(status.get("ready", 0)) > 0 or int(status.get("size", 1)) == 0
