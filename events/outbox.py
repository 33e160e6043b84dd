"""Sending the events that flows wrote to the register's outbox: after the commit, at least once.

A flow writes the events it decided to publish in the same unit of work as the records they report
(`connectors.register.outbox.stage`), then has them sent straight after the commit. If its process
dies in between, the rows stay unsent and the router's periodic relay sends them. Consumers dedupe
on source#id, so the rare double send (a flow and the relay racing on the same row)
changes nothing downstream.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from schemas.events import parse_event
from schemas.signing import SigningKeyMissing, seal
from schemas.trail import OutboxMessage

if TYPE_CHECKING:
    from kafka import KafkaProducer
    from kafka.producer.future import FutureRecordMetadata
    from pydantic import SecretStr

    from connectors.register.store import Register
    from events.kafka_clients import KafkaConnection

log = logging.getLogger("aims.outbox")


class OutboxRelay:
    """Publishes unsent outbox rows, signed, and marks them sent.

    Rows are signed when they are sent, not when they are staged: the key stays with the processes
    that publish (never in the register), and a row staged before a key rotation goes out signed
    with the key of now.
    """

    def __init__(
        self, register: Register, producer: KafkaProducer, actor: str, signing_key: SecretStr | None
    ) -> None:
        self.register = register
        self.producer = producer
        self.actor = actor
        self.signing_key = signing_key

    def send(self, keys: Iterable[str] | None = None, *, older_than: float = 0.0, limit: int = 500) -> int:
        """Send the unsent rows named by `keys` (all, if None) created more than `older_than` s ago."""
        wanted = set(keys) if keys is not None else None
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
        with self.register.reader() as uow:
            pending = [
                m
                for m in uow.outbox.find(sent_at=None, order_by="created_at", limit=limit)
                if (wanted is None or m.key in wanted) and m.created_at <= cutoff
            ]
        # All handed to the producer first, then their answers awaited: one round trip for the lot,
        # not one per row (a check that records a burst's superseded changes sends hundreds).
        submitted = [(m, future) for m in pending if (future := self._submit(m)) is not None]
        sent = [m for m, future in submitted if self._acknowledged(m, future)]
        if sent:
            now = datetime.now(UTC)
            with self.register.unit_of_work(self.actor) as uow:
                for m in sent:
                    uow.outbox.update(m.key, sent_at=now)
        return len(sent)

    def _submit(self, message: OutboxMessage) -> FutureRecordMetadata | None:
        from events.codec import encode_structured

        try:
            event = parse_event(message.event)
        except ValueError as exc:
            # Written by this code, so only an incompatible upgrade gets here; keep it for a person.
            log.error("outbox row %s is no valid event any more, left unsent: %s", message.key, exc)
            return None
        try:
            event = seal(event, self.signing_key)
        except SigningKeyMissing as exc:
            # Sent unsigned, it would be dead-lettered as forged: it waits for a process with the key.
            log.error("outbox row %s left unsent: %s", message.key, exc)
            return None
        value, headers = encode_structured(event)
        try:
            return self.producer.send(message.topic, key=event.key.encode(), value=value, headers=headers)
        except Exception as exc:  # noqa: BLE001 - any produce failure: the row stays for the next pass
            log.warning("could not send outbox row %s to %s: %s", message.key, message.topic, exc)
            return None

    def _acknowledged(self, message: OutboxMessage, future: FutureRecordMetadata) -> bool:
        try:
            future.get(timeout=30)
        except Exception as exc:  # noqa: BLE001 - any produce failure: the row stays for the next pass
            log.warning("could not send outbox row %s to %s: %s", message.key, message.topic, exc)
            return False
        return True


class KafkaOutbox:
    """`flows.runtime.OutboxSender` on Kafka: one producer per process, opened on the first send.

    Flows, the gateway and the CLI send what they staged right after their commit through this. A
    row that cannot be sent stays for the router's relay; only a broker that cannot be reached at all
    raises (`KafkaError`), so the caller can say the events go later.
    """

    def __init__(
        self, register: Register, kafka: KafkaConnection | None, client_id: str, signing_key: SecretStr | None
    ) -> None:
        self.register = register
        self.kafka = kafka
        self.client_id = client_id
        self.signing_key = signing_key
        self._producer: KafkaProducer | None = None

    def send(self, keys: Iterable[str], actor: str) -> int:
        keys = list(keys)
        if self.kafka is None or not keys:
            return 0
        if self._producer is None:
            from events.kafka_clients import make_producer

            self._producer = make_producer(self.kafka, client_id=self.client_id)
        return OutboxRelay(self.register, self._producer, actor, self.signing_key).send(keys)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=10)
            self._producer = None
