"""The worker runs each flow run in a process it started before the run existed, and leaves none behind."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from connectors.prefect_api import FlowRunView, PrefectApi
from infra.deployments import all_flows, worker_status_path
from infra.unresponsive import AUTOMATION_NAME, crash_message
from infra.warm_engine import READY_LINE, RUN_LINE
from schemas.settings import AimsSettings
from tests.factories import data_event, incident_event, model_event
from tests.integration.datasets import data_change, with_suite_of, write_loans
from tests.support import WORKER_SETTINGS, SessionStack, poll

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import WorkPool

    from schemas.events import AimsEvent

T = TypeVar("T")
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


def routed(stack: SessionStack, topics: dict[str, str], event: AimsEvent, state: str) -> FlowRunView:
    """`event` published and routed; its run once it is in `state`."""
    publisher = stack.publisher(topics["AIMS_EVENTS_TOPIC"])
    try:
        with stack.router(topics):
            publisher.publish(event)
            [run] = stack.wait_for_runs([event.dedup_key], states={state}, timeout=120)
    finally:
        publisher.close()
    return run


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
    run = routed(stack, topics, event, "Completed")

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
    publisher = stack.publisher(topics["AIMS_EVENTS_TOPIC"])
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
    publisher = stack.publisher(topics["AIMS_EVENTS_TOPIC"])
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


# -- the work pool's concurrency limit (issue 17, item 6) ---------------------------------------

POOL = AimsSettings().work_pool
FINAL = {"Completed", "Failed", "Crashed", "Cancelled"}


def prefect(call: Callable[[PrefectClient], Awaitable[T]]) -> T:
    """One call with the Prefect client, against the session's server, with the client's retries
    (the session turns them off for the routers; its SQLite server answers 503 while busy)."""
    import anyio
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    async def go() -> T:
        with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 5}):
            async with get_client() as client:
                return await call(client)

    return anyio.run(go)


def read_pool(name: str = POOL) -> WorkPool:
    return prefect(lambda client: client.read_work_pool(name))


def update_pool(name: str = POOL, **fields: Any) -> None:
    """Change the pool as the team would in Prefect (`prefect work-pool set-concurrency-limit`,
    `pause`, `resume`, `clear-concurrency-limit` make the same call)."""
    from prefect.client.schemas.actions import WorkPoolUpdate

    prefect(lambda client: client.update_work_pool(name, WorkPoolUpdate(**fields)))


def delete_pool(name: str) -> None:
    prefect(lambda client: client.delete_work_pool(name))


def worker_status(stack: SessionStack, pid: int) -> dict[str, Any]:
    try:
        return dict(json.loads(worker_status_path(stack.state, pid).read_text()))
    except (OSError, ValueError):
        return {}


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0  # it exited between listing and reading


def active_in_pool(api: PrefectApi) -> int:
    """The pool's runs that hold a slot of its limit, as Prefect counts them: Pending and Running."""
    response = api.request(
        "POST",
        "/flow_runs/count",
        json={
            "flow_runs": {"state": {"type": {"any_": ["PENDING", "RUNNING"]}}},
            "work_pools": {"name": {"any_": [POOL]}},
        },
    )
    response.raise_for_status()
    return int(response.json())


def suspended_runs(count: int) -> list[str]:
    """Runs of the pool in the state `suspend_flow_run` leaves a request-approval run in while people
    decide (Paused, named Suspended, to be rescheduled on resume). Set through the API: a real
    request-approval run would also post to Slack and Jira and leave an approval open for
    chase-approvals in later tests; Prefect's scheduling sees only the state either way."""
    from prefect.states import Suspended

    async def create(client: PrefectClient) -> list[str]:
        deployment = await client.read_deployment_by_name("watch-incident-clocks/aims")
        runs = [
            await client.create_flow_run_from_deployment(
                deployment.id, parameters={"incidents": []}, state=Suspended(timeout_seconds=3600)
            )
            for _ in range(count)
        ]
        return [str(run.id) for run in runs]

    return prefect(create)


@dataclass(frozen=True)
class Sample:
    active: int  # the pool's Pending and Running runs
    waiting: int  # runs of the burst not started yet
    processes: int  # the worker's flow-run processes alive: running a flow, or spares
    rss: int  # their resident memory, bytes


def test_a_burst_runs_at_most_the_pools_limit_at_once_in_a_bounded_number_of_processes(
    stack: SessionStack,
) -> None:
    from infra.warm_worker import gx_spares_from_env

    limit, burst = 2, 5
    pid = worker_pid(stack)
    before = read_pool()
    api = stack.api()
    held: list[str] = []
    samples: list[Sample] = []
    try:
        update_pool(concurrency_limit=limit)
        # Prefect pushes the change to the worker, whose own limiter follows it (infra.warm_worker).
        poll(
            lambda: worker_status(stack, pid).get("runs_at_once") == limit,
            60,
            "the worker to follow the limit",
        )
        # As many waiting approvals as the limit: if suspended runs held slots, nothing below would start.
        held = suspended_runs(limit)
        assert {r.state for r in api.flow_runs({"id": {"any_": held}})} == {"Suspended"}

        # Paused while the runs are created, so that all of them are waiting when the worker may take them.
        update_pool(is_paused=True)
        tag = uuid.uuid4().hex[:8]
        keys = [f"burst-{tag}-{i}" for i in range(burst)]
        for key in keys:
            stack.launch("watch-incident-clocks/aims", {"incidents": []}, key)
        update_pool(is_paused=False)

        def sample() -> list[FlowRunView] | None:
            runs = api.runs_for_keys(keys)
            processes = spares_of(pid)
            samples.append(
                Sample(
                    active=active_in_pool(api),
                    waiting=sum(1 for r in runs if r.state in {"Scheduled", "Late"}),
                    processes=len(processes),
                    rss=sum(rss_bytes(p) for p in processes),
                )
            )
            return runs if len(runs) == burst and all(r.state in FINAL for r in runs) else None

        runs = poll(sample, 240, f"{burst} runs of the burst to finish", every=0.2)
    finally:
        update_pool(concurrency_limit=before.concurrency_limit, is_paused=before.is_paused)
        for run_id in held:
            api.delete_run(run_id)
        api.close()

    bound = limit + SPARES + gx_spares_from_env()
    peak = max(samples, key=lambda s: s.rss)
    print(
        f"\n{burst} runs, limit {limit}: {len(samples)} samples; at most {max(s.active for s in samples)} "
        f"active, {max(s.processes for s in samples)} flow-run processes (bound {bound}); peak RSS of "
        f"flow-run processes {peak.rss / 2**20:.0f} MB in {peak.processes} processes"
    )
    assert sorted(r.state for r in runs) == ["Completed"] * burst
    assert max(s.active for s in samples) <= limit, [s.active for s in samples]
    # The burst met the limit: runs waited while the limit's worth were active.
    assert any(s.active == limit and s.waiting > 0 for s in samples)
    assert max(s.processes for s in samples) <= bound, [s.processes for s in samples]


def test_a_worker_restart_keeps_the_limit_and_the_pause_the_team_set(stack: SessionStack) -> None:
    worker_pid(stack)
    before = read_pool()
    try:
        update_pool(concurrency_limit=7, is_paused=True)
        stack.stop_worker()
        stack.start_worker()
        after = read_pool()
        assert (after.concurrency_limit, after.is_paused) == (7, True)
        assert stack.worker is not None and stack.worker.pid is not None
        pid = stack.worker.pid
        poll(
            lambda: worker_status(stack, pid).get("runs_at_once") == 7,
            60,
            "the worker to take the pool's limit",
        )
    finally:
        update_pool(concurrency_limit=before.concurrency_limit, is_paused=before.is_paused)


def test_the_setting_gives_a_new_pool_or_one_without_a_limit_its_limit_and_zero_gives_none(
    stack: SessionStack,
) -> None:
    from prefect.exceptions import ObjectNotFound

    from infra.serving import PoolSetup, ensure_work_pool
    from infra.warm_worker import WarmProcessWorker

    def ensure(name: str, concurrency: int) -> PoolSetup:
        return prefect(lambda client: ensure_work_pool(client, name, concurrency))

    tag = uuid.uuid4().hex[:8]
    name, unlimited = f"limit-test-{tag}", f"limit-test-none-{tag}"
    try:
        new = ensure(name, 3)
        assert (new.created, new.concurrency_limit, new.limit_source) == (True, 3, "setting")
        pool = read_pool(name)
        assert (pool.concurrency_limit, pool.is_paused, pool.type) == (3, False, WarmProcessWorker.type)

        update_pool(name, concurrency_limit=None)  # `prefect work-pool clear-concurrency-limit`
        again = ensure(name, 5)
        assert (again.created, again.concurrency_limit, again.limit_source) == (False, 5, "setting")
        assert read_pool(name).concurrency_limit == 5

        update_pool(name, concurrency_limit=None)
        zero = ensure(name, 0)
        assert (zero.concurrency_limit, zero.limit_source) == (None, "none")
        assert read_pool(name).concurrency_limit is None

        update_pool(name, concurrency_limit=2, is_paused=True)
        kept = ensure(name, 5)
        assert (kept.concurrency_limit, kept.limit_source, kept.paused) == (2, "prefect", True)
        pool = read_pool(name)
        assert (pool.concurrency_limit, pool.is_paused) == (2, True)
        assert any("paused" in m for m in kept.messages)

        none = ensure(unlimited, 0)
        assert (none.created, none.concurrency_limit, none.limit_source) == (True, None, "none")
        assert read_pool(unlimited).concurrency_limit is None
    finally:
        for pool_name in (name, unlimited):
            with contextlib.suppress(ObjectNotFound):  # a failed step may have left it uncreated
                delete_pool(pool_name)


# -- a claim a dead worker left (issue 23, point 3) ------------------------------------------------


def claim_as_a_worker_that_dies(run_id: str, worker: str) -> None:
    """Leave in Prefect what a worker killed between claiming a run and starting its process leaves:
    the run Pending then Submitting, labelled with that worker, no infrastructure pid, and the
    worker's heartbeats stopped (one heartbeat promising another each second: offline 3 s later)."""
    from prefect.states import Pending

    async def claim(client: PrefectClient) -> None:
        await client.send_worker_heartbeat(POOL, worker, heartbeat_interval_seconds=1)
        await client.set_flow_run_state(run_id, Pending(), force=True)
        await client.set_flow_run_state(run_id, Pending(name="Submitting"), force=True)
        await client.update_flow_run_labels(run_id, {"prefect.worker.name": worker})

    prefect(claim)


def test_a_run_claimed_by_a_worker_that_died_before_starting_it_is_run_once_by_a_live_one(
    stack: SessionStack, topics: dict[str, str]
) -> None:
    worker_pid(stack)
    event = model_event("claimed-by-the-dead")
    publisher = stack.publisher(topics["AIMS_EVENTS_TOPIC"])
    with stack.pool_paused(), stack.router(topics):
        publisher.publish(event)
        [run] = stack.wait_for_runs([event.dedup_key], timeout=60)
        claim_as_a_worker_that_dies(run.id, "killed-worker")
    publisher.close()

    [done] = stack.wait_for_runs([event.dedup_key], states={"Completed"}, timeout=240)
    assert done.id == run.id, "the same run, not a second one"
    history = prefect(lambda client: client.read_flow_run_states(run.id))
    assert any("'killed-worker'" in (s.message or "") and s.type.value == "SCHEDULED" for s in history), [
        (s.name, s.message) for s in history
    ]
    with stack.register().reader() as uow:
        evidence = [e for e in uow.evidence.find() if e.event_key == event.dedup_key]
    assert len(evidence) == 1, "its effect recorded once"


def heartbeats(run_id: str) -> int:
    """The heartbeat events of this run that Prefect has stored."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    only = EventFilter(
        event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
        resource=EventResourceFilter(id=[f"prefect.flow-run.{run_id}"]),
    )
    return len(prefect(lambda client: client.read_events(filter=only, limit=5)).events)


def test_a_run_whose_process_died_with_its_worker_is_crashed_by_prefect_and_run_again_once(
    stack: SessionStack, topics: dict[str, str], tmp_path: Path
) -> None:
    """A pod killed mid-run: the worker and the run's process die together, nobody reports the run.
    Its replacement comes with a new setting (a rolling update of the workers' configuration), so it
    brings the automation up to date while Prefect is waiting on the dead run's next heartbeat."""
    import time

    worker_pid(stack)
    dataset = f"pod-{uuid.uuid4().hex[:6]}"
    with_suite_of(stack, dataset)
    event = data_change(dataset, "1", write_loans(tmp_path / "loans.csv"))
    run = routed(stack, topics, event, "Running")
    process = infrastructure_pid(stack, run.id)
    # Held still from here, so that it cannot finish before the "pod" goes; let go a moment at a
    # time until Prefect has its first heartbeat (sent once it runs), the one the automation waits on.
    os.kill(process, signal.SIGSTOP)

    def heard() -> bool | None:
        if heartbeats(run.id):
            return True
        os.kill(process, signal.SIGCONT)
        time.sleep(0.3)
        os.kill(process, signal.SIGSTOP)
        return None

    poll(heard, 90, "the run's first heartbeat in Prefect")
    # The whole pod: the worker's process group holds the worker, its spares and the run's process.
    assert stack.worker is not None and stack.worker.pid is not None
    os.killpg(os.getpgid(stack.worker.pid), signal.SIGKILL)
    worker = stack.worker
    # Both reaped before the replacement starts: a worker not yet reaped still looks alive to it.
    poll(lambda: not (exists(process) or worker.alive()), 10, "the run's process gone with its worker")
    changed = int(WORKER_SETTINGS["AIMS_FLOW_UNRESPONSIVE_AFTER_SECONDS"]) + 15
    # The pod's replacement. It stays up with this setting for later tests; any of them that starts the
    # session's worker again brings the automation back to WORKER_SETTINGS, as one more update.
    stack.ensure_worker(AIMS_FLOW_UNRESPONSIVE_AFTER_SECONDS=str(changed))
    automation = prefect(lambda client: client.read_automations_by_name(AUTOMATION_NAME))
    assert [a.actions[0].message for a in automation] == [crash_message(changed)], "updated by it"

    [done] = stack.wait_for_runs([event.dedup_key], states={"Completed"}, timeout=300)
    assert done.id == run.id, "the same run, not a second one"
    history = [(s.type.value, s.message or "") for s in prefect(lambda c: c.read_flow_run_states(run.id))]
    assert any(t == "CRASHED" and m.startswith("No heartbeat") for t, m in history), history
    assert any(t == "SCHEDULED" and m.startswith("Scheduled again by worker") for t, m in history), history
    with stack.register().reader() as uow:
        versions = uow.dataset_versions.find(dataset=dataset)
        evidence = [e for e in uow.evidence.find() if e.event_key == event.dedup_key]
    assert [v.version for v in versions] == ["1"] and versions[0].status != "superseded"
    assert len(evidence) == 1, "its effect recorded once"
