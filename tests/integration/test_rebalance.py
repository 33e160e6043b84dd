"""A consumer whose rejoin the Kafka client lost joins its group afresh (events/rebalance.py)."""

from __future__ import annotations

import time
import uuid

from events.kafka_clients import make_admin, make_consumer
from events.rebalance import RebalanceWatch, rejoin_if_stuck
from tests.support import SessionStack, poll

PARTITIONS = 4
GROUPS = 4
# Shorter than the group's answers take here, as the router's 100 ms were on a loaded machine.
SHORT_POLL_MS = 20


def test_consumers_whose_joins_outlast_their_polls_get_their_partitions(stack: SessionStack) -> None:
    """Routers starting in a fresh installation, their topic made a moment after they subscribed,
    polling for less time than the group's answers take (the router's 100 ms on a loaded machine).

    The answers to a join begun by the topic's partitions arriving come back between polls, on the
    Kafka client's network thread, which is how kafka-python loses the join: without the watch a
    consumer stays "rebalancing", with no partitions, for good. That happened to most groups tried
    (one group of three got its partitions), hence several groups at once.
    """
    from kafka.admin import NewTopic
    from kafka.structs import MemberState

    topic = f"late-topic-{uuid.uuid4().hex[:8]}"
    consumers = [
        make_consumer(stack.kafka, f"late.{topic}.{n}", session_timeout_ms=6000, heartbeat_interval_ms=2000)
        for n in range(GROUPS)
    ]
    watches = [RebalanceWatch(after=8) for _ in consumers]
    admin = make_admin(stack.kafka)
    try:
        for consumer in consumers:
            consumer.subscribe([topic])

        def all_hold(partitions: int) -> bool:
            for consumer, watch in zip(consumers, watches, strict=True):
                consumer.poll(timeout_ms=SHORT_POLL_MS)
                rejoin_if_stuck(consumer, watch, [topic], time.monotonic())
            time.sleep(0.3)
            return all(
                c.group_metadata().state == MemberState.STABLE and len(c.assignment()) == partitions
                for c in consumers
            )

        poll(lambda: all_hold(0), 30, "the consumers in their groups, with nothing to read yet")
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
        poll(lambda: all_hold(PARTITIONS), 60, "their partitions")
    finally:
        for consumer in consumers:
            consumer.close(autocommit=False, timeout_ms=2000)
        admin.delete_topics([topic])
        admin.close()
