"""The fault benchmark's parts (bench.faults): the broker, Prefect server and worker it starts, one
phase's topic, routers and events, and the pure counting of lost and doubled events.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import REPO, Progress, Teardown

if TYPE_CHECKING:
    from pydantic import SecretStr

    from connectors.prefect_api import PrefectApi
    from events.kafka_clients import KafkaConnection
    from infra.kafka_broker import KafkaBroker
    from infra.prefect_server import PrefectServer
    from infra.processes import ManagedProcess
    from schemas.events import AimsEvent
    from schemas.settings import AimsSettings


# Prefect state types: a run in one of these holds no slot and no process any more. PAUSED too: a
# suspended run has left its process (none of the three flows here suspends).
SETTLED = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED", "PAUSED")


UNSTARTED = ("SCHEDULED",)  # Late and AwaitingRetry are Scheduled too


ACTIVE = ("PENDING", "RUNNING")  # what the work pool's limit counts


# Lag 0 while runs are missing: the offsets passed events whose run was never created. Give Prefect's
# reads this long to show late runs before calling them lost.
LOST_GRACE = 30.0


MB = 1024 * 1024


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


@dataclass
class Stack(Teardown):
    """Broker, Prefect server and worker for the whole run; stopped in reverse order."""

    state: Path
    args: argparse.Namespace
    say: Progress
    bootstrap: str = ""
    api_url: str = ""
    broker: KafkaBroker | None = None
    server: PrefectServer | None = None  # kept: the soak kills it and starts it again on its port
    worker: ManagedProcess | None = None
    pool_limit: int | None = None
    idle_processes: int | None = None  # the worker's tree before the first phase: itself and its spares
    env: dict[str, str] = field(default_factory=dict)
    # The installation's key: the demo's events come from an urn:aims: source, which the routers
    # dead-letter unless signed with it (schemas.signing).
    signing_key: SecretStr | None = None

    def __post_init__(self) -> None:
        Teardown.__init__(self, self.say)  # started(), close(): stopped in reverse order

    def api(self) -> PrefectApi:
        from connectors.prefect_api import PrefectApi

        return PrefectApi(self.api_url, timeout=30)

    @property
    def kafka(self) -> KafkaConnection:
        """The benchmark's own (plaintext) broker, as every client here reaches it."""
        if self.broker is None:
            raise RuntimeError("the broker is not started")
        return self.broker.connection

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
    from events.kafka_security import without_kafka_security
    from events.topics import ensure_topics, topic_specs
    from infra.kafka_broker import KafkaBroker
    from infra.postgres import PostgresServer
    from infra.prefect_server import PrefectServer, prefect_client_env
    from infra.stack_state import ensure_audit_key, ensure_signing_key
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
    stack.server = server
    stack.started("the Prefect server", server.stop)
    stack.api_url = server.start()
    say(f"Prefect server ({stack.args.backend}) ready at {stack.api_url}")

    # Its processes reach this plaintext broker, whatever client security the environment names.
    env = without_kafka_security(os.environ)
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
    # As infra.stack does: every process signs and verifies the system's own events with one key, and
    # chains the register's audit log with one key (each made in the state folder).
    stack.signing_key = settings.event_signing_key or ensure_signing_key(state)
    env["AIMS_EVENT_SIGNING_KEY"] = stack.signing_key.get_secret_value()
    env["AIMS_AUDIT_KEY"] = (settings.audit_key or ensure_audit_key(state)).get_secret_value()
    stack.env = env
    # Flows publish their outcome events on the default topic, as in the stack; no router reads it
    # here, so the runs counted are exactly the ones the phases' events started.
    ensure_topics(stack.kafka, topic_specs(AimsSettings(state_dir=state)))
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


def new_phase(
    stack: Stack,
    name: str,
    base: list[AimsEvent],
    tag: str,
    *,
    prefix: str = "faults",
    count: int | None = None,
) -> Phase:
    """A fresh topic and consumer group, and `count` events (--events by default) over --subjects
    subjects; `prefix` names the benchmark in the topic and group, so runs of several never mix."""
    from events.topics import ensure_topics, topic_specs
    from schemas.settings import AimsSettings

    topic = f"bench.{prefix}.{tag}.{name}"
    settings = AimsSettings(
        state_dir=stack.state,
        events_topic=topic,
        dead_letter_topic=f"{topic}.dlq",
        consumer_group=f"bench-{prefix}-{tag}-{name}",
    )
    ensure_topics(stack.kafka, topic_specs(settings))
    total = stack.args.events if count is None else count
    events = make_events(base, total, f"{tag}-{name}", stack.args.subjects)
    return Phase(stack, name, events, settings)


def publish(phase: Phase) -> tuple[float, int]:
    """Send every event at once; (monotonic time of the first send, the topic's end offset total)."""
    from events.codec import encode_structured
    from events.kafka_clients import make_producer
    from schemas.signing import seal

    producer = make_producer(phase.stack.kafka, client_id=f"bench-faults-{phase.name}")
    try:
        # Signed as `aims demo` signs them (before the clock starts: the producer's work, not the send).
        key = phase.stack.signing_key
        encoded = [(e.key.encode(), *encode_structured(seal(e, key))) for e in phase.events]
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
