"""How many copies the topics get, and how many a write must reach (issue 23: a replicated cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from events.topics import topic_specs
from schemas.settings import AimsSettings


def _settings(**values: object) -> AimsSettings:
    return AimsSettings(**{"state_dir": Path("unused"), "kafka_bootstrap_servers": None, **values})


@pytest.mark.parametrize(
    ("values", "copies", "in_sync"),
    [
        ({}, 1, 1),  # one local node, as `aims up` has always run
        ({"kafka_local_brokers": 3}, 3, 2),  # `aims up --brokers 3`
        ({"kafka_local_brokers": 5}, 3, 2),  # more nodes, still three copies
        ({"kafka_local_brokers": 2}, 2, 1),
        ({"kafka_bootstrap_servers": "k1:9092,k2:9092"}, 1, 1),  # an existing cluster's own topics
        ({"kafka_bootstrap_servers": "k1:9092", "replication_factor": 3}, 3, 2),
        ({"replication_factor": 3, "min_insync_replicas": 3}, 3, 3),
    ],
)
def test_every_topic_gets_the_copies_and_the_in_sync_minimum(
    values: dict[str, object], copies: int, in_sync: int
) -> None:
    specs = topic_specs(_settings(**values))
    assert {spec.replication for spec in specs} == {copies}
    assert {dict(spec.config)["min.insync.replicas"] for spec in specs} == {str(in_sync)}


def test_more_in_sync_copies_than_copies_is_refused_with_what_to_change() -> None:
    with pytest.raises(ValidationError, match="AIMS_MIN_INSYNC_REPLICAS or raise AIMS_REPLICATION_FACTOR"):
        _settings(replication_factor=2, min_insync_replicas=3)


@pytest.mark.parametrize("nodes", [0, 6])
def test_a_local_cluster_has_one_to_five_nodes(nodes: int) -> None:
    with pytest.raises(ValidationError, match="kafka_local_brokers"):
        _settings(kafka_local_brokers=nodes)
