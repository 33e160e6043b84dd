"""Topic names and their creation. Partition counts come from the settings."""

from __future__ import annotations

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
