"""The processes started from a state folder: finding them (even those started by hand) and stopping
them in order, with pids checked against their command lines so a recycled pid is never signalled;
and how long a component that keeps dying waits before its next start (`Backoff`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from infra.processes import process_args, stop_pids
from infra.stack_state import StackInfo

Progress = Callable[[str], None]

# Producers of Kafka events and decisions first, the servers they need last.
STOP_ORDER: tuple[str, ...] = ("gateway", "router", "worker", "prefect-server", "kafka")


def aims_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "aims", *args]


@dataclass(frozen=True)
class StackProcess:
    component: str
    pid: int
    source: Path  # the file that named it


_AIMS_MODULES = ("aims", "aims.cli", "aims.__main__")
_SUPERVISOR_COMMANDS = ("up", "demo")  # `aims demo` starts and supervises a stack too


def aims_subcommand(args: list[str]) -> str | None:
    """`router` for `python -m aims router …` or `…/bin/aims router …`; None if not an aims command."""
    # Only the first few arguments: the interpreter, perhaps an option of its own, then the module
    # or the script. "aims" further along is an argument of some other program.
    head = args[:5]
    for i, arg in enumerate(head):
        if arg == "-m" and i + 1 < len(args) and args[i + 1] in _AIMS_MODULES:
            return args[i + 2] if i + 2 < len(args) else None
        if Path(arg).name == "aims":
            return args[i + 1] if i + 1 < len(args) else None
    return None


def is_component_process(pid: int, component: str, state_dir: Path) -> bool:
    """True if `pid` runs `component` (or "supervisor") of a stack now, as its command line shows.

    Pids are recycled: a pid read from a file is signalled only if this holds, so a stale file never
    gets an unrelated process stopped.
    """
    args = process_args(pid)
    if not args:
        return False  # gone (or a zombie, which is gone too)
    if component == "kafka":
        # One node's config: `kafka/server.properties`; a cluster node's: `kafka/node-<id>/server.properties`.
        configs = {state_dir / "kafka" / "server.properties"} | set(
            (state_dir / "kafka").glob("node-*/server.properties")
        )
        return "kafka.Kafka" in args and any(Path(arg) in configs for arg in args)
    if component == "prefect-server":
        return any(
            Path(a).name == "prefect" and args[i + 1 : i + 3] == ["server", "start"]
            for i, a in enumerate(args)
        )
    command = aims_subcommand(args)
    if component == "supervisor":
        return command in _SUPERVISOR_COMMANDS
    return command == component


def _pid_field(path: Path) -> int | None:
    try:
        pid = json.loads(path.read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None


def announced_processes(state_dir: Path, pids: Mapping[str, int] | None = None) -> list[StackProcess]:
    """The processes started from `state_dir` that still run, in the order to stop them.

    Found in `pids` (stack.json's: the supervisor's children) and in the files processes write about
    themselves: `routers/router-*.json` (`pid`), `workers/<pid>.json` and the gateway's status file
    (`pid`), which covers routers, workers and gateways started by hand. Each is kept only if its
    pid still runs that component (`is_component_process`).
    """
    from gateway.status_file import status_path

    candidates: list[StackProcess] = []
    stack_file = StackInfo.path(state_dir)
    for name, pid in (pids or {}).items():
        component = "kafka" if name.startswith("kafka-") else name  # a cluster's nodes: kafka-<id>
        if component in STOP_ORDER and isinstance(pid, int) and pid > 0:
            candidates.append(StackProcess(component, pid, stack_file))
    gateway = status_path(state_dir)
    if (gateway_pid := _pid_field(gateway)) is not None:
        candidates.append(StackProcess("gateway", gateway_pid, gateway))
    for path in sorted((state_dir / "routers").glob("router-*.json")):
        if (router_pid := _pid_field(path)) is not None:
            candidates.append(StackProcess("router", router_pid, path))
    for path in sorted((state_dir / "workers").glob("*.json")):
        if path.stem.isdigit():
            candidates.append(StackProcess("worker", int(path.stem), path))
    found: list[StackProcess] = []
    seen = {os.getpid()}  # never this process (`aims down` itself)
    for candidate in sorted(candidates, key=lambda c: STOP_ORDER.index(c.component)):
        if candidate.pid in seen:
            continue
        seen.add(candidate.pid)
        if is_component_process(candidate.pid, candidate.component, state_dir):
            found.append(candidate)
    return found


def stop_processes(found: Iterable[StackProcess], progress: Progress = print, timeout: float = 30) -> None:
    """Stop `found` in `STOP_ORDER`, each kind at once: SIGTERM, then SIGKILL after `timeout`."""
    found = list(found)
    for component in STOP_ORDER:
        pids = [p.pid for p in found if p.component == component]
        if not pids:
            continue
        progress(f"stopping {component} (pid {', '.join(map(str, pids))})…")
        stubborn = stop_pids(pids, timeout)
        if stubborn:
            progress(
                f"{component}: pid {', '.join(map(str, stubborn))} ignored SIGTERM for {timeout:.0f}s; killed"
            )


@dataclass
class Backoff:
    """When a component that died may be started again: at once, unless it keeps dying.

    A component that ran `stable_after` seconds before dying starts again at once; each further
    death within that time doubles the wait (from `base`, at most `cap` seconds).
    """

    base: float = 2.0
    cap: float = 60.0
    stable_after: float = 60.0
    failures: int = 0
    started_at: float = 0.0

    def started(self, now: float) -> None:
        self.started_at = now

    def died(self, now: float) -> float:
        """Record a death at `now`; returns the seconds to wait before the next start."""
        if now - self.started_at >= self.stable_after:
            self.failures = 0
        self.failures += 1
        if self.failures == 1:
            return 0.0
        return float(min(self.cap, self.base * 2 ** (self.failures - 2)))
