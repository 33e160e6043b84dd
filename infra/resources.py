"""The composition root: the resources each kind of process uses, built once from the settings.

The worker's flow-run processes install `flow_runtime()` before a run; the gateway, the router and
the CLI build theirs here too, so the register, the policy, Slack, Jira and the outbox's Kafka
producer are each made in one place and passed in. Tests build a `flows.runtime.Runtime` of their
own (a register in a temporary folder, the example policy, recording fakes) instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flows.runtime import Runtime

if TYPE_CHECKING:
    from pydantic import SecretStr

    from connectors.register.store import Register
    from events.anchors import AnchorPublisher
    from events.kafka_clients import KafkaConnection
    from events.outbox import KafkaOutbox, OutboxRelay
    from gateway.desk import DecisionDesk
    from schemas.policy import Policy
    from schemas.settings import AimsSettings


def policy_if_any(settings: AimsSettings) -> Policy | None:
    """The validated policy the settings name; None without a file; an invalid file is an error."""
    from schemas.policy_file import load_policy

    path = settings.policy_file
    return load_policy(path) if path.exists() else None


def kafka_connection(settings: AimsSettings) -> KafkaConnection | None:
    """The settings' cluster with their security (KAFKA_SECURITY_PROTOCOL…); None without a cluster."""
    from events.kafka_clients import KafkaConnection

    if not settings.kafka_bootstrap_servers:
        return None
    return KafkaConnection.from_settings(settings)


def outbox_sender(
    register: Register, kafka: KafkaConnection | None, client_id: str, signing_key: SecretStr | None
) -> KafkaOutbox:
    """Sends what a process staged right after its commit (flows, the gateway, the CLI, the demo),
    signed with the installation's event key (AIMS_EVENT_SIGNING_KEY)."""
    from events.outbox import KafkaOutbox

    return KafkaOutbox(register, kafka, client_id=client_id, signing_key=signing_key)


def outbox_relay(
    register: Register, kafka: KafkaConnection, name: str, signing_key: SecretStr | None
) -> OutboxRelay:
    """The router's relay: sends whatever a process staged and could not send (DESIGN "Outbox")."""
    from events.kafka_clients import make_producer
    from events.outbox import OutboxRelay

    producer = make_producer(kafka, client_id=f"aims-outbox-{name}")
    return OutboxRelay(register, producer, f"router:{name}", signing_key)


def anchor_publisher(
    register: Register, kafka: KafkaConnection, name: str, settings: AimsSettings
) -> AnchorPublisher | None:
    """The router's publisher of audit anchors; None (and a warning) when the register has no audit key:
    an anchor's tag needs it, and an unkeyed log could be re-chained whatever was published."""
    import logging

    from events.anchors import AnchorPublisher
    from events.kafka_clients import make_producer

    if register.audit_key is None:
        logging.getLogger("aims.anchors").warning(
            "no AIMS_AUDIT_KEY: the audit log is not keyed and its head is not anchored outside the register"
        )
        return None
    producer = make_producer(kafka, client_id=f"aims-anchors-{name}")
    return AnchorPublisher(
        register, producer, settings.audit_anchors_topic, register.audit_key, settings.audit_anchor_seconds
    )


def flow_runtime(settings: AimsSettings | None = None) -> Runtime:
    """What a flow-run process uses: opens the register (schema checked) and builds the clients."""
    from connectors.jira_issues import jira_from_settings
    from connectors.mlflow_registry import registry_from_settings
    from connectors.register import open_register
    from connectors.slack import slack_from_settings
    from schemas.settings import load_settings

    settings = settings or load_settings()
    register = open_register(settings)
    return Runtime(
        settings=settings,
        register=register,
        load_policy=lambda: policy_if_any(settings),
        chat=slack_from_settings(settings),
        tracker=jira_from_settings(settings),
        outbox=outbox_sender(
            register, kafka_connection(settings), "aims-flow-outbox", settings.event_signing_key
        ),
        mlflow=registry_from_settings(settings),
    )


def gateway_desk(settings: AimsSettings) -> tuple[DecisionDesk, KafkaOutbox]:
    """What the gateway answers clicks and webhooks with, and the outbox to close when it stops.

    The policy is read again for each decision: the gateway runs for weeks, and an approver added to
    the policy file counts from the next click, without a restart.
    """
    from connectors.jira_issues import jira_from_settings
    from connectors.mlflow_registry import registry_from_settings
    from connectors.register import open_register
    from connectors.slack import slack_from_settings
    from gateway.desk import DecisionDesk
    from schemas.policy_file import load_policy

    kafka = kafka_connection(settings)
    if kafka is None:
        raise RuntimeError("the gateway needs KAFKA_BOOTSTRAP_SERVERS (set by `aims up`)")
    register = open_register(settings)
    outbox = outbox_sender(register, kafka, "aims-gateway", settings.event_signing_key)
    desk = DecisionDesk(
        register,
        lambda: load_policy(settings.policy_file),
        settings.events_topic,
        lambda keys: outbox.send(keys, "gateway"),
        slack_from_settings(settings),
        jira_from_settings(settings),
        registry_from_settings(settings),
    )
    return desk, outbox
