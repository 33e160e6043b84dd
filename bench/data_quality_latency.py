"""Parts 2 and 3 of the data-quality benchmark (bench.data_quality): a data-changed event through the
real router and worker to its recorded verdict, and which runs paid the GX import.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import REPO, Progress, Teardown, fmt, load_average, parse_time
from bench.data_quality_validation import DATASET, median
from events.kafka_clients import KafkaConnection, KafkaSecurity

if TYPE_CHECKING:
    from connectors.register.store import Register
    from infra.processes import ManagedProcess
    from schemas.events import DataChangedEvent


@dataclass
class Stack(Teardown):
    """What the latency phase started, stopped in reverse order."""

    state: Path
    say: Progress
    bootstrap: str = ""
    api_url: str = ""
    # The client security: the settings' for an existing cluster, none for the benchmark's own broker.
    security: KafkaSecurity = field(default_factory=KafkaSecurity)

    @property
    def kafka(self) -> KafkaConnection:
        return KafkaConnection(self.bootstrap, self.security)

    def __post_init__(self) -> None:
        Teardown.__init__(self, self.say)  # started(), close(): stopped in reverse order


def data_dir(state: Path) -> Path:
    """Where the benchmark's CSV files go: beside the state folder, never in it (issue 19)."""
    return state.parent / f"{state.name}-data"


def prepare_state(state: Path) -> Path:
    """A fresh state folder with copies of suites/ and of the policy, its coalescing window 0."""
    import yaml

    from schemas.policy_file import load_policy
    from schemas.settings import load_settings

    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    shutil.copytree(REPO / "suites", state / "suites")
    source = load_settings().policy_file
    document = yaml.safe_load((source if source.is_absolute() else REPO / source).read_text())
    document.setdefault("data_quality", {})["coalesce_seconds"] = 0
    shutil.rmtree(data_dir(state), ignore_errors=True)
    data_dir(state).mkdir(parents=True)
    document.setdefault("data_sources", {})["bench"] = {"kind": "files", "roots": [str(data_dir(state))]}
    policy = state / "aims-policy.yaml"
    policy.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    checked = load_policy(policy).data_quality
    if checked is None or checked.coalesce_seconds != 0:
        raise RuntimeError(f"{policy}: the copied policy does not set coalesce_seconds to 0")
    return policy


def stack_env(stack: Stack, policy: Path, gx_spares: int | None) -> None:
    """This process's environment, which the worker inherits: set before Prefect is first imported."""
    from infra.prefect_server import prefect_client_env

    if "prefect" in sys.modules:
        raise RuntimeError("Prefect was imported before its settings were in the environment")
    os.environ.update(prefect_client_env(stack.state, stack.api_url))
    os.environ.update(
        {
            "AIMS_STATE_DIR": str(stack.state),
            "AIMS_POLICY_FILE": str(policy),
            "AIMS_SUITES_DIR": str(stack.state / "suites"),
            "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
        }
    )
    if gx_spares is not None:
        os.environ["AIMS_WARM_GX_PROCESSES"] = str(gx_spares)


def start_services(stack: Stack, bootstrap: str | None) -> None:
    from infra.kafka_broker import KafkaBroker
    from infra.prefect_server import PrefectServer

    if bootstrap:
        stack.bootstrap = bootstrap
        from schemas.settings import load_settings

        stack.security = KafkaSecurity.from_settings(load_settings())
        stack.say(f"Kafka: using the existing cluster at {bootstrap}")
    else:
        # The router benchmark's copy of the jars: downloaded once for both.
        broker = KafkaBroker(stack.state, libs_dir=stack.state.parent.parent / "kafka" / "libs")
        stack.bootstrap = broker.start()
        stack.started("the Kafka broker", broker.stop)
        stack.say(f"Kafka: broker ready at {stack.bootstrap}")
    server = PrefectServer(stack.state)
    stack.api_url = server.start()
    stack.started("the Prefect server", server.stop)
    stack.say(f"Prefect server (SQLite) ready at {stack.api_url}")


def start_worker(stack: Stack) -> ManagedProcess:
    """`aims worker`; returns once its deployments exist and every spare (GX ones too) is warm."""
    from connectors.prefect_api import PrefectApi
    from events.topics import ensure_topics, topic_specs
    from infra.deployments import served, worker_status_path
    from infra.processes import ManagedProcess, wait_until
    from infra.stack import aims_command
    from schemas.settings import AimsSettings

    ensure_topics(stack.kafka, topic_specs(AimsSettings(state_dir=stack.state)))  # where flows publish
    env = dict(os.environ)
    env.pop("PREFECT_CLIENT_MAX_RETRIES", None)  # the worker keeps Prefect's retries, as in the stack
    worker = ManagedProcess("worker", aims_command("worker"), worker_log(stack.state), env)
    worker.start()
    stack.started("the worker", lambda: worker.stop(30))
    gx_spares = expected_gx_spares()
    api = PrefectApi(stack.api_url)

    def warm() -> bool:
        # Measured from a worker with every spare warm: the latency of a quiet stack, not a cold start.
        try:
            status = json.loads(worker_status_path(stack.state, worker.pid or 0).read_text())
        except (OSError, ValueError):
            return False
        if status.get("ready", 0) < status.get("size", 1):
            return False
        return len(warm_lines(stack.state, "aims-warm-ready", profile="gx")) >= gx_spares and served(api)

    try:
        waited = wait_until(warm, 240, "the worker and its spares", worker)
    finally:
        api.close()
    stack.say(f"worker ready after {waited:.1f}s, GX-warm spares: {gx_spares}")
    return worker


def expected_gx_spares() -> int:
    from infra.warm_worker import gx_spares_from_env

    return gx_spares_from_env()


def worker_log(state: Path) -> Path:
    return state / "logs" / "worker.log"


def warm_lines(state: Path, prefix: str, **match: Any) -> list[dict[str, Any]]:
    """The JSON lines `infra.warm_engine` printed into the worker's log, filtered on `match`."""
    try:
        text = worker_log(state).read_text(errors="replace")
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        if not line.startswith(prefix + " "):
            continue
        with contextlib.suppress(ValueError):
            record = json.loads(line[len(prefix) + 1 :])
            if all(record.get(k) == v for k, v in match.items()):
                found.append(record)
    return found


@contextlib.contextmanager
def running_router(stack: Stack, tag: str) -> Iterator[tuple[Any, str]]:
    """An in-process router (PrefectLauncher, RegisterReceipts) with coalescing off, on a thread."""
    from connectors.prefect_runs import PrefectLauncher
    from connectors.register.receipts import RegisterReceipts
    from events.router import Router
    from events.topics import ensure_topics, topic_specs
    from schemas.settings import AimsSettings

    settings = AimsSettings(
        state_dir=stack.state,
        events_topic=f"bench.dq.{tag}",
        dead_letter_topic=f"bench.dq.{tag}.dlq",
        consumer_group=f"bench-dq-{tag}",
    )
    ensure_topics(stack.kafka, topic_specs(settings))
    receipts = RegisterReceipts(open_register(stack.state), actor="router:bench")
    router = Router(
        settings,
        stack.kafka,
        PrefectLauncher,
        heartbeat_dir=stack.state / "routers",
        receipts=receipts,
        name="bench-dq",
        coalesce_seconds=0.0,  # a window only adds itself to every latency
    )
    thread = threading.Thread(target=router.run, name="bench-dq-router", daemon=True)
    thread.start()
    try:
        if not router.wait_ready(90):
            raise TimeoutError("the router got no partitions within 90 s")
        yield router, settings.events_topic
    finally:
        router.stop()
        thread.join(60)


def open_register(state: Path) -> Register:
    from connectors.register import open_register as open_
    from schemas.settings import AimsSettings

    return open_(AimsSettings(state_dir=state))


def demo_rows(path: Path) -> None:
    """500 loan applications that the repository's suite passes (as `aims demo` writes them)."""
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["applicant_id", "income", "amount", "term_months", "approved"])
        for i in range(500):
            writer.writerow([i, 20_000 + 137 * i, 1_000 + 53 * i, 12 + 12 * (i % 5), i % 3 != 0])


def data_event(stack: Stack, tag: str, n: int) -> DataChangedEvent:
    from schemas.events import DataChangedEvent

    path = data_dir(stack.state) / f"{DATASET}-{n:03d}.csv"
    demo_rows(path)
    return DataChangedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": f"bench-dq-{tag}-{n:03d}",
            "source": "urn:bench:data-quality",  # an outside producer: unsigned
            "data": {
                "dataset_id": DATASET,
                "version": f"bench-{tag}-{n:03d}",
                "change_kind": "appended",
                "source": "bench",
                "path": path.name,
                "row_count": 500,
            },
        }
    )


@dataclass
class Sample:
    """One event's way to its verdict (epoch seconds)."""

    key: str
    result_id: str
    produced: float
    recorded: float
    verdict: str
    created: float | None = None
    running: float | None = None
    run_id: str | None = None
    engine: dict[str, Any] = field(default_factory=dict)

    @property
    def latency(self) -> float:
        return self.recorded - self.produced


def wait_recorded(register: Register, result_id: str, timeout: float, router: Any) -> tuple[float, str]:
    """When the DataQualityResult row became visible (polled every 0.1 s), and its verdict."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with register.reader() as uow:
            row = uow.data_quality.get(result_id)
        if row is not None:
            return time.time(), row.verdict
        if router.stats.last_error:
            raise RuntimeError(f"the router failed: {router.stats.last_error}")
        time.sleep(0.1)
    raise TimeoutError(f"no data-quality result {result_id} within {timeout:.0f}s")


def produce_events(stack: Stack, args: argparse.Namespace, tag: str) -> list[Sample]:
    from events.producer import EventPublisher

    register = open_register(stack.state)
    samples: list[Sample] = []
    with running_router(stack, tag) as (router, topic):
        publisher = EventPublisher(stack.kafka, topic, signing_key=None)
        try:
            for n in range(args.events):
                event = data_event(stack, tag, n)
                result_id = f"{event.data.dataset_id}@{event.data.version}"
                produced = time.time()
                publisher.publish(event)
                recorded, verdict = wait_recorded(register, result_id, 300, router)
                samples.append(Sample(event.dedup_key, result_id, produced, recorded, verdict))
                took = recorded - produced
                stack.say(f"  event {n + 1}/{args.events}: verdict {verdict!r} after {took:.2f}s")
                if n + 1 < args.events:
                    time.sleep(args.spacing)
        finally:
            publisher.close()
    return samples


def attach_runs(stack: Stack, samples: list[Sample]) -> None:
    """Each sample's flow run (by idempotency key), its first Running, and what its process said."""
    from connectors.prefect_api import PrefectApi

    api = PrefectApi(stack.api_url, timeout=30)
    try:
        runs = {r.idempotency_key: r for r in api.runs_for_keys([s.key for s in samples])}
        engine = engine_reports(stack.state, {r.id for r in runs.values()})
        for sample in samples:
            run = runs.get(sample.key)
            if run is None:
                continue  # a key the router derives differently: the split shows "–"
            sample.run_id = run.id
            sample.created = parse_time(run.created)
            sample.running = first_running(api, run.id)
            sample.engine = engine.get(run.id, {})
    finally:
        api.close()


def engine_reports(state: Path, run_ids: set[str], timeout: float = 60) -> dict[str, dict[str, Any]]:
    """What each run's process said; it says so after the run, which goes on after the verdict."""
    deadline = time.monotonic() + timeout
    while True:
        found = {r["flow_run_id"]: r for r in warm_lines(state, "aims-warm-run")}
        if run_ids <= found.keys() or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def first_running(api: Any, run_id: str) -> float | None:
    response = api.request("GET", "/flow_run_states/", params={"flow_run_id": run_id})
    stamps = [parse_time(s["timestamp"]) for s in response.json() if s["type"] == "RUNNING"]
    return min(stamps, default=None)


def measure_latency(root: Path, args: argparse.Namespace, say: Progress) -> dict[str, Any]:
    from schemas.settings import load_settings

    stack = Stack(state=root / "stack", say=say)
    tag = time.strftime("%Y%m%d%H%M%S")
    try:
        policy = prepare_state(stack.state)
        start_services(stack, load_settings().kafka_bootstrap_servers)
        stack_env(stack, policy, args.gx_spares)
        worker = start_worker(stack)
        say(f"LATENCY: {args.events} data-changed events, each {args.spacing:g}s after the last verdict…")
        load = [load_average()]
        samples = produce_events(stack, args, tag)
        load.append(load_average())
        if not worker.alive():
            raise RuntimeError("the worker died during the benchmark")
        attach_runs(stack, samples)
    finally:
        stack.close()
    return latency_figures(samples, load, expected_gx_spares())


def latency_figures(samples: list[Sample], load: list[float], gx_spares: int) -> dict[str, Any]:
    def gaps(start: str, end: str, among: list[Sample]) -> list[float]:
        pairs = [(getattr(s, start), getattr(s, end)) for s in among]
        return [b - a for a, b in pairs if a is not None and b is not None]

    paid = [s for s in samples if s.engine.get("gx_imported_in_run")]
    preloaded = [s for s in samples if s.engine.get("gx_preloaded")]
    return {
        "events": len(samples),
        "verdicts": sorted({s.verdict for s in samples}),
        "gx_spares": gx_spares,
        "load": load,
        "latency_p50_s": median([s.latency for s in samples]),
        "latency_max_s": max((s.latency for s in samples), default=float("nan")),
        "created_p50_s": median(gaps("produced", "created", samples)),
        "running_p50_s": median(gaps("created", "running", samples)),
        "recorded_p50_s": median(gaps("running", "recorded", samples)),
        "reported_runs": sum(1 for s in samples if s.engine),
        "gx_paid_runs": len(paid),
        "gx_preloaded_runs": len(preloaded),
        "gx_import_p50_s": median([v for s in paid if (v := s.engine.get("gx_import_seconds")) is not None]),
        "paid_latency_p50_s": median([s.latency for s in paid]),
        "paid_recorded_p50_s": median(gaps("running", "recorded", paid)),
        "preloaded_latency_p50_s": median([s.latency for s in preloaded]),
        "preloaded_recorded_p50_s": median(gaps("running", "recorded", preloaded)),
        "per_event": [round(s.latency, 2) for s in samples],
        "per_event_gx": [_gx_mark(s) for s in samples],
    }


def _gx_mark(sample: Sample) -> str:
    if sample.engine.get("gx_preloaded"):
        return "preloaded"
    return "paid" if sample.engine.get("gx_imported_in_run") else "?"


def report_latency(r: dict[str, Any], spacing: float) -> None:
    print(
        f"LATENCY: produce data.changed → DataQualityResult recorded, {r['events']} events one at a time, "
        f"{spacing:g}s after each verdict; coalescing window 0 (policy copy with coalesce_seconds: 0 for the "
        f"worker, Router(coalesce_seconds=0) in-process); GX-warm spares: {r['gx_spares']} "
        f"(load {r['load'][0]}→{r['load'][1]})"
    )
    print(
        f"  p50 {fmt(r['latency_p50_s'], '.2f')} s, max "
        f"{fmt(r['latency_max_s'], '.2f')} s; verdicts {r['verdicts']}; "
        f"per event (s): {r['per_event']}"
    )
    print(
        f"  split (p50): produce → run created {fmt(r['created_p50_s'], '.2f')} s, created → Running "
        f"{fmt(r['running_p50_s'], '.2f')} s, Running → recorded {fmt(r['recorded_p50_s'], '.2f')} s"
    )
    print(
        f"GX IMPORT: GX imported in {r['gx_paid_runs']} of {r['reported_runs']} runs (preloaded in a GX-warm "
        f"spare in {r['gx_preloaded_runs']}); per event: {r['per_event_gx']}"
    )
    print(
        f"  runs that paid the import: import p50 {fmt(r['gx_import_p50_s'], '.2f')} s, latency p50 "
        f"{fmt(r['paid_latency_p50_s'], '.2f')} s (Running → "
        f"recorded {fmt(r['paid_recorded_p50_s'], '.2f')} s); "
        "runs in a GX-warm spare: latency p50 "
        f"{fmt(r['preloaded_latency_p50_s'], '.2f')} s (Running → recorded "
        f"{fmt(r['preloaded_recorded_p50_s'], '.2f')} s)"
    )
