"""Crashes and outages lose nothing and double nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from events.codec import encode_structured
from events.kafka_clients import make_admin
from infra.processes import ManagedProcess
from tests.factories import mixed_events
from tests.support import SessionStack, poll


@pytest.fixture(autouse=True, scope="module")
def _no_worker(stack: SessionStack) -> Iterator[None]:
    # These tests count flow runs created; executing hundreds of them would only slow the suite.
    stack.stop_worker()
    yield
    stack.ensure_worker()


def _publish(stack: SessionStack, topic: str, events) -> None:  # type: ignore[no-untyped-def]
    stack.publish_raw(topic, [(e.key.encode(), *encode_structured(e)) for e in events])


def _assert_exactly_once(stack: SessionStack, keys: list[str]) -> None:
    stack.wait_for_runs(keys, timeout=300)
    time.sleep(2)  # anything doubled would show up now
    api = stack.api()
    runs = api.runs_for_keys(keys)
    api.close()
    counts: dict[str | None, int] = {}
    for run in runs:
        counts[run.idempotency_key] = counts.get(run.idempotency_key, 0) + 1
    assert set(counts) == set(keys), "every event has a flow run"
    assert max(counts.values()) == 1, "no event has two flow runs"


@contextmanager
def _router_mid_batch(
    stack: SessionStack, topics: dict[str, str], name: str
) -> Iterator[tuple[ManagedProcess, list[str]]]:
    """A router process that has consumed a 60-event batch and created its first runs."""
    events = mixed_events(60)
    keys = [e.dedup_key for e in events]
    _publish(stack, topics["AIMS_EVENTS_TOPIC"], events)
    router = stack.router_process(topics, name)
    api = stack.api()
    try:
        poll(lambda: len(api.runs_for_keys(keys)) >= 5, 180, "the first flow runs")
        yield router, keys
    finally:
        router.stop()
        api.close()
        stack.discard_runs(keys)


def _assert_committed_were_accepted(stack: SessionStack, topics: dict[str, str], keys: list[str]) -> None:
    """Nothing is committed past a record whose flow run was not accepted."""
    api = stack.api()
    accepted = {r.idempotency_key for r in api.runs_for_keys(keys)}
    api.close()
    committed = stack.committed_by_partition(topics["AIMS_CONSUMER_GROUP"])
    assert sum(committed.values()) < len(keys), "the router should stop before the batch ends"
    for record in stack.read_topic(topics["AIMS_EVENTS_TOPIC"], expected=len(keys)):
        if record.offset < committed.get(record.partition, 0):
            raw = json.loads(record.value)
            assert f"{raw['source']}#{raw['id']}" in accepted, (record.partition, record.offset)


def _restart_and_assert_exactly_once(stack: SessionStack, topics: dict[str, str], keys: list[str]) -> None:
    restarted = stack.router_process(topics, f"{topics['AIMS_CONSUMER_GROUP'][-6:]}-again")
    try:
        _assert_exactly_once(stack, keys)
        poll(lambda: stack.committed(topics["AIMS_CONSUMER_GROUP"]) == len(keys), 120, "all committed")
    finally:
        restarted.stop()


def test_router_killed_before_commit_loses_and_duplicates_nothing(
    stack: SessionStack, topics: dict[str, str]
) -> None:
    with _router_mid_batch(stack, topics, "crash") as (router, keys):
        router.kill()
        _assert_committed_were_accepted(stack, topics, keys)
        _restart_and_assert_exactly_once(stack, topics, keys)


def test_prefect_down_for_20_seconds_mid_stream(stack: SessionStack, topics: dict[str, str]) -> None:
    events = mixed_events(30)
    keys = [e.dedup_key for e in events]
    with stack.router(topics) as router:
        _publish(stack, topics["AIMS_EVENTS_TOPIC"], events[:10])
        stack.wait_for_runs(keys[:10])
        stack.server.stop()
        try:
            _publish(stack, topics["AIMS_EVENTS_TOPIC"], events[10:])
            time.sleep(20)
            # Holding: nothing past the accepted events was committed, and the router is alive.
            assert stack.committed(topics["AIMS_CONSUMER_GROUP"]) <= 10
            assert router.stats.holding_since is not None
        finally:
            stack.server.start()
        _assert_exactly_once(stack, keys)
        poll(lambda: stack.committed(topics["AIMS_CONSUMER_GROUP"]) == len(events), 120, "all committed")
    stack.discard_runs(keys)


def test_two_routers_share_200_events_exactly_once(stack: SessionStack, topics: dict[str, str]) -> None:
    events = mixed_events(200, subjects=40)
    keys = [e.dedup_key for e in events]
    first = stack.router_process(topics, "pair-a")
    second = stack.router_process(topics, "pair-b")
    api = stack.api()
    try:
        poll(
            lambda: stack.heartbeat("pair-a").get("assigned") and stack.heartbeat("pair-b").get("assigned"),
            90,
            "both routers holding partitions",
        )
        _publish(stack, topics["AIMS_EVENTS_TOPIC"], events)
        _assert_exactly_once(stack, keys)
        poll(lambda: stack.committed(topics["AIMS_CONSUMER_GROUP"]) == 200, 120, "200 offsets committed")

        def shares() -> list[int] | None:
            routed = [int(stack.heartbeat(n).get("routed", 0)) for n in ("pair-a", "pair-b")]
            return routed if sum(routed) >= 200 else None

        routed = poll(shares, 30, "heartbeats counting every event")
        assert all(r > 0 for r in routed), f"both routers took a share: {routed}"
    finally:
        first.stop()
        second.stop()
        api.close()
        stack.discard_runs(keys)


def test_sigterm_commits_what_was_accepted_and_leaves_the_group(
    stack: SessionStack, topics: dict[str, str]
) -> None:
    with _router_mid_batch(stack, topics, "term") as (router, keys):
        assert router.stop(timeout=60) == 0, router.failure()
        _assert_committed_were_accepted(stack, topics, keys)
        admin = make_admin(stack.bootstrap)
        group = topics["AIMS_CONSUMER_GROUP"]
        members = admin.describe_groups([group])[group]["members"]
        admin.close()
        assert members == [], "the router left the group on the way out"
        _restart_and_assert_exactly_once(stack, topics, keys)
