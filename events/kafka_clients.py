"""Factories for kafka-python clients with the settings this project relies on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

# Large enough for an oversize event to be dead-lettered with its original bytes.
MAX_REQUEST_BYTES = 2 * 1024 * 1024
# kafka-python waits up to 30 s between reconnection attempts by default: a broker back after a
# restart would be noticed that late. A second is cheap on loopback and on a real network.
RECONNECT_BACKOFF_MAX_MS = 1000


def make_producer(bootstrap: str, **overrides: Any) -> KafkaProducer:
    from kafka import KafkaProducer

    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "retries": 10,
        "linger_ms": 2,
        "max_request_size": MAX_REQUEST_BYTES,
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
        "client_id": "aims-producer",
    }
    options.update(overrides)
    return KafkaProducer(**options)


def make_consumer(bootstrap: str, group_id: str | None, **overrides: Any) -> KafkaConsumer:
    from kafka import KafkaConsumer

    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_bytes": 8 * MAX_REQUEST_BYTES,
        "max_partition_fetch_bytes": MAX_REQUEST_BYTES,
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
        "client_id": "aims-consumer",
    }
    options.update(overrides)
    return KafkaConsumer(**options)


def make_admin(bootstrap: str, **overrides: Any) -> KafkaAdminClient:
    from kafka import KafkaAdminClient

    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
        "client_id": "aims-admin",
    }
    options.update(overrides)
    return KafkaAdminClient(**options)
