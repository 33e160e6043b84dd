"""The one place kafka-python clients are built: the project's defaults and the cluster's security.

Every producer, consumer and admin client is built from a `KafkaConnection`: where the brokers are and
how to authenticate to them (events/kafka_security.py), from the settings. A client that cannot connect
for a security reason — a refused password, an untrusted certificate — fails at once with
`KafkaSecurityError`, whose message names the setting to fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from events.kafka_security import (
    PROBE_TIMEOUT_S,
    KafkaSecurity,
    KafkaSecurityError,
    probe_tls,
    refused,
    speaks_tls,
)
from schemas.settings import AimsSettings

if TYPE_CHECKING:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

__all__ = [
    "MAX_REQUEST_BYTES",
    "KafkaConnection",
    "KafkaSecurity",
    "KafkaSecurityError",
    "make_admin",
    "make_consumer",
    "make_producer",
]

# Large enough for an oversize event to be dead-lettered with its original bytes.
MAX_REQUEST_BYTES = 2 * 1024 * 1024
# kafka-python waits up to 30 s between reconnection attempts by default: a broker back after a
# restart would be noticed that late. A second is cheap on loopback and on a real network.
RECONNECT_BACKOFF_MAX_MS = 1000

C = TypeVar("C")


@dataclass(frozen=True)
class KafkaConnection:
    """Where the brokers are and how to talk to them: what every client of this project is built from."""

    bootstrap: str
    security: KafkaSecurity = field(default_factory=KafkaSecurity)

    @classmethod
    def from_settings(cls, settings: AimsSettings, bootstrap: str | None = None) -> KafkaConnection:
        """The settings' security, towards `bootstrap` (a local stack's broker) or the settings' cluster."""
        address = bootstrap or settings.kafka_bootstrap_servers
        if not address:
            raise ValueError("no Kafka to talk to: set KAFKA_BOOTSTRAP_SERVERS or start the local stack")
        return cls(address, KafkaSecurity.from_settings(settings))


def make_producer(kafka: KafkaConnection, **overrides: Any) -> KafkaProducer:
    from kafka import KafkaProducer

    options: dict[str, Any] = {
        # Every in-sync copy acknowledges (the topics' min.insync.replicas says how many must be there),
        # and the broker drops the duplicates a retry would write: no lost or doubled event on a
        # replicated cluster when a node fails mid-send.
        "acks": "all",
        "enable_idempotence": True,
        "retries": 10,
        "linger_ms": 2,
        "max_request_size": MAX_REQUEST_BYTES,
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
        "client_id": "aims-producer",
    }
    return _build(KafkaProducer, kafka, options, overrides)


def make_consumer(kafka: KafkaConnection, group_id: str | None, **overrides: Any) -> KafkaConsumer:
    from kafka import KafkaConsumer

    options: dict[str, Any] = {
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_bytes": 8 * MAX_REQUEST_BYTES,
        "max_partition_fetch_bytes": MAX_REQUEST_BYTES,
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
        "client_id": "aims-consumer",
    }
    return _build(KafkaConsumer, kafka, options, overrides)


def make_admin(kafka: KafkaConnection, **overrides: Any) -> KafkaAdminClient:
    from kafka import KafkaAdminClient

    options: dict[str, Any] = {
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
        "client_id": "aims-admin",
    }
    return _build(KafkaAdminClient, kafka, options, overrides)


def client_options(
    kafka: KafkaConnection, options: dict[str, Any], overrides: dict[str, Any]
) -> dict[str, Any]:
    """The keyword arguments of a client. The security comes last: an override tunes, never drops TLS."""
    return {"bootstrap_servers": kafka.bootstrap, **options, **overrides, **kafka.security.client_options()}


def _build(
    client: Callable[..., C], kafka: KafkaConnection, options: dict[str, Any], overrides: dict[str, Any]
) -> C:
    from kafka.errors import KafkaError, KafkaTimeoutError

    options = client_options(kafka, options, overrides)
    # Within the caller's own bootstrap limit (`aims status` has a few seconds in all).
    limit = min(PROBE_TIMEOUT_S, options.get("bootstrap_timeout_ms", 30_000) / 1000)
    if "ssl_context" in options:
        probe_tls(kafka.bootstrap, kafka.security, options["ssl_context"], limit)
    try:
        return client(**options)
    except KafkaError as exc:
        # Only a security failure is translated: any other stays as kafka-python raised it.
        problem = refused(exc, kafka.security)
        # kafka-python cannot tell a TLS listener from a dead broker: one handshake can.
        plaintext_timeout = isinstance(exc, KafkaTimeoutError) and not kafka.security.uses_tls
        if problem is None and plaintext_timeout and speaks_tls(kafka.bootstrap, limit):
            problem = (
                f"the brokers speak TLS, not {kafka.security.protocol}: set KAFKA_SECURITY_PROTOCOL "
                "(SSL or SASL_SSL) and KAFKA_SSL_CAFILE"
            )
        if problem is None:
            raise
        raise KafkaSecurityError(f"Kafka at {kafka.bootstrap}: {problem}") from None
