"""The broker launcher's own choices, checked without starting Java."""

from __future__ import annotations

from infra.kafka_broker import KafkaBroker


def test_cluster_ids_never_start_with_a_dash_which_the_storage_tool_would_read_as_an_option() -> None:
    # 1 in 64 random ids starts with "-"; a few thousand draws make a regression near-certain to show.
    ids = [KafkaBroker._random_cluster_id() for _ in range(3000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
