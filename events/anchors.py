"""The audit log's anchors on Kafka: published by the routers, read back by `aims audit verify`.

The anchors topic is the append-only place outside the register (DESIGN, trust boundaries): a
forger who rewrites the database, the log and its head row cannot rewrite what was published here.
Each anchor is HMAC-tagged with the audit key (connectors.register.anchors).

Why the router publishes them: it runs all the time in every installation (supervised, restarted),
already holds the register and a Kafka producer, and has a periodic thread (the outbox relay) to
piggy-back on. A scheduled flow would add Prefect's scheduler and a Kafka producer inside a flow
(DESIGN: flows never send to Kafka themselves) to the path of a security control. Several routers
publish the same head: duplicates are harmless (same seq, same hash) and the verifier keys by seq.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from connectors.register.anchors import Anchor, AnchorSet, open_anchor

if TYPE_CHECKING:
    from kafka import KafkaProducer
    from pydantic import SecretStr

    from connectors.register.store import Register
    from events.kafka_clients import KafkaConnection

log = logging.getLogger("aims.anchors")
ANCHOR_KEY = b"audit-head"  # one key: with several partitions the anchors still stay in order
SEND_TIMEOUT = 10.0


class AnchorPublisher:
    """Publishes the audit head every `every` seconds when it moved, after checking that the entries
    since the last anchor it published chain correctly (it never anchors a log it cannot vouch for)."""

    def __init__(
        self,
        register: Register,
        producer: KafkaProducer,
        topic: str,
        key: SecretStr,
        every: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.register = register
        self.producer = producer
        self.topic = topic
        self._key = key.get_secret_value().encode()
        self.every = every
        self._clock = clock
        self._due = 0.0
        self._last: tuple[int, str] | None = None  # the last anchor this publisher sent

    def tick(self) -> Anchor | None:
        """Publish if due and the head moved: the anchor sent, else None. Kafka and register errors raise."""
        now = self._clock()
        if now < self._due:
            return None
        self._due = now + self.every
        head = self.register.audit_head()
        if head is None or head.seq == 0 or (head.seq, head.hash) == self._last:
            return None
        problem = self.register.check_audit_since(self._last, head)
        if problem is not None:
            # Not anchored: a broken log must not get a valid-looking anchor. `aims audit verify` says more.
            log.error("audit log NOT anchored: %s", problem)
            return None
        anchor = Anchor(
            seq=head.seq,
            head=head.hash,
            keyed_from=head.keyed_from,
            at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self.producer.send(self.topic, key=ANCHOR_KEY, value=anchor.seal(self._key)).get(timeout=SEND_TIMEOUT)
        self._last = (head.seq, head.hash)
        log.info("audit head anchored: entry %d", head.seq)
        return anchor


def read_anchors(kafka: KafkaConnection, topic: str, key: SecretStr, timeout: float = 10.0) -> AnchorSet:
    """Every anchor on the topic, from its beginning to its end now; records without a valid tag
    are counted as rejected. An absent topic holds no anchors."""
    from kafka import TopicPartition

    from events.kafka_clients import make_consumer

    secret = key.get_secret_value().encode()
    consumer = make_consumer(kafka, None, client_id="aims-audit-verify", consumer_timeout_ms=1000)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return AnchorSet.of([], source=f"{topic} (no such topic yet)")
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        anchors: list[Anchor] = []
        rejected = 0
        deadline = time.monotonic() + timeout
        # Read until every partition reached the end it had when we started: anchors published
        # during the check are not needed, and the loop cannot chase a topic that keeps growing.
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading the anchors on {topic} took longer than {timeout:.0f} s")
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    anchor = open_anchor(record.value, secret)
                    if anchor is None:
                        rejected += 1
                    else:
                        anchors.append(anchor)
        return AnchorSet.of(anchors, rejected, source=topic)
    finally:
        consumer.close()
