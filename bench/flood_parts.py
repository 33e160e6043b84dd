"""The flood benchmark's parts (bench.flood): its malformed records, their order with the good events,
a topic read back for its records' timestamps, and the pure figures made of them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from events.kafka_clients import KafkaConnection

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]  # key, value, headers

STRUCTURED = [("content-type", b"application/cloudevents+json")]

# What a producer gets wrong, one of each dead-letter reason decoding gives (events.codec.Reason):
# bytes that are not JSON, JSON that is not an object, an object that is no CloudEvent, a CloudEvent
# of a type nothing routes, and a known type whose payload does not validate.
MALFORMED_KINDS = ("not-json", "not-an-object", "invalid-envelope", "unknown-type", "invalid-payload")


def malformed_record(i: int, subjects: int, known_type: str) -> Record:
    """The i-th malformed record: the kinds in turn, keyed over `subjects` keys like real events."""
    kind = MALFORMED_KINDS[i % len(MALFORMED_KINDS)]
    key = f"flood-{i % subjects:03d}".encode()
    envelope = {"specversion": "1.0", "id": f"flood-{i:06d}", "source": "urn:ml:flood"}
    if kind == "not-json":
        return key, b"\xff\xfe not json {" + str(i).encode(), []
    if kind == "not-an-object":
        return key, json.dumps([i, "not", "an", "object"]).encode(), STRUCTURED
    if kind == "invalid-envelope":
        return key, json.dumps({"id": envelope["id"], "data": {"n": i}}).encode(), STRUCTURED
    if kind == "unknown-type":
        body = {**envelope, "type": "com.example.nothing.routes.this", "data": {"n": i}}
        return key, json.dumps(body).encode(), STRUCTURED
    body = {**envelope, "type": known_type, "data": {"not_a_field": i}}
    return key, json.dumps(body).encode(), STRUCTURED


def flood_order(malformed: int, good: int) -> list[int]:
    """Where the good events go among the malformed records: -1 for a malformed record, else the
    index of the good event. The good ones are spread evenly, the first after a stretch of bad ones,
    so each of them is measured inside the flood rather than ahead of it."""
    if good <= 0:
        return [-1] * malformed
    order: list[int] = []
    every = malformed / good
    placed = 0
    for i in range(malformed):
        order.append(-1)
        # After every `every` malformed records (rounded), the next good event.
        while placed < good and i + 1 >= round((placed + 1) * every):
            order.append(placed)
            placed += 1
    order.extend(range(placed, good))
    return order


def span_rate(timestamps_ms: Sequence[int]) -> float | None:
    """Records per second from the first to the last timestamp; None for fewer than two or no span."""
    if len(timestamps_ms) < 2:
        return None
    span = (max(timestamps_ms) - min(timestamps_ms)) / 1000
    return (len(timestamps_ms) - 1) / span if span > 0 else None


@dataclass(frozen=True)
class TopicRead:
    records: int
    timestamps_ms: list[int]  # the producers' CreateTime of every record, in no particular order


def read_topic(kafka: KafkaConnection, topic: str, timeout: float = 120) -> TopicRead:
    """Every record now in `topic`, read from the start without a group (nothing is committed)."""
    from kafka.structs import TopicPartition

    from events.kafka_clients import make_consumer

    consumer = make_consumer(kafka, None, client_id="bench-flood-reader")
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        stamps: list[int] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: not read to its end within {timeout:.0f}s")
            for batch in consumer.poll(timeout_ms=500, max_records=5000).values():
                stamps.extend(r.timestamp for r in batch)
        return TopicRead(records=len(stamps), timestamps_ms=stamps)
    finally:
        consumer.close(autocommit=False)


def end_total(kafka: KafkaConnection, topic: str) -> int:
    """The sum of `topic`'s end offsets: its records, on a fresh topic."""
    from kafka.structs import TopicPartition

    from events.kafka_clients import make_consumer

    consumer = make_consumer(kafka, None, client_id="bench-flood-ends")
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close(autocommit=False)
