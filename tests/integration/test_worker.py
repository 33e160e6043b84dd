"""The worker runs each flow run in a process it started before the run existed, and leaves none behind."""

from __future__ import annotations

import csv
import json
import os
import signal
import uuid
from pathlib import Path
from typing import Any

from events.producer import EventPublisher
from infra.deployments import all_flows, worker_status_path
from infra.warm_engine import READY_LINE, RUN_LINE
from schemas.settings import AimsSettings
from tests.factories import data_event, incident_event, model_event
from tests.support import SessionStack, poll

SPARES = AimsSettings().warm_processes


def spares_of(worker_pid: int) -> set[int]:
    """Live `infra.warm_engine` children of the worker (zombies have no command line, so they drop out)."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == worker_pid and b"infra.warm_engine" in cmdline:
            found.add(int(entry.name))
    return found


def gx_spares_of(worker_pid: int) -> set[int]:
    """The worker's spares started with the profile that preloads Great Expectations."""
    found = set()
    for pid in spares_of(worker_pid):
        try:
            if b"\0--profile\0gx\0" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(pid)
        except OSError:
            continue  # it exited meanwhile
    return found


def engine_lines(stack: SessionStack, prefix: str) -> list[dict[str, Any]]:
    """What the flow-run processes printed into the worker's log (one JSON object per line)."""
    lines = (stack.state / "logs" / "worker.log").read_text(errors="replace").splitlines()
    return [json.loads(line[len(prefix) + 1 :]) for line in lines if line.startswith(prefix + " ")]


def ready_gx_spares(stack: SessionStack, worker: int) -> set[int]:
    ready = {r["pid"] for r in engine_lines(stack, READY_LINE) if r["profile"] == "gx"}
    return gx_spares_of(worker) & ready


def exists(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def infrastructure_pid(stack: SessionStack, run_id: str) -> int:
    api = stack.api()
    try:
        return int(api.request("GET", f"/flow_runs/{run_id}").json()["infrastructure_pid"])
    finally:
        api.close()


def worker_pid(stack: SessionStack) -> int:
    stack.ensure_worker()
    assert stack.worker is not None and stack.worker.pid is not None
    pid = stack.worker.pid
    poll(lambda: len(spares_of(pid)) >= SPARES, 60, f"{SPARES} spare flow-run processes")
    return pid


def ready_spares(stack: SessionStack, pid: int) -> int:
    """What the worker reports in its status file: spares that finished importing."""
    try:
        return int(json.loads(worker_status_path(stack.state, pid).read_text())["ready"])
    except (OSError, ValueError, KeyError):
        return -1


def test_a_run_executes_in_a_spare_started_before_it_and_the_spare_is_replaced(
    stack: SessionStack, topics: dict[str, str]
) -> None:
    pid = worker_pid(stack)
    poll(lambda: ready_spares(stack, pid) == SPARES, 90, f"the worker reporting {SPARES} spares ready")
    before = spares_of(pid)
    event = incident_event("warm-spare")
    publisher = EventPublisher(stack.bootstrap, topics["AIMS_EVENTS_TOPIC"])
    with stack.router(topics):
        publisher.publish(event)
        [run] = stack.wait_for_runs([event.dedup_key], states={"Completed"}, timeout=120)
    publisher.close()

    ran_in = infrastructure_pid(stack, run.id)
    assert ran_in in before, f"run executed in {ran_in}, not one of the spares {sorted(before)}"
    # One run per process: it exits once the run's logs and events are flushed.
    poll(lambda: not exists(ran_in), 30, "the run's process to exit")
    poll(lambda: len(spares_of(pid)) >= SPARES, 60, "the pool topped up again")
    poll(lambda: ready_spares(stack, pid) == SPARES, 90, "the new spare warm")


def test_data_quality_runs_take_a_spare_that_preloaded_gx_and_other_runs_leave_it(
    stack: SessionStack, topics: dict[str, str]
) -> None:
    pid = worker_pid(stack)
    gx_spares = poll(lambda: ready_gx_spares(stack, pid), 180, "a spare with Great Expectations preloaded")
    publisher = EventPublisher(stack.bootstrap, topics["AIMS_EVENTS_TOPIC"])
    with stack.router(topics):
        other = incident_event("gx-spare-left-alone")
        publisher.publish(other)
        [other_run] = stack.wait_for_runs([other.dedup_key], states={"Completed"}, timeout=120)
        assert infrastructure_pid(stack, other_run.id) not in gx_spares
        assert gx_spares <= gx_spares_of(pid), "a run of another flow took a GX spare"

        check = data_event(f"gx-warm-{uuid.uuid4().hex[:8]}", small_csv(stack.state / "gx-warm.csv").as_uri())
        publisher.publish(check)
        [check_run] = stack.wait_for_runs([check.dedup_key], states={"Completed"}, timeout=180)
    publisher.close()

    assert infrastructure_pid(stack, check_run.id) in gx_spares
    [said] = poll(
        lambda: [r for r in engine_lines(stack, RUN_LINE) if r["flow_run_id"] == check_run.id],
        30,
        "the run's process to report",
    )
    assert said["profile"] == "gx" and said["gx_preloaded"] and not said["gx_imported_in_run"]
    poll(lambda: gx_spares_of(pid) - gx_spares, 60, "a new GX spare in place of the one taken")


def test_every_flow_with_a_preload_profile_exists(stack: SessionStack) -> None:
    # Imported here, with the stack (any Prefect import must come after its settings are in the environment).
    from infra.warm_worker import FLOW_PROFILES

    assert set(FLOW_PROFILES) <= {f.name for f in all_flows()}


def small_csv(path: Path) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["applicant_id", "income", "amount"])
        writer.writerows([i, 20_000 + 137 * i, 1_000 + 53 * i] for i in range(200))
    return path


def test_spares_killed_while_waiting_are_replaced_and_runs_still_complete(
    stack: SessionStack, topics: dict[str, str]
) -> None:
    pid = worker_pid(stack)
    killed = spares_of(pid)
    for spare in killed:
        os.kill(spare, signal.SIGKILL)
    poll(lambda: not any(exists(p) for p in killed), 30, "the killed spares gone")

    events = [model_event("after-kill-1"), incident_event("after-kill-2")]
    publisher = EventPublisher(stack.bootstrap, topics["AIMS_EVENTS_TOPIC"])
    with stack.router(topics):
        for event in events:
            publisher.publish(event)
        runs = stack.wait_for_runs([e.dedup_key for e in events], states={"Completed"}, timeout=180)
    publisher.close()

    assert {r.state for r in runs} == {"Completed"} and len(runs) == 2
    assert not {infrastructure_pid(stack, r.id) for r in runs} & killed
    assert stack.worker is not None and stack.worker.alive()


def test_stopping_the_worker_stops_its_spares(stack: SessionStack) -> None:
    pid = worker_pid(stack)
    spares = spares_of(pid)
    stack.stop_worker()
    try:
        poll(lambda: not any(exists(p) for p in spares), 30, "the spares gone with the worker")
        assert not worker_status_path(stack.state, pid).exists()
    finally:
        stack.start_worker()
