"""Publishing events, keyed by their subject so that one subject's events stay in order.

Every event is sealed on its way out (schemas.signing): the system's own (urn:aims: sources) are
signed, or refused when there is no key to sign them with; an outside source's event goes as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from events.codec import encode_binary, encode_structured
from events.kafka_clients import KafkaConnection, make_producer
from schemas.events import AimsEvent
from schemas.signing import seal

if TYPE_CHECKING:
    from kafka import KafkaProducer
    from pydantic import SecretStr

Mode = Literal["structured", "binary"]


class EventPublisher:
    def __init__(
        self,
        kafka: KafkaConnection,
        topic: str,
        producer: KafkaProducer | None = None,
        *,
        signing_key: SecretStr | None,
    ) -> None:
        # The key is a required argument, not looked up: every caller says whether it signs.
        self.topic = topic
        self._signing_key = signing_key
        self._producer = producer or make_producer(kafka)

    def publish(self, event: AimsEvent, mode: Mode = "structured", timeout: float = 30) -> int:
        """Sign, send and wait for the broker's acknowledgement; return the partition.

        Raises `schemas.signing.SigningKeyMissing` (before anything is sent) for an urn:aims: event
        without a key.
        """
        event = seal(event, self._signing_key)
        value, headers = encode_structured(event) if mode == "structured" else encode_binary(event)
        meta = self._producer.send(self.topic, key=event.key.encode(), value=value, headers=headers).get(
            timeout=timeout
        )
        return int(meta.partition)

    def publish_raw(
        self,
        value: bytes | None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        timeout: float = 30,
    ) -> int:
        """Send bytes as they are (replays, tests of what bad producers send)."""
        meta = self._producer.send(self.topic, key=key, value=value, headers=headers or []).get(
            timeout=timeout
        )
        return int(meta.partition)

    def close(self) -> None:
        self._producer.flush()
        self._producer.close()
