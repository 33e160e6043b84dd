"""A replicated Kafka cluster: three KRaft nodes, topics with three copies and two in sync.

The production shape in small (issue 23): a node killed with SIGKILL while events arrive and a router
leaving the group lose nothing and double nothing; nor do workers on one work pool when one is
killed and another joins. Routers and workers are processes, as `aims router` and `aims worker` run
them, on the cluster and the session's Prefect server.

The 500 events are data changes of four datasets (one per partition), coalesced as a platform's
bursts are: the routers stand the superseded runs down before they start and each dataset's last
check records them, so the two workers execute a handful of runs, not 500 (each run uses up a
flow-run process that imported Prefect, ~4 s of CPU on two cores; a data check imports Great
Expectations too). The workers' own failure is a test of its own: 12 onboardings and incidents
through two workers, one of them killed and a third joining, count the runs executed.
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
import yaml

from connectors.prefect_runs import SUPERSEDED_RECORDED as RECORDED
from events.codec import encode_structured
from events.kafka_clients import make_admin
from events.kafka_security import without_kafka_security
from events.topics import ensure_topics, topic_specs
from infra.kafka_broker import KafkaBroker
from infra.processes import ManagedProcess
from infra.warm_engine import RUN_LINE
from infra.worker_status import worker_ready
from schemas.settings import AimsSettings
from tests.factories import incident_event, model_event
from tests.integration.datasets import data_change, with_suite_of, write_loans
from tests.kafka_reads import KafkaReads
from tests.support import SessionStack, poll

REPO = Path(__file__).resolve().parents[2]
EVENTS = 500
# The coalescing window: a dataset's next change, routed up to 30 s after the one before (a node's
# death, a router leaving), still finds that one's run Scheduled, and stands it down.
WINDOW = 45
WORKER_EVENTS = 12


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


def one_per_partition(prefix: str, partitions: int) -> list[str]:
    """Dataset names whose events (keyed by the name) land one on each partition, as the producer's
    default partitioner places them (murmur2 of the key, as Kafka's Java client)."""
    from kafka.partitioner.default import murmur2

    found: dict[int, str] = {}
    for i in range(10_000):
        name = f"{prefix}-{i}"
        found.setdefault((murmur2(name.encode()) & 0x7FFFFFFF) % partitions, name)
        if len(found) == partitions:
            return [found[p] for p in range(partitions)]
    raise AssertionError(f"no names for all {partitions} partitions")


def _coalescing_policy(stack: SessionStack, folder: Path) -> Path:
    """The session's policy with a coalescing window: the routers start each data check that late."""
    policy = yaml.safe_load(Path(stack.env()["AIMS_POLICY_FILE"]).read_text())
    policy["data_quality"]["coalesce_seconds"] = WINDOW
    path = folder / "coalescing-policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


def _on_cluster(
    stack: SessionStack,
    cluster: Cluster,
    names: dict[str, str],
    command: str,
    name: str,
    **extra: str,
) -> ManagedProcess:
    """`aims <command>` on the cluster: its addresses and its own user and CA, not the session broker's."""
    # The session workers' settings too: workers of one pool with different ones would each bring
    # the pool's automation (infra.unresponsive) to theirs.
    env = without_kafka_security(stack.worker_env(AIMS_STATE_DIR=str(stack.state), **names, **extra))
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


def _router(
    stack: SessionStack, cluster: Cluster, names: dict[str, str], name: str, policy: Path | None = None
) -> ManagedProcess:
    extra = {"AIMS_POLICY_FILE": str(policy)} if policy is not None else {}
    return _on_cluster(stack, cluster, names, "router", name, **extra)


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


def test_500_changes_through_a_killed_node_a_leaving_router_and_two_workers_each_have_one_effect(
    stack: SessionStack, cluster: Cluster, names: dict[str, str], tmp_path: Path
) -> None:
    ensure_topics(cluster.kafka, topic_specs(_replicated(stack, names)))
    group = names["AIMS_CONSUMER_GROUP"]
    # One dataset per partition: each router has some, and each dataset's last change is one check.
    datasets = one_per_partition(f"cluster-{uuid.uuid4().hex[:6]}", stack.settings(names).events_partitions)
    for dataset in datasets:
        with_suite_of(stack, dataset)
    data = write_loans(tmp_path / "loans.csv")
    versions = EVENTS // len(datasets)
    # Interleaved, as a platform's changes arrive: version v of every dataset, then v + 1.
    events = [
        data_change(datasets[i % len(datasets)], str(i // len(datasets) + 1), data) for i in range(EVENTS)
    ]
    keys = [e.dedup_key for e in events]
    records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]
    records = [(e.key.encode(), *encode_structured(e)) for e in events]
    policy = _coalescing_policy(stack, tmp_path)
    routers = {name: _router(stack, cluster, names, name, policy) for name in ("stays", "leaves")}
    # The session's worker and a second one on the same pool, both executing what the routers start.
    stack.ensure_worker()
    assert stack.worker is not None
    workers = (stack.worker, _worker(stack, cluster, names, "second"))
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

        # Every change has its run, and every run has ended: checked, or recorded as superseded.
        runs = stack.wait_for_runs(keys, states={"Completed", RECORDED}, timeout=600)
        counts = Counter(run.idempotency_key for run in runs)
        assert set(counts) == set(keys), "every event has a flow run"
        assert not {k: n for k, n in counts.items() if n > 1}, "no event has two runs"
        # The routers stood superseded runs down before they started: few ran at all.
        completed = {run.id for run in runs if run.state == "Completed"}
        assert len(completed) <= EVENTS // 5, f"{len(completed)} of {EVENTS} runs executed"

        # Each change left exactly one dataset version and one piece of evidence in the register.
        with stack.register().reader() as uow:
            recorded = {d: uow.dataset_versions.find(dataset=d) for d in datasets}
            evidence = Counter(e.event_key for e in uow.evidence.find(flow="check-data-quality"))
        for dataset, rows in recorded.items():
            assert sorted((v.version for v in rows), key=int) == [str(v) for v in range(1, versions + 1)]
            last = next(v for v in rows if v.version == str(versions))
            assert last.status != "superseded", f"{dataset}: its last change was checked"
        assert {k: evidence[k] for k in keys} == dict.fromkeys(keys, 1), "evidence of each change, once"

        def executed() -> Counter[str] | None:
            # A process reports after its run's last state (and the dashboard rebuilt after it).
            ran = Counter(run for worker in workers for run in _executed(worker) if run in completed)
            return ran if set(ran) == completed else None

        ran = poll(executed, 60, "every executed run's process reporting it")
        assert not {r: n for r, n in ran.items() if n > 1}, "no run was executed by both workers"
        # Every offset committed (the workers' validated events come back on the topic too).
        poll(
            lambda: cluster.committed(group) == cluster.end_offsets(names["AIMS_EVENTS_TOPIC"]),
            180,
            "every offset committed",
        )
        assert routers["stays"].alive(), routers["stays"].failure()
    finally:
        for router in routers.values():
            router.stop()
        workers[1].stop(timeout=60)
        api.close()
        cluster.broker.restart_node(2)
        stack.discard_runs(keys)
