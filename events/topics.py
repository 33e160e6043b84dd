"""Topic names and their creation. Partition counts come from the settings.

Where the topics are managed outside the application (Strimzi's KafkaTopic resources) and its Kafka
users may not create topics, `AIMS_KAFKA_CREATE_TOPICS=false` makes `prepare_topics` only check
that they exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from events.kafka_clients import KafkaConnection, make_admin
from schemas.settings import AimsSettings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int
    config: tuple[tuple[str, str], ...] = ()


def topic_specs(settings: AimsSettings) -> list[TopicSpec]:
    copies = settings.topic_replication
    # Producers ask for every in-sync copy (acks=all); this is how many must be there for a write to
    # count, so that an acknowledged event survives the loss of a node.
    in_sync = (("min.insync.replicas", str(settings.topic_min_insync)),)
    return [
        TopicSpec(settings.events_topic, settings.events_partitions, copies, in_sync),
        # Dead letters are evidence of what was refused: keep them a long time.
        TopicSpec(
            settings.dead_letter_topic,
            settings.dead_letter_partitions,
            copies,
            (*in_sync, ("retention.ms", str(90 * 24 * 3600 * 1000)), ("max.message.bytes", "2097152")),
        ),
        # The audit log's anchors: kept forever and never compacted, the record outside the register
        # that a rewrite of the register cannot reach (production: deny deletes on it by ACL).
        TopicSpec(
            settings.audit_anchors_topic,
            1,
            copies,
            (*in_sync, ("retention.ms", "-1"), ("retention.bytes", "-1"), ("cleanup.policy", "delete")),
        ),
    ]


class MissingTopicsError(RuntimeError):
    """Topics the settings name are not on the cluster, and this process is not to create them."""

    def __init__(self, bootstrap: str, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(
            f"Kafka at {bootstrap} lacks the topic(s) {', '.join(missing)}; AIMS_KAFKA_CREATE_TOPICS=false, "
            "so they are not created here: create them where the topics are managed (on Kubernetes, "
            "the KafkaTopic resources of infra/deploy/strimzi/topics.yaml), or set "
            "AIMS_KAFKA_CREATE_TOPICS=true for a Kafka user allowed to create topics"
        )


def missing_topics(existing: Iterable[str], specs: list[TopicSpec]) -> list[str]:
    """The names of `specs` not among `existing`, in the order of `specs`."""
    present = set(existing)
    return [s.name for s in specs if s.name not in present]


def check_topics(kafka: KafkaConnection, specs: list[TopicSpec]) -> None:
    """Raise MissingTopicsError unless every topic of `specs` exists. Creates nothing."""
    admin = make_admin(kafka)
    try:
        missing = missing_topics(admin.list_topics(), specs)
    finally:
        admin.close()
    if missing:
        raise MissingTopicsError(kafka.bootstrap, missing)


def prepare_topics(kafka: KafkaConnection, specs: list[TopicSpec], create: bool) -> list[str]:
    """The topics ready for use: created where missing (`create`, AIMS_KAFKA_CREATE_TOPICS), else
    only checked. Returns the names created."""
    if create:
        return ensure_topics(kafka, specs)
    check_topics(kafka, specs)
    return []


def ensure_topics(kafka: KafkaConnection, specs: list[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet; return the names created. Safe to repeat."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = make_admin(kafka)
    try:
        existing = set(admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        created = []
        for spec in missing:
            try:
                admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, spec.replication, topic_configs=dict(spec.config))]
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass  # another router or `aims up` won the race
        return created
    finally:
        admin.close()
