"""A replicated Kafka cluster: three KRaft nodes, topics with three copies and two in sync.

The production shape in small (issue 23): a node killed with SIGKILL while events arrive and a router
leaving the group lose nothing and double nothing. The routers are processes, as `aims router` runs
them, in one consumer group on the cluster; their effect is the flow run each event starts, on the
session's Prefect server (no worker: the runs are counted, not executed, as in test_failures.py).
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.codec import encode_structured
from events.kafka_clients import make_admin
from events.kafka_security import without_kafka_security
from events.topics import ensure_topics, topic_specs
from infra.kafka_broker import KafkaBroker
from infra.processes import ManagedProcess
from schemas.settings import AimsSettings
from tests.factories import mixed_events
from tests.kafka_reads import KafkaReads
from tests.support import SessionStack, poll

REPO = Path(__file__).resolve().parents[2]
EVENTS = 500


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


@pytest.fixture(autouse=True, scope="module")
def _no_worker(stack: SessionStack) -> Iterator[None]:
    # The effect counted is the run each event starts; executing 500 of them would only take time.
    stack.stop_worker()
    yield
    stack.ensure_worker()


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


def _router(stack: SessionStack, cluster: Cluster, names: dict[str, str], name: str) -> ManagedProcess:
    """`aims router` on the cluster: its addresses and its own user and CA, not the session broker's."""
    env = without_kafka_security(stack.env(AIMS_STATE_DIR=str(stack.state), **names))
    env.update(cluster.broker.client_env())
    env.update(AIMS_REPLICATION_FACTOR="3", AIMS_MIN_INSYNC_REPLICAS="2")
    proc = ManagedProcess(
        f"router-{name}",
        [sys.executable, "-m", "aims", "router", "--name", name],
        stack.state / "logs" / f"router-{name}.log",
        env,
    )
    proc.start()
    return proc


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


def test_500_events_through_a_killed_node_and_a_leaving_router_each_start_exactly_one_run(
    stack: SessionStack, cluster: Cluster, names: dict[str, str]
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
