"""The router's consumer settings: a crashed router's partitions move within the session timeout."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError

from connectors.prefect_runs import PrefectLauncher
from events.kafka_clients import KafkaConnection
from events.router import Router
from schemas.settings import AimsSettings


def _router(**settings: int) -> Router:
    # Nothing is started: the launcher factory is only called by run().
    return Router(AimsSettings(**settings), KafkaConnection("127.0.0.1:9"), PrefectLauncher, name="r1")


def test_a_crashed_routers_partitions_wait_seconds_not_kafkas_45() -> None:
    options = _router().consumer_options()
    assert options["session_timeout_ms"] <= 10_000, "Kafka's default of 45 s is what operators saw"
    assert options["heartbeat_interval_ms"] * 3 <= options["session_timeout_ms"]
    assert options["client_id"] == "aims-router-r1"


def test_the_session_and_heartbeat_come_from_the_settings() -> None:
    options = _router(
        consumer_session_timeout_ms=30_000, consumer_heartbeat_interval_ms=5_000
    ).consumer_options()
    assert (options["session_timeout_ms"], options["heartbeat_interval_ms"]) == (30_000, 5_000)


@pytest.mark.parametrize(("session", "heartbeat"), [(10_000, 4_000), (6_000, 3_000), (10_000, 10_000)])
def test_a_heartbeat_that_does_not_fit_the_session_is_refused_with_what_to_change(
    session: int, heartbeat: int
) -> None:
    with pytest.raises(ValidationError, match="AIMS_CONSUMER_HEARTBEAT_INTERVAL_MS"):
        AimsSettings(consumer_session_timeout_ms=session, consumer_heartbeat_interval_ms=heartbeat)


def test_below_the_brokers_minimum_session_is_refused() -> None:
    with pytest.raises(ValidationError, match="consumer_session_timeout_ms"):
        AimsSettings(consumer_session_timeout_ms=3_000, consumer_heartbeat_interval_ms=1_000)


def test_a_broker_outage_is_what_the_router_names_even_while_a_launch_is_refused() -> None:
    # Stop 25's CI: with the broker down, a busy Prefect refused one launch of the records already
    # fetched, and the heartbeat said "holding on prefect" — sending the operator to the wrong
    # place. What stops everything (Kafka, then the register) comes before a launch that waits.
    router = _router()
    router.stats.holding_since = 1.0
    assert router.holding_on() == "prefect"
    router._in_trouble("register", "register write failed: gone")
    assert router.holding_on() == "register"
    router._in_trouble("kafka", "commit failed: KafkaConnectionError")
    assert router.holding_on() == "kafka"
    router._out_of_trouble("kafka")
    router._out_of_trouble("register")
    assert router.holding_on() == "prefect"


class Anchors:
    """Stands in for events.anchors.AnchorPublisher: counts its ticks, fails the first one."""

    def __init__(self, router: Router) -> None:
        self.router, self.ticks = router, 0

    def tick(self) -> None:
        self.ticks += 1
        if self.ticks == 1:
            raise ConnectionError("broker away")  # logged; the next pass tries again
        if self.ticks == 3:
            self.router.stop()


def test_the_relay_thread_publishes_the_audit_anchor_each_pass_and_survives_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = Router(AimsSettings(), "127.0.0.1:9", PrefectLauncher, name="r1")
    anchors = Anchors(router)
    router._anchors = anchors  # type: ignore[assignment]
    router.OUTBOX_EVERY = 0.01
    router._relay_outbox()  # returns once stopped: no outbox, anchors only
    assert anchors.ticks == 3
    assert "publishing the audit anchor failed: broker away" in caplog.text


class SentAtOnce:
    """What the router's dead-letter producer hands back, already acknowledged."""

    is_done = True
    exception = None

    def succeeded(self) -> bool:
        return True

    def add_both(self, callback: Callable[..., None], *args: object) -> None:
        callback(*args, None)  # answered already: kafka-python calls back at once


class DeadLetterTopic:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None]] = []

    def send(self, topic: str, *, key: bytes | None, value: bytes | None, headers: object) -> SentAtOnce:
        self.sent.append((topic, value))
        return SentAtOnce()


def test_a_flood_of_malformed_records_is_dead_lettered_whole_with_a_line_per_reason_not_per_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from types import SimpleNamespace

    from kafka.structs import TopicPartition

    from events.dead_letter import DeadLetterLog

    now = [0.0]
    router, topic = _router(), DeadLetterTopic()
    router._dead_letter_log = DeadLetterLog(window=10, clock=lambda: now[0])
    kinds = [b"not json {", b"[1, 2]", b'{"id": "x"}']  # malformed, malformed, invalid-envelope
    for offset in range(600):
        router._take(  # the consumer loop's own steps, without a broker
            SimpleNamespace(
                topic="aims.events", partition=0, offset=offset, key=b"k", value=kinds[offset % 3], headers=[]
            )
        )
    with caplog.at_level("WARNING", logger="aims.router"):
        router._settle(topic)
        router._check_sent()
        assert len(caplog.records) == 2, [r.getMessage() for r in caplog.records]
        now[0] += 10
        router._settle(topic)
    assert len(topic.sent) == 600 and router.stats.dead_lettered == 600, "every record reaches the topic"
    assert router._ledger.ready() == {TopicPartition("aims.events", 0): 600}, "and may be committed"
    summary = caplog.records[-1].getMessage()
    assert "598 more" in summary and "malformed 399" in summary and "invalid-envelope 199" in summary


class Partitions:
    """The consumer's side of flow control: what is assigned, what is paused."""

    def __init__(self, *assigned: object) -> None:
        self.assigned, self.paused = set(assigned), set[object]()

    def assignment(self) -> set[object]:
        return set(self.assigned)

    def pause(self, *partitions: object) -> None:
        self.paused |= set(partitions)

    def resume(self, *partitions: object) -> None:
        self.paused -= set(partitions)


def test_dead_letters_done_behind_a_waiting_event_do_not_pause_its_partition() -> None:
    """A good event waiting for Prefect must not stop the malformed records behind it from being
    read and dead-lettered: only records still being worked on count toward the in-flight cap."""
    from types import SimpleNamespace

    from kafka.structs import TopicPartition

    tp = TopicPartition("aims.events", 0)
    router, topic, consumer = _router(router_max_in_flight=10), DeadLetterTopic(), Partitions(tp)
    waiting = object()  # a good event whose run Prefect has not created yet
    router._ledger.admit(tp, 0, waiting, 1)
    for offset in range(1, 101):
        router._take(
            SimpleNamespace(topic=tp.topic, partition=0, offset=offset, key=b"k", value=b"{", headers=[])
        )
    router._settle(topic)
    router._check_sent()
    router._flow_control(consumer)
    assert len(topic.sent) == 100 and router._ledger.ready() == {}, "dead-lettered, not committable yet"
    assert consumer.paused == set(), "100 records done behind 1 in flight: the partition keeps flowing"

    for offset in range(101, 111):  # ten more in flight: the cap
        router._ledger.admit(tp, offset, object(), 1)
    router._flow_control(consumer)
    assert consumer.paused == {tp}


class LostRejoin:
    """A consumer as kafka-python leaves it after losing a rejoin: rebalancing, with nothing, for good;
    a fresh join (unsubscribe, subscribe) gets its partitions."""

    def __init__(self, *partitions: object) -> None:
        self.config = {"client_id": "aims-router-r1"}
        self.partitions, self.joined = set(partitions), False

    def poll(self, timeout_ms: int) -> dict[object, list[object]]:
        return {}

    def group_metadata(self) -> object:
        from types import SimpleNamespace

        return SimpleNamespace(state="<stable>" if self.joined else "<rebalancing>")

    def assignment(self) -> set[object]:
        return set(self.partitions) if self.joined else set()

    def unsubscribe(self) -> None:
        self.joined = False

    def subscribe(self, topics: list[str]) -> None:
        self.joined = topics == ["aims.events"]


def test_a_router_whose_consumer_never_ends_its_rebalance_joins_afresh_and_gets_its_partitions() -> None:
    from kafka.structs import TopicPartition

    from events.rebalance import RebalanceWatch

    router = _router()
    router._rebalance = RebalanceWatch(after=0)  # the three sessions, at once
    consumer = LostRejoin(*(TopicPartition("aims.events", p) for p in range(4)))
    router._poll(consumer)  # type: ignore[arg-type]
    router._poll(consumer)  # type: ignore[arg-type]
    assert router._partitions == [0, 1, 2, 3] and router.wait_ready(0)
    assert router.stats.rejoined == 1
