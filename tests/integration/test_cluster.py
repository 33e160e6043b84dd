"""A replicated Kafka cluster: three KRaft nodes, topics with three copies and two in sync.

The production shape in small (issue 23): a node killed with SIGKILL while events arrive and a router
leaving the group lose nothing and double nothing; nor do workers on one work pool when one is
killed and another joins. Routers and workers are processes, as `aims router` and `aims worker` run
them, on the cluster and the session's Prefect server.

Two tests, because executing 500 runs would take most of the CI's budget (each run uses up a
flow-run process that imported Prefect, ~4 s of CPU on two cores): 500 events through two routers
count the flow run each event starts (no worker, as in test_failures.py); 24 events through two
workers, one of them killed and a third joining, count the runs executed and what they wrote.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.codec import encode_structured
from events.kafka_clients import make_admin
from events.kafka_security import without_kafka_security
from events.topics import ensure_topics, topic_specs
from infra.kafka_broker import KafkaBroker
from infra.processes import ManagedProcess
from infra.warm_engine import RUN_LINE
from infra.worker_status import worker_ready
from schemas.settings import AimsSettings
from tests.factories import incident_event, mixed_events, model_event
from tests.kafka_reads import KafkaReads
from tests.support import SessionStack, poll

REPO = Path(__file__).resolve().parents[2]
EVENTS = 500
WORKER_EVENTS = 24


class Cluster(KafkaReads):
    """The cluster as the tests read it back (committed offsets, records) and publish to it."""

    def __init__(self, broker: KafkaBroker) -> None:
        self.broker = broker


@pytest.fixture(scope="module")
def cluster(stack: SessionStack) -> Iterator[Cluster]:
    broker = KafkaBroker(
        stack.state / "cluster",
        libs_dir=REPO / ".aims" / "kafka" / "libs",
        security=stack.broker.security,  # as the session's broker: SASL_SSL unless asked otherwise
        nodes=3,
    )
    try:
        broker.start()
        yield Cluster(broker)
    finally:
        broker.stop()


@pytest.fixture
def no_worker(stack: SessionStack) -> Iterator[None]:
    # The effect counted is the run each event starts; executing 500 of them would only take time.
    with stack.pool_paused():
        yield


@pytest.fixture
def names(cluster: Cluster) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {
        "AIMS_EVENTS_TOPIC": f"events.cluster-{tag}",
        "AIMS_DEAD_LETTER_TOPIC": f"dlq.cluster-{tag}",
        "AIMS_AUDIT_ANCHORS_TOPIC": f"anchors.cluster-{tag}",
        "AIMS_CONSUMER_GROUP": f"router.cluster-{tag}",
    }


def _replicated(stack: SessionStack, names: dict[str, str]) -> AimsSettings:
    """The test's topics as `aims up --brokers 3` makes them: three copies, two in sync."""
    return stack.settings(
        names,
        audit_anchors_topic=names["AIMS_AUDIT_ANCHORS_TOPIC"],
        replication_factor=3,
        min_insync_replicas=2,
    )


def _on_cluster(
    stack: SessionStack, cluster: Cluster, names: dict[str, str], command: str, name: str
) -> ManagedProcess:
    """`aims <command>` on the cluster: its addresses and its own user and CA, not the session broker's."""
    env = without_kafka_security(stack.env(AIMS_STATE_DIR=str(stack.state), **names))
    env.update(cluster.broker.client_env())
    env.update(AIMS_REPLICATION_FACTOR="3", AIMS_MIN_INSYNC_REPLICAS="2")
    # No data check runs here: a worker keeps no process importing Great Expectations (5-12 s of CPU).
    env.update(AIMS_WARM_GX_PROCESSES="0")
    args = ["--name", name] if command == "router" else []
    proc = ManagedProcess(
        f"{command}-{name}",
        [sys.executable, "-m", "aims", command, *args],
        stack.state / "logs" / f"{command}-{name}-{names['AIMS_CONSUMER_GROUP']}.log",
        env,
    )
    proc.start()
    return proc


def _router(stack: SessionStack, cluster: Cluster, names: dict[str, str], name: str) -> ManagedProcess:
    return _on_cluster(stack, cluster, names, "router", name)


def _worker(stack: SessionStack, cluster: Cluster, names: dict[str, str], name: str) -> ManagedProcess:
    """`aims worker` on the session's work pool, its flows publishing to the cluster; started when ready."""
    worker = _on_cluster(stack, cluster, names, "worker", name)
    poll(lambda: worker_ready(stack.state, worker.pid) or not worker.alive(), 180, f"worker {name} ready")
    assert worker.alive(), worker.failure()
    return worker


def _executed(worker: ManagedProcess) -> list[str]:
    """The runs this worker's flow-run processes executed: one `aims-warm-run` line after each."""
    prefix = RUN_LINE + " "
    lines = worker.log_path.read_text(errors="replace").splitlines()
    return [json.loads(line[len(prefix) :])["flow_run_id"] for line in lines if line.startswith(prefix)]


def test_topics_are_created_with_three_copies_two_in_sync(
    stack: SessionStack, cluster: Cluster, names: dict[str, str]
) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType

    settings = _replicated(stack, names)
    assert sorted(ensure_topics(cluster.kafka, topic_specs(settings))) == sorted(
        names[n] for n in ("AIMS_EVENTS_TOPIC", "AIMS_DEAD_LETTER_TOPIC", "AIMS_AUDIT_ANCHORS_TOPIC")
    )
    admin = make_admin(cluster.kafka)
    try:
        wanted = [settings.events_topic, settings.audit_anchors_topic]
        # Created is not yet known to every node: described once the metadata has reached them.
        described = poll(
            lambda: (
                (found := admin.describe_topics(wanted))
                and all(t["error_code"] == 0 for t in found)
                and found
            ),
            30,
            "the new topics' metadata",
        )
        for topic in described:
            assert {len(p["replica_nodes"]) for p in topic["partitions"]} == {3}, topic
            assert {len(p["isr_nodes"]) for p in topic["partitions"]} == {3}, topic
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, settings.events_topic)])
        assert configs["topic"][settings.events_topic]["min.insync.replicas"]["value"] == "2", configs
    finally:
        admin.close()


def test_runs_on_two_workers_are_each_executed_once_when_one_is_killed_and_another_joins(
    stack: SessionStack, cluster: Cluster, names: dict[str, str]
) -> None:
    ensure_topics(cluster.kafka, topic_specs(_replicated(stack, names)))
    # Onboardings and incidents: flows that run in a plain flow-run process (no data check importing
    # Great Expectations), each with its own effect in the register.
    events = [
        model_event(f"pool-{i % 5}", uuid.uuid4().hex[:8]) if i % 2 else incident_event(f"pool-{i % 5}")
        for i in range(WORKER_EVENTS)
    ]
    keys = [e.dedup_key for e in events]
    # The session's worker stays; a second one on the same pool is killed, a third joins.
    stack.ensure_worker()
    assert stack.worker is not None
    workers = {"stays": stack.worker, "killed": _worker(stack, cluster, names, "killed")}
    router = _router(stack, cluster, names, "for-workers")
    api = stack.api()
    try:
        poll(lambda: stack.heartbeat("for-workers").get("assigned"), 120, "the router holding partitions")
        cluster.publish_raw(
            names["AIMS_EVENTS_TOPIC"], [(e.key.encode(), *encode_structured(e)) for e in events]
        )
        poll(
            lambda: sum(r.state == "Completed" for r in api.runs_for_keys(keys)) >= WORKER_EVENTS // 4,
            300,
            "a quarter of the runs completed",
        )
        # Killed outright: runs it handed to flow-run processes finish there (they report to Prefect
        # themselves), its waiting processes see their pipe close and exit.
        killed = workers["killed"].proc
        assert killed is not None
        killed.send_signal(signal.SIGKILL)  # the worker alone, not its process group
        killed.wait(10)
        workers["joins"] = _worker(stack, cluster, names, "joins")
        runs = stack.wait_for_runs(keys, states={"Completed"}, timeout=600)
        ids = {r.id for r in runs}
        assert len(runs) == WORKER_EVENTS, "one run per event"

        def executed() -> Counter[str] | None:
            # A process reports after its run's last state (and the dashboard rebuilt after it).
            ran = Counter(run for worker in workers.values() for run in _executed(worker) if run in ids)
            return ran if set(ran) == ids else None

        ran = poll(executed, 60, "every run's process reporting it")
        assert not {r: n for r, n in ran.items() if n > 1}, "no run was executed twice"
        shares = {name: len(ids & set(_executed(worker))) for name, worker in workers.items()}
        assert shares["killed"] > 0 and shares["joins"] > 0, shares
        with stack.register().reader() as uow:
            recorded = Counter(e.event_key for e in uow.evidence.find() if e.event_key in set(keys))
        assert recorded == dict.fromkeys(keys, 1), "each event's evidence recorded once"
    finally:
        router.stop()
        for name in ("killed", "joins"):
            if name in workers:
                workers[name].stop(timeout=60)
        api.close()
        stack.discard_runs(keys)


def test_500_events_through_a_killed_node_and_a_leaving_router_each_start_exactly_one_run(
    stack: SessionStack, cluster: Cluster, names: dict[str, str], no_worker: None
) -> None:
    ensure_topics(cluster.kafka, topic_specs(_replicated(stack, names)))
    group = names["AIMS_CONSUMER_GROUP"]
    events = mixed_events(EVENTS, subjects=60)
    keys = [e.dedup_key for e in events]
    records = [(e.key.encode(), *encode_structured(e)) for e in events]
    routers = {name: _router(stack, cluster, names, name) for name in ("stays", "leaves")}
    api = stack.api()
    try:
        poll(
            lambda: all(stack.heartbeat(n).get("assigned") for n in routers),
            120,
            "both routers holding partitions",
        )
        # Published in steps while a node dies and a router leaves: producers wait for both copies
        # that remain in sync (acks=all), and idempotence keeps a retried send from being doubled.
        first, rest = records[:150], records[150:]
        cluster.publish_raw(names["AIMS_EVENTS_TOPIC"], first)
        poll(lambda: len(api.runs_for_keys(keys)) >= 50, 180, "both routers routing")
        cluster.broker.kill(2)
        publisher = threading.Thread(
            target=cluster.publish_raw, args=(names["AIMS_EVENTS_TOPIC"], rest), daemon=True
        )
        publisher.start()
        poll(lambda: len(api.runs_for_keys(keys)) >= 250, 300, "routing with a node down")
        shares = [int(stack.heartbeat(n).get("routed", 0)) for n in routers]
        assert all(share > 0 for share in shares), f"both routers took a share: {shares}"
        assert routers["leaves"].stop(timeout=60) == 0, routers["leaves"].failure()
        publisher.join(120)
        assert not publisher.is_alive(), "the events were all acknowledged with a node down"

        stack.wait_for_runs(keys, timeout=400)
        # Every record once in the topic and every offset committed: a doubled record would show
        # here as one offset too many, a lost one as a run missing.
        poll(lambda: cluster.committed(group) == EVENTS, 180, f"{EVENTS} offsets committed")
        assert cluster.end_offsets(names["AIMS_EVENTS_TOPIC"]) == EVENTS
        runs = api.runs_for_keys(keys)
        counts: dict[str | None, int] = {}
        for run in runs:
            counts[run.idempotency_key] = counts.get(run.idempotency_key, 0) + 1
        assert set(counts) == set(keys), "every event has a flow run"
        assert not {k: n for k, n in counts.items() if n > 1}, "no event has two runs"
        assert routers["stays"].alive(), routers["stays"].failure()
    finally:
        for router in routers.values():
            router.stop()
        api.close()
        cluster.broker.restart_node(2)
        stack.discard_runs(keys)
