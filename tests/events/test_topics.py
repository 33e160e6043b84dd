"""The topics a process needs: how many copies they get and how many a write must reach (a replicated
cluster, issue 23); created where missing, or, with AIMS_KAFKA_CREATE_TOPICS=false (topics
managed as Strimzi KafkaTopic resources, a Kafka user without the Create right), only checked.

A fake admin client stands in for the broker; creating topics on a real one is covered by the
integration tests (tests/integration/test_kafka_security.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from aims.cli import main
from events.kafka_clients import KafkaConnection
from events.topics import MissingTopicsError, check_topics, missing_topics, prepare_topics, topic_specs
from infra.prefect_server import prefect_client_env
from schemas.settings import AimsSettings

REPO = Path(__file__).resolve().parents[2]
KAFKA = KafkaConnection("broker:9093")


class FakeAdmin:
    """What `make_admin` returns: the topics the cluster has; records what was asked of it."""

    def __init__(self, topics: list[str]) -> None:
        self.topics = topics
        self.created: list[Any] = []
        self.closed = False

    def list_topics(self) -> list[str]:
        return list(self.topics)

    def create_topics(self, new_topics: list[Any]) -> None:
        self.created.extend(new_topics)
        self.topics.extend(t.name for t in new_topics)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> FakeAdmin:
    fake = FakeAdmin(["aims.events", "__consumer_offsets"])
    monkeypatch.setattr("events.topics.make_admin", lambda kafka, **_: fake)
    return fake


def specs() -> list[Any]:
    return topic_specs(AimsSettings.model_validate({}))


# -- the setting -----------------------------------------------------------------------------------


def test_topics_are_created_unless_the_setting_says_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIMS_KAFKA_CREATE_TOPICS", raising=False)
    assert AimsSettings().kafka_create_topics is True
    for text, expected in [("false", False), ("0", False), ("no", False), ("true", True), ("1", True)]:
        monkeypatch.setenv("AIMS_KAFKA_CREATE_TOPICS", text)
        assert AimsSettings().kafka_create_topics is expected, text


def test_a_setting_that_is_not_a_yes_or_no_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMS_KAFKA_CREATE_TOPICS", "sometimes")
    with pytest.raises(ValidationError) as caught:
        AimsSettings()
    assert caught.value.errors()[0]["loc"] == ("kafka_create_topics",)


# -- the check -------------------------------------------------------------------------------------


def test_missing_topics_are_named_in_the_order_of_the_specs() -> None:
    assert missing_topics(["aims.events"], specs()) == ["aims.events.dlq", "aims.audit.anchors"]
    assert missing_topics([s.name for s in specs()], specs()) == []


def test_the_check_names_every_missing_topic_and_creates_none(admin: FakeAdmin) -> None:
    with pytest.raises(MissingTopicsError) as caught:
        check_topics(KAFKA, specs())
    assert caught.value.missing == ["aims.events.dlq", "aims.audit.anchors"]
    message = str(caught.value)
    assert "broker:9093" in message and "aims.events.dlq, aims.audit.anchors" in message
    assert "AIMS_KAFKA_CREATE_TOPICS" in message and "KafkaTopic" in message
    assert admin.created == [] and admin.closed


def test_the_check_passes_when_every_topic_exists(admin: FakeAdmin) -> None:
    admin.topics.extend(["aims.events.dlq", "aims.audit.anchors"])
    assert prepare_topics(KAFKA, specs(), create=False) == []
    assert admin.created == []


def test_with_creation_on_the_missing_topics_are_created(admin: FakeAdmin) -> None:
    assert prepare_topics(KAFKA, specs(), create=True) == ["aims.events.dlq", "aims.audit.anchors"]
    assert [t.name for t in admin.created] == ["aims.events.dlq", "aims.audit.anchors"]


def test_a_router_that_may_not_create_topics_stops_naming_the_missing_ones(
    admin: FakeAdmin, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # `aims router` sets the Prefect client's variables for itself: restored after the test.
    for variable in prefect_client_env(tmp_path, "http://127.0.0.1:9/api"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("PREFECT_CLIENT_MAX_RETRIES", raising=False)
    monkeypatch.setenv("AIMS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("AIMS_POLICY_FILE", str(REPO / "policy" / "aims-policy.yaml"))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:9093")
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("AIMS_KAFKA_CREATE_TOPICS", "false")
    assert main(["router"]) == 2
    err = capsys.readouterr().err
    assert "lacks the topic(s) aims.events.dlq, aims.audit.anchors" in err
    assert admin.created == []


# -- copies and the in-sync minimum (issue 23: a replicated cluster) ------------------------------


def _replication_settings(**values: object) -> AimsSettings:
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
    specs = topic_specs(_replication_settings(**values))
    assert {spec.replication for spec in specs} == {copies}
    assert {dict(spec.config)["min.insync.replicas"] for spec in specs} == {str(in_sync)}


def test_more_in_sync_copies_than_copies_is_refused_with_what_to_change() -> None:
    with pytest.raises(ValidationError, match="AIMS_MIN_INSYNC_REPLICAS or raise AIMS_REPLICATION_FACTOR"):
        _replication_settings(replication_factor=2, min_insync_replicas=3)


@pytest.mark.parametrize("nodes", [0, 6])
def test_a_local_cluster_has_one_to_five_nodes(nodes: int) -> None:
    with pytest.raises(ValidationError, match="kafka_local_brokers"):
        _replication_settings(kafka_local_brokers=nodes)
