"""Kafka with authentication and encryption: a real broker listening on SASL_SSL only.

Events are published, routed and dead-lettered over TLS with a SCRAM-SHA-512 user, as the local
stack does with AIMS_KAFKA_LOCAL_SECURITY=sasl_ssl; a client without credentials gets nothing, and a
wrong password or an untrusted broker certificate fails with the setting to fix.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from pydantic import SecretStr

from events.kafka_clients import (
    KafkaConnection,
    KafkaSecurity,
    KafkaSecurityError,
    make_admin,
    make_consumer,
    make_producer,
)
from events.producer import EventPublisher
from events.router import Router
from events.topics import ensure_topics, topic_specs
from infra.kafka_broker import KafkaBroker
from schemas.events import AimsEvent
from schemas.settings import AimsSettings, environment_values
from tests.factories import data_event, incident_event
from tests.tls import pem_server_files

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    state = tmp_path_factory.mktemp("kafka-sasl-ssl")
    broker = KafkaBroker(state, libs_dir=REPO / ".aims" / "kafka" / "libs", security="sasl_ssl")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class RecordingLauncher:
    """Stands in for Prefect: records which deployment each event's run would start."""

    def __init__(self, launched: dict[str, str]) -> None:
        self.launched = launched

    async def __aenter__(self) -> RecordingLauncher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def launch(
        self,
        deployment: str,
        parameters: dict[str, Any],
        idempotency_key: str,
        start_at: datetime | None = None,
        tags: list[str] | None = None,
        name: str | None = None,
    ) -> UUID:
        self.launched[idempotency_key] = deployment
        return uuid.uuid5(uuid.NAMESPACE_URL, idempotency_key)

    async def stand_down(self, run_id: UUID, message: str) -> bool:
        return False

    async def resume(self, deployment: str, tag: str, run_input: dict[str, Any]) -> UUID | None:
        return None


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f}s"
        time.sleep(0.2)


def read_all(kafka: KafkaConnection, topic: str) -> list[Any]:
    from kafka.structs import TopicPartition

    consumer = make_consumer(kafka, None, consumer_timeout_ms=2000)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or set()]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        return [record for batch in consumer.poll(timeout_ms=3000).values() for record in batch]
    finally:
        consumer.close()


def test_events_are_published_routed_and_dead_lettered_over_sasl_ssl(
    broker: KafkaBroker, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    # As `aims up` hands its processes the broker's security: variables, the password by file.
    settings = AimsSettings.model_validate(
        {
            **environment_values(AimsSettings, broker.client_env()),
            "state_dir": tmp_path,
            "events_topic": f"events.{tag}",
            "dead_letter_topic": f"dlq.{tag}",
            "consumer_group": f"router.{tag}",
        }
    )
    assert settings.kafka_security_protocol == "SASL_SSL" and settings.kafka_sasl_password is not None
    kafka = KafkaConnection.from_settings(settings)
    created = ensure_topics(kafka, topic_specs(settings))  # the module's first test also makes the anchors'
    assert {settings.events_topic, settings.dead_letter_topic} <= set(created)

    launched: dict[str, str] = {}
    router = Router(settings, kafka, lambda: RecordingLauncher(launched), heartbeat_dir=tmp_path, name="tls")
    thread = threading.Thread(target=router.run, name="tls-router", daemon=True)
    thread.start()
    events: list[AimsEvent] = [data_event(), incident_event()]
    publisher = EventPublisher(kafka, settings.events_topic, signing_key=None)
    try:
        assert router.wait_ready(90), "the router did not join its group over SASL_SSL"
        publisher.publish(events[0], mode="structured")
        publisher.publish(events[1], mode="binary")
        publisher.publish_raw(b"{not json", key=b"broken")
        wait_for(lambda: len(launched) == 2, "both events routed")
        wait_for(lambda: router.stats.dead_lettered == 1, "the malformed record dead-lettered")
    finally:
        publisher.close()
        router.stop()
        thread.join(60)
    assert not thread.is_alive()

    assert launched == {
        events[0].dedup_key: "check-data-quality/aims",
        events[1].dedup_key: "handle-incident/aims",
    }
    letters = read_all(kafka, settings.dead_letter_topic)
    assert [letter.key for letter in letters] == [b"broken"]
    admin = make_admin(kafka)
    try:
        offsets = admin.list_group_offsets(settings.consumer_group).get(settings.consumer_group, {})
    finally:
        admin.close()
    assert sum(o.offset for o in offsets.values() if o.offset >= 0) == 3, "every record committed"


def test_a_plaintext_client_gets_nothing_and_is_told_the_protocol_setting(broker: KafkaBroker) -> None:
    # The listener speaks TLS and wants a SCRAM user: a plaintext client cannot even bootstrap.
    with pytest.raises(KafkaSecurityError, match="speak TLS, not PLAINTEXT: set KAFKA_SECURITY_PROTOCOL"):
        make_admin(KafkaConnection(broker.bootstrap), bootstrap_timeout_ms=3000)


def test_a_wrong_password_fails_naming_the_password_setting(broker: KafkaBroker) -> None:
    right = broker.connection.security
    wrong = KafkaSecurity(
        protocol="SASL_SSL",
        username=right.username,
        password=SecretStr("not-the-password"),
        cafile=right.cafile,
    )
    with pytest.raises(KafkaSecurityError) as caught:
        make_producer(KafkaConnection(broker.bootstrap, wrong), bootstrap_timeout_ms=5000)
    message = str(caught.value)
    assert f"refused user '{right.username}'" in message and "KAFKA_SASL_PASSWORD" in message
    assert "not-the-password" not in message


def test_a_mechanism_the_brokers_do_not_offer_fails_naming_the_mechanism_setting(broker: KafkaBroker) -> None:
    right = broker.connection.security
    other = KafkaSecurity(
        protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",  # the local broker offers SCRAM-SHA-512 only
        username=right.username,
        password=right.password,
        cafile=right.cafile,
    )
    with pytest.raises(KafkaSecurityError) as caught:
        make_producer(KafkaConnection(broker.bootstrap, other), bootstrap_timeout_ms=5000)
    message = str(caught.value)
    assert "do not offer SCRAM-SHA-256" in message and "SCRAM-SHA-512" in message
    assert "KAFKA_SASL_MECHANISM" in message


def test_a_broker_certificate_from_an_untrusted_ca_fails_naming_the_ca_setting(
    broker: KafkaBroker, tmp_path: Path
) -> None:
    other_ca, _, _ = pem_server_files(tmp_path)
    right = broker.connection.security
    untrusting = KafkaSecurity(
        protocol="SASL_SSL", username=right.username, password=right.password, cafile=other_ca
    )
    with pytest.raises(KafkaSecurityError) as caught:
        make_producer(KafkaConnection(broker.bootstrap, untrusting))
    assert "not trusted" in str(caught.value) and f"KAFKA_SSL_CAFILE={other_ca}" in str(caught.value)


def test_the_broker_certificate_names_the_address_clients_connect_to(broker: KafkaBroker) -> None:
    # Hostname checking stays on (KAFKA_SSL_CHECK_HOSTNAME defaults to true) and passes.
    assert broker.connection.security.check_hostname
    admin = make_admin(broker.connection)
    try:
        assert admin.describe_cluster()["brokers"]
    finally:
        admin.close()
