"""Reading what reached Kafka back in integration tests: topics, committed offsets, raw records."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from events.kafka_clients import KafkaConnection, make_admin, make_consumer, make_producer
from infra.kafka_broker import KafkaBroker


class KafkaReads:
    """The session stack's Kafka side, for checking outcomes (offsets committed, records written)."""

    broker: KafkaBroker

    @property
    def kafka(self) -> KafkaConnection:
        """The session's broker as its clients reach it (on loopback; SASL_SSL when the session runs so)."""
        return self.broker.connection

    def start_group_at_end(self, group: str, topic: str) -> None:
        """Commit the topic's end offsets for `group`: a router in it then sees only later events
        (for tests that route the topic the flows publish to, which earlier tests filled)."""
        from kafka.structs import OffsetAndMetadata, TopicPartition

        consumer = make_consumer(self.kafka, group)
        try:
            parts = consumer.partitions_for_topic(topic) or set()
            ends = consumer.end_offsets([TopicPartition(topic, p) for p in parts])
            consumer.assign(list(ends))
            consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in ends.items()})
        finally:
            consumer.close()

    def committed_by_partition(self, group: str) -> dict[int, int]:
        """The committed offset of each partition a consumer group has committed."""
        admin = make_admin(self.kafka)
        try:
            offsets = admin.list_group_offsets(group).get(group, {})
        finally:
            admin.close()
        return {tp.partition: o.offset for tp, o in offsets.items() if o.offset >= 0}

    def committed(self, group: str) -> int:
        """Total committed offsets of a consumer group (one topic per group in these tests)."""
        return sum(self.committed_by_partition(group).values())

    def end_offsets(self, topic: str) -> int:
        from kafka.structs import TopicPartition

        consumer = make_consumer(self.kafka, None)
        try:
            parts = consumer.partitions_for_topic(topic) or set()
            ends = consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        finally:
            consumer.close()
        return sum(ends.values())

    def read_topic(self, topic: str, expected: int, timeout: float = 60) -> list[Any]:
        """Every record of a topic from the start, waiting until at least `expected` arrived."""
        from kafka.structs import TopicPartition

        consumer = make_consumer(self.kafka, None)
        records: list[Any] = []
        try:
            parts = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in parts]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            deadline = time.monotonic() + timeout
            while len(records) < expected and time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=500).values():
                    records.extend(batch)
            # A little longer, to catch anything beyond what was expected.
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
        finally:
            consumer.close()
        return records

    def read_matching(
        self, topic: str, match: Callable[[Any], bool], count: int, timeout: float = 60
    ) -> list[Any]:
        """The records of `topic` that `match`, once exactly `count` of them are there (bounded by `timeout`).

        Instead of reading for a fixed time and hoping everything arrived: returns as soon as `count`
        matching records are in; a record beyond `count`, or fewer by the deadline, fails with both.
        """
        from kafka.structs import TopicPartition

        consumer = make_consumer(self.kafka, None)
        found: list[Any] = []
        try:
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or set()]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            ends = consumer.end_offsets(tps)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=200).values():
                    found.extend(r for r in batch if match(r))
                caught_up = all(consumer.position(tp) >= ends[tp] for tp in tps)
                if len(found) >= count and caught_up:
                    break
                if caught_up:
                    ends = consumer.end_offsets(tps)  # more may have been written since
        finally:
            consumer.close()
        assert len(found) == count, (
            f"expected exactly {count} matching records on {topic}, found {len(found)}: "
            + "; ".join(str(r.value)[:160] for r in found)
        )
        return found

    def publish_raw(
        self, topic: str, records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]
    ) -> None:
        producer = make_producer(self.kafka)
        try:
            futures = [producer.send(topic, key=k, value=v, headers=h) for k, v, h in records]
            producer.flush(30)
            for f in futures:
                f.get(30)
        finally:
            producer.close()
