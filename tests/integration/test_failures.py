"""Crashes, outages and everyday operations lose nothing, double nothing, and keep routing.

The everyday ones (rebalances, a broker restart, records at the size limit, a decision that waits for
its run) each reproduce what an operator saw stop or strand the routing (issue 17).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from events.codec import encode_structured
from events.dead_letter import REASON, REFERENCE, SOURCE_OFFSET
from events.kafka_clients import make_admin, make_producer
from infra.processes import ManagedProcess
from schemas.events import AimsEvent, parse_event
from tests.factories import SOURCE, incident_event, mixed_events
from tests.support import SessionStack, poll

# The local broker's message.max.bytes (infra/kafka_broker.py): the limit a record batch may reach.
BROKER_LIMIT = 2 * 1024 * 1024


@pytest.fixture(autouse=True, scope="module")
def _pool_paused(stack: SessionStack) -> Iterator[None]:
    # These tests count flow runs created and read the register; executing hundreds of them would
    # only slow the suite (and a request-approval run must stay queued for the decision test).
    with stack.pool_paused():
        yield


def _publish(stack: SessionStack, topic: str, events: list[AimsEvent]) -> None:
    stack.publish_raw(topic, [(e.key.encode(), *encode_structured(e)) for e in events])


def _assert_exactly_once(
    stack: SessionStack,
    topics: dict[str, str],
    keys: list[str],
    timeout: float = 300,
    commit_timeout: float = 120,
) -> None:
    stack.wait_for_runs(keys, timeout=timeout)
    # The router creates a record's run before it commits the record's offset: once exactly every
    # offset is committed, any doubled run already exists (no fixed sleep hoping it shows up).
    group = topics["AIMS_CONSUMER_GROUP"]
    poll(lambda: stack.committed(group) == len(keys), commit_timeout, f"{len(keys)} offsets committed")
    api = stack.api()
    try:
        runs = api.runs_for_keys(keys)
    finally:
        api.close()
    counts: dict[str | None, int] = {}
    for run in runs:
        counts[run.idempotency_key] = counts.get(run.idempotency_key, 0) + 1
    assert set(counts) == set(keys), "every event has a flow run"
    doubled = {k: n for k, n in counts.items() if n > 1}
    assert not doubled, f"events with two flow runs: {doubled}"


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
        _assert_exactly_once(stack, topics, keys)
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
        _assert_exactly_once(stack, topics, keys)
        poll(lambda: stack.committed(topics["AIMS_CONSUMER_GROUP"]) == len(events), 120, "all committed")
    stack.discard_runs(keys)


def test_sigterm_commits_what_was_accepted_and_leaves_the_group(
    stack: SessionStack, topics: dict[str, str]
) -> None:
    with _router_mid_batch(stack, topics, "term") as (router, keys):
        assert router.stop(timeout=60) == 0, router.failure()
        _assert_committed_were_accepted(stack, topics, keys)
        admin = make_admin(stack.kafka)
        group = topics["AIMS_CONSUMER_GROUP"]
        members = admin.describe_groups([group])[group]["members"]
        admin.close()
        assert members == [], "the router left the group on the way out"
        _restart_and_assert_exactly_once(stack, topics, keys)


# -- everyday operations (issue 17) ------------------------------------------------------------


def _all_committed(stack: SessionStack, topics: dict[str, str], count: int, timeout: float = 120) -> None:
    poll(
        lambda: stack.committed(topics["AIMS_CONSUMER_GROUP"]) == count,
        timeout,
        f"{count} offsets committed",
    )


def test_routers_joining_leaving_and_crashing_during_a_burst_lose_and_double_nothing(
    stack: SessionStack, topics: dict[str, str]
) -> None:
    """A second router joins mid-burst, leaves, a third joins and is killed: every event gets exactly
    one run, the first router never exits, and the killed one's partitions come back to it."""
    events = mixed_events(150, subjects=40)
    keys = [e.dedup_key for e in events]
    first = stack.router_process(topics, "steady")
    api = stack.api()
    others = []
    try:
        poll(lambda: stack.heartbeat("steady").get("partitions"), 90, "the first router's partitions")
        _publish(stack, topics["AIMS_EVENTS_TOPIC"], events)
        poll(lambda: len(api.runs_for_keys(keys)) >= 15, 120, "the burst to be routing")

        joiner = stack.router_process(topics, "joiner")
        others.append(joiner)
        poll(lambda: stack.heartbeat("joiner").get("partitions"), 90, "the joiner's partitions")
        poll(lambda: len(api.runs_for_keys(keys)) >= 50, 180, "routing with two routers")
        assert joiner.stop(timeout=60) == 0, joiner.failure()  # leaves the group on the way out

        crasher = stack.router_process(topics, "crasher")
        others.append(crasher)
        poll(lambda: stack.heartbeat("crasher").get("partitions"), 90, "the third router's partitions")
        crasher.kill()
        killed_at = time.monotonic()
        poll(
            lambda: len(stack.heartbeat("steady").get("partitions") or []) == 4,
            120,
            "the killed router's partitions back at the first one",
        )
        print(f"partitions of a killed router taken over after {time.monotonic() - killed_at:.1f} s")

        _assert_exactly_once(stack, topics, keys)
        _all_committed(stack, topics, len(events))
        assert first.alive(), f"the first router exited during the rebalances: {first.failure()}"
    finally:
        for proc in (first, *others):
            proc.stop()
        api.close()
        stack.discard_runs(keys)


def test_broker_stopped_and_restarted_the_router_holds_and_resumes_at_the_same_address(
    stack: SessionStack, topics: dict[str, str]
) -> None:
    events = mixed_events(100, subjects=30)
    keys = [e.dedup_key for e in events]
    bootstrap = stack.bootstrap
    api = stack.api()
    try:
        with stack.router(topics) as router:
            _publish(stack, topics["AIMS_EVENTS_TOPIC"], events)
            poll(lambda: len(api.runs_for_keys(keys)) >= 5, 120, "the first flow runs")
            stack.broker.stop()
            try:
                poll(lambda: router.holding_on() == "kafka", 120, "the router to hold on Kafka")
                # Longer than a commit's request timeout (30 s), which used to end the router.
                deadline = time.monotonic() + 35
                while time.monotonic() < deadline:
                    assert router.holding_on() is not None, "nothing settled may be taken for committed"
                    time.sleep(1)
                heartbeat = stack.heartbeat(router.name)
                assert heartbeat["state"] == "holding" and heartbeat["holding_on"] == "kafka", heartbeat
            finally:
                restarted = stack.broker.start()
            assert restarted == bootstrap, "a restarted broker keeps its address, or nothing finds it"
            _assert_exactly_once(stack, topics, keys, commit_timeout=180)
            _all_committed(stack, topics, len(events), timeout=180)
            poll(lambda: router.holding_on() is None, 60, "the router to stop holding")
            assert router.stats.routed >= len(events)
    finally:
        api.close()
        stack.discard_runs(keys)


def _largest_accepted(stack: SessionStack, topic: str, key: bytes) -> int:
    """The largest value the broker takes in one record with this key: a record at its very limit."""
    from kafka.errors import MessageSizeTooLargeError

    # One try per size: no retries, so no idempotence either (the project's producers have it on,
    # and Kafka's client refuses the two together).
    producer = make_producer(
        stack.kafka, max_request_size=2 * BROKER_LIMIT, retries=0, enable_idempotence=False
    )
    try:
        size = BROKER_LIMIT - 40
        while True:
            try:
                producer.send(topic, key=key, value=b"x" * size).get(timeout=30)
                return size
            except MessageSizeTooLargeError:
                size -= 1
    finally:
        producer.close()


def test_records_at_the_size_limit_are_dead_lettered_and_their_partition_goes_on(
    stack: SessionStack, topics: dict[str, str]
) -> None:
    key = f"limit-{uuid.uuid4().hex[:6]}"
    topic = topics["AIMS_EVENTS_TOPIC"]
    at_limit = _largest_accepted(stack, topic, key.encode())
    big = make_producer(stack.kafka, max_request_size=2 * BROKER_LIMIT)
    try:
        big.send(topic, key=key.encode(), value=b"y" * (at_limit - 5)).get(timeout=30)
    finally:
        big.close()
    after = [incident_event(key) for _ in range(3)]  # the same subject: the same partition, behind them
    _publish(stack, topic, after)
    with stack.router(topics) as router:
        stack.wait_for_runs([e.dedup_key for e in after])
        _all_committed(stack, topics, 5)
        assert router.stats.dead_lettered == 2
    letters = stack.read_topic(topics["AIMS_DEAD_LETTER_TOPIC"], expected=2)
    assert len(letters) == 2
    for letter in letters:
        headers = dict(letter.headers)
        assert headers[REASON] == b"oversize"
        assert len(letter.value) < BROKER_LIMIT
        if headers.get(REFERENCE) == b"1":
            body = json.loads(letter.value)
            assert body["reference"]["topic"] == topic
            assert body["reference"]["offset"] == int(headers[SOURCE_OFFSET])
            assert body["size"] in (at_limit, at_limit - 5) and body["prefix"][:10] in ("x" * 10, "y" * 10)
    references = [letter for letter in letters if dict(letter.headers).get(REFERENCE) == b"1"]
    assert references, "a record at the limit has no room for the dead-letter headers: it is a reference"
    result = stack.aims("dlq", "replay", *(f"{r.partition}:{r.offset}" for r in references), **topics)
    assert result.returncode == 2 and "nothing was replayed" in result.stderr, result.stderr


def _approval_requested(approval_id: str) -> AimsEvent:
    return parse_event(
        {
            "specversion": "1.0",
            "id": f"req-{approval_id}",
            "source": SOURCE,
            "type": "org.aims.approval.requested",
            "data": {
                "approval_id": approval_id,
                "subject": "go-live:waiting-test",
                "requested_decision": "go-live",
                "risk_level": "medium",
                "requested_by": "tests",
            },
        }
    )


def _decision(approval_id: str) -> AimsEvent:
    return parse_event(
        {
            "specversion": "1.0",
            "id": f"decision-{approval_id}",
            "source": SOURCE,
            "type": "org.aims.approval.decision.submitted",
            "data": {
                "approval_id": approval_id,
                "decision_id": f"d-{approval_id}",
                "decision": "approve",
                "approver": "risk.officer@northwind.example",
                "channel": "cli",
                "reason": "fine",
                "decided_at": datetime.now(UTC).isoformat(),
            },
        }
    )


def test_a_decision_waiting_for_its_run_holds_only_its_own_subject(
    stack: SessionStack, topics: dict[str, str]
) -> None:
    approval_id = f"waiting-{uuid.uuid4().hex[:8]}"
    request, decision = _approval_requested(approval_id), _decision(approval_id)
    others = mixed_events(40, subjects=40)
    keys = [e.dedup_key for e in others]
    api = stack.api()
    try:
        with stack.router(topics) as router:
            _publish(stack, topics["AIMS_EVENTS_TOPIC"], [request])
            (run,) = stack.wait_for_runs([request.dedup_key])  # queued: the pool is paused
            _publish(stack, topics["AIMS_EVENTS_TOPIC"], [decision])
            poll(lambda: router.stats.consumed >= 2, 60, "the decision taken, its run not waiting yet")
            _publish(stack, topics["AIMS_EVENTS_TOPIC"], others)
            # Every other subject is routed while the decision still waits for its run.
            stack.wait_for_runs(keys, timeout=180)

            def waiting() -> dict[str, Any] | None:
                # Once the others are routed, only the decision is retried: the router routes, one
                # subject waits (a busy SQLite Prefect may make it hold for a moment before that).
                beat = stack.heartbeat(router.name)
                return beat if beat.get("waiting_subjects") == 1 and beat.get("state") == "routing" else None

            heartbeat = poll(waiting, 60, "a heartbeat with the waiting subject, not holding")
            assert heartbeat["holding_on"] is None
            decision_partition = _partition_of(stack, topics, decision.key)
            committed = stack.committed_by_partition(topics["AIMS_CONSUMER_GROUP"])
            decision_offset = _offset_of(stack, topics, decision.id)
            assert committed.get(decision_partition, 0) <= decision_offset, "never committed past it"
            # The run goes away (cancelled by someone): the decision has nothing to wake and settles.
            api.delete_run(run.id)
            _all_committed(stack, topics, 2 + len(others))
    finally:
        api.close()
        stack.discard_runs(keys)


def _records(stack: SessionStack, topics: dict[str, str]) -> list[Any]:
    return stack.read_topic(topics["AIMS_EVENTS_TOPIC"], expected=1, timeout=10)


def _partition_of(stack: SessionStack, topics: dict[str, str], key: str) -> int:
    return next(r.partition for r in _records(stack, topics) if r.key == key.encode())


def _offset_of(stack: SessionStack, topics: dict[str, str], event_id: str) -> int:
    return next(r.offset for r in _records(stack, topics) if json.loads(r.value)["id"] == event_id)
