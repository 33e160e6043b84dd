"""The router: a consumer-group member that turns events into Prefect flow runs.

At-least-once in, exactly-once effect (DESIGN decision 2):
- a record's offset is committed only after every route of it was accepted by Prefect and recorded,
  or after it reached the dead-letter topic — never past a record that did not (`OffsetLedger`);
- the idempotency key (the event's source + id) makes a redelivered event return the flow run that
  already exists instead of a second one.

Each subject is a chain of its own: its events are routed in order, one at a time, while the other
subjects' events flow past. A subject that has to wait (a decision whose run is not suspended yet)
holds only its own chain, and the commit of its partition, never the others.

Nothing outside the router's control stops it: while Prefect, the broker or the register is away
it holds (commits nothing it has not settled) and goes on by itself when they are back; a rebalance
is the group's business (the new owner reads again and idempotency keys dedupe); whatever happens
while dead-lettering a record, the record is retried, never the cause of an exit.

Kafka is driven from one thread (kafka-python's consumer is not thread-safe); flow runs are created
from an asyncio loop in a second thread; the outbox relay has a thread of its own, so a broker that
does not answer cannot stall the consumer loop through it.

This module is the consumer loop (polling, dead letters, commits, flow control); the flow-run chains
are in events.router_chains, the heartbeat, holding and outbox relay in events.router_liveness, the
books they share in events.router_work.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.prefect_runs import FlowRunLauncher
from events.codec import Reason, Rejected, authenticate, decode
from events.dead_letter import DeadLetterLog, copy_size, dead_letter_headers, reference_letter
from events.kafka_clients import MAX_REQUEST_BYTES, KafkaConnection, make_consumer, make_producer
from events.offsets import OffsetLedger
from events.rebalance import STUCK_AFTER_SESSIONS, RebalanceWatch, rejoin_if_stuck
from events.router_chains import NOTHING_TO_RESUME, FlowRunChains, semaphore
from events.router_liveness import RouterLiveness
from events.router_work import Backoff, LatestCoalesced, RouterStats, Work, conflicting_duplicate
from events.routing import ROUTES, Route
from schemas.settings import AimsSettings

if TYPE_CHECKING:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.consumer.fetcher import ConsumerRecord
    from kafka.producer.future import FutureRecordMetadata
    from kafka.structs import TopicPartition

    from connectors.register.receipts import ReceiptLog
    from events.anchors import AnchorPublisher
    from events.outbox import OutboxRelay

log = logging.getLogger("aims.router")

# Public names of this module, some defined beside it: callers import them from here.
__all__ = ["COMMIT_TIMEOUT_MS", "NOTHING_TO_RESUME", "LauncherFactory", "Router", "RouterStats"]

LauncherFactory = Callable[[], AbstractAsyncContextManager[FlowRunLauncher]]
# Records in flight, all partitions together, before the router stops fetching: with records up to
# the broker's 2 MiB each, the count per partition alone would not bound memory.
HELD_BYTES_LIMIT = 64 * 1024 * 1024
# Records held uncommitted, all partitions together: those in flight, and those done behind a record
# still in flight, kept for the commit's order only (about 250 bytes each, the record let go of).
HELD_RECORDS_LIMIT = 200_000
# More than one poll can fetch (16 MiB of records of at least a few bytes each): "all of them".
POLL_EVERY_FETCHED_RECORD = 10_000_000
# A commit that gets no answer in this long is retried later, not waited for: the loop goes on.
COMMIT_TIMEOUT_MS = 5000
# How long `send` may wait for the dead-letter topic's metadata before the loop goes on.
DEAD_LETTER_BLOCK_MS = 2000
DEAD_LETTER_LINGER_MS = 20
DEAD_LETTER_BATCH_BYTES = 512 * 1024


class Router(FlowRunChains, RouterLiveness):
    def __init__(
        self,
        settings: AimsSettings,
        kafka: KafkaConnection,
        launcher_factory: LauncherFactory,
        *,
        routes: Mapping[str, tuple[Route, ...]] = ROUTES,
        heartbeat_dir: Path | None = None,
        name: str | None = None,
        receipts: ReceiptLog | None = None,
        coalesce_seconds: float = 0.0,
        outbox: OutboxRelay | None = None,
        anchors: AnchorPublisher | None = None,
    ) -> None:
        self.settings = settings
        self.kafka = kafka
        self.routes = routes
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.stats = RouterStats()
        self._launcher_factory = launcher_factory
        self._receipts = receipts
        self.coalesce_seconds = coalesce_seconds
        self._outbox = outbox
        self._anchors = anchors
        self._heartbeat_dir = heartbeat_dir
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._launcher: FlowRunLauncher | None = None
        self._last_beat = 0.0
        self._last_summary = 0.0
        self._hold_logged = 0.0
        self._state = "joining"
        self._partitions: list[int] = []
        # The consumer thread's books.
        self._ledger: OffsetLedger[TopicPartition, Work] = OffsetLedger()
        self._paused: set[TopicPartition] = set()
        self._topic_partitions: dict[tuple[str, int], TopicPartition] = {}
        self._to_record: list[Work] = []
        self._to_dead_letter: deque[Work] = deque()
        # Answers to dead letters sent: the producer's thread hands back each one, so a pass looks at
        # what was answered, not at every letter still on its way.
        self._sent: queue.SimpleQueue[tuple[Work, FutureRecordMetadata]] = queue.SimpleQueue()
        self._dead_letter_log = DeadLetterLog()
        self._receipts_backoff = Backoff()
        self._dead_letter_backoff = Backoff()
        self._commit_backoff = Backoff()
        # What the router is holding on, other than Prefect (stats.holding_since): "kafka", "register".
        self._trouble: dict[str, str] = {}
        # Handed over from the asyncio thread: works whose launches ended (accepted or refused).
        self._finished: queue.SimpleQueue[Work] = queue.SimpleQueue()
        # The asyncio thread's books: one queue of works per chain, and the chains now waiting.
        self._chains: dict[str, deque[Work]] = {}
        self._waiting: set[str] = set()
        self._latest_coalesced = LatestCoalesced()
        self._gate: asyncio.Semaphore | None = None
        self._rebalance = RebalanceWatch(STUCK_AFTER_SESSIONS * settings.consumer_session_timeout_ms / 1000)

    # -- control -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the router to finish: safe from signal handlers and other threads."""
        self._stop.set()

    def wait_ready(self, timeout: float) -> bool:
        """True once the router has joined its group and holds partitions."""
        return self._ready.wait(timeout)

    def consumer_options(self) -> dict[str, Any]:
        """The consumer's settings beyond the project's defaults (events.kafka_clients)."""
        return {
            "client_id": f"aims-router-{self.name}",
            # Every record a poll has fetched, not a batch of them. kafka-python 3.0 parks the
            # records a poll did not return of a partition paused before the next one, and hands
            # them back only while no other records wait in line, which after the first poll is
            # never: a partition paused at the in-flight cap (`_flow_control`) then stalled for
            # good, with lag and nothing in flight. A poll that returns all it fetched leaves
            # nothing to park. One poll brings at most `fetch_max_bytes` (events.kafka_clients).
            "max_poll_records": POLL_EVERY_FETCHED_RECORD,
            # Kafka's default session of 45 s left a crashed router's partitions unread that long,
            # though the supervisor starts it again within a second.
            "session_timeout_ms": self.settings.consumer_session_timeout_ms,
            "heartbeat_interval_ms": self.settings.consumer_heartbeat_interval_ms,
        }

    def run(self) -> None:
        loop_thread = threading.Thread(target=self._loop.run_forever, name="router-async", daemon=True)
        loop_thread.start()
        launcher_cm = self._launcher_factory()
        self._launcher = self._call(launcher_cm.__aenter__()).result()
        self._gate = self._call(semaphore(self.settings.router_concurrency)).result()
        consumer = make_consumer(self.kafka, self.settings.consumer_group, **self.consumer_options())
        dlq = make_producer(
            self.kafka,
            client_id=f"aims-router-dlq-{self.name}",
            max_block_ms=DEAD_LETTER_BLOCK_MS,
            # A flood's letters go in large batches: with the project's 2 ms, the producer's thread took
            # each batch after a few records, and each next record opened another, waking that thread
            # (a sixth of the consumer loop's time in a flood of 50,000). No one waits on a dead letter.
            linger_ms=DEAD_LETTER_LINGER_MS,
            batch_size=DEAD_LETTER_BATCH_BYTES,
        )
        relay = threading.Thread(target=self._relay_outbox, name="router-outbox", daemon=True)
        relay.start()
        if self.settings.event_signing_key is None:
            log.error(
                "no AIMS_EVENT_SIGNING_KEY: every event from an urn:aims: source (the system's own) is "
                "dead-lettered as unauthenticated until the router is started with the installation's key"
            )
        try:
            consumer.subscribe([self.settings.events_topic])
            log.info("router %s consuming %s", self.name, self.settings.events_topic)
            self._consume(consumer, dlq)
            self._finish(consumer, dlq)
        finally:
            self._stop.set()
            dlq.close(timeout=5)
            # close() leaves the group at once, so the partitions move without a session timeout.
            consumer.close(autocommit=False, timeout_ms=5000)
            self._call(launcher_cm.__aexit__(None, None, None)).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            loop_thread.join(timeout=10)
            relay.join(timeout=10)
            self._write_heartbeat(final=True)
            log.info("router %s stopped: %s", self.name, self.stats)

    # -- the consumer loop ---------------------------------------------------------------------

    def _consume(self, consumer: KafkaConsumer, dlq: KafkaProducer) -> None:
        while not self._stop.is_set():
            records = self._poll(consumer)
            for record in records:
                self._take(record)
            self._settle(dlq)
            self._commit(consumer)
            self._flow_control(consumer)
            self._beat()

    def _poll(self, consumer: KafkaConsumer) -> list[ConsumerRecord]:
        from kafka.errors import KafkaError

        try:
            # Shorter while records are in flight, so their settling is committed soon.
            polled = consumer.poll(timeout_ms=100 if self._ledger.total else 300)
            if rejoin_if_stuck(consumer, self._rebalance, [self.settings.events_topic], time.monotonic()):
                self.stats.rejoined += 1
            assignment = consumer.assignment()
        except KafkaError as exc:
            self._in_trouble("kafka", f"poll failed: {exc}")
            self._stop.wait(1.0)
            return []
        self._partitions = sorted(tp.partition for tp in assignment)
        if assignment:
            self._ready.set()
        self._forget_lost(assignment)
        return sorted((r for batch in polled.values() for r in batch), key=lambda r: (r.partition, r.offset))

    def _forget_lost(self, assignment: set[TopicPartition]) -> None:
        """Drop what the router held of partitions it no longer owns.

        Only the assignment says what was lost: kafka-python keeps a partition's position when a
        rebalance gives it back (an eager rebalance "revokes" every partition first), so records in
        flight of a partition that stays must stay too — nothing would read them again. A partition
        whose position was reset instead (lost, then assigned afresh) is read again from its
        committed offset, which the ledger notices (`OffsetLedger.admit`).
        """
        lost = self._ledger.partitions() - assignment
        if not lost:
            return
        dropped = self._ledger.revoke(lost)
        for w in dropped:
            w.dropped = True
        self._paused -= lost
        if dropped:
            log.info(
                "partitions %s moved to another router: %d record(s) in flight left to it "
                "(it reads them again; idempotency keys dedupe)",
                sorted(tp.partition for tp in lost),
                len(dropped),
            )

    def _partition_of(self, record: ConsumerRecord) -> TopicPartition:
        """The record's partition, one object per partition: made anew twice per record, it was a
        twentieth of the consumer loop's time in a flood."""
        from kafka.structs import TopicPartition

        key = (record.topic, record.partition)
        tp = self._topic_partitions.get(key)
        if tp is None:
            tp = self._topic_partitions[key] = TopicPartition(record.topic, record.partition)
        return tp

    def _take(self, record: ConsumerRecord) -> None:
        work = Work(record)
        tp = self._partition_of(record)
        dropped = self._ledger.admit(tp, record.offset, work, work.size)
        if dropped:
            # Its position was reset (lost and assigned again between two polls): read afresh from here.
            for w in dropped:
                w.dropped = True
            log.info(
                "partition %d is read again from offset %d: %d record(s) taken before are read anew",
                record.partition,
                record.offset,
                len(dropped),
            )
        self.stats.consumed += 1
        self._classify(work)
        if work.event is None:
            self._to_dead_letter.append(work)
        else:
            self._loop.call_soon_threadsafe(self._enqueue, work)

    def _classify(self, work: Work) -> None:
        record = work.record
        try:
            decoded = decode(record.value, record.headers or [], self.settings.max_event_bytes)
        except Exception as exc:  # decode is total; should it fail, the record must not stop the router
            log.exception("decoding %s[%d]@%d failed", record.topic, record.partition, record.offset)
            work.rejected = Rejected(Reason.malformed, f"could not be decoded: {type(exc).__name__}")
            return
        if not isinstance(decoded, Rejected) and decoded.type not in self.routes:
            decoded = Rejected(Reason.unknown_type, f"no route for type {decoded.type!r}")
        if not isinstance(decoded, Rejected):
            # Before anything is started or recorded: a forged urn:aims: event must not take its id.
            decoded = authenticate(decoded, self.settings.event_signing_key)
        if isinstance(decoded, Rejected):
            work.rejected = decoded
        else:
            work.event = decoded

    def _settle(self, dlq: KafkaProducer) -> None:
        """Take the launches that ended; record the accepted, dead-letter the refused."""
        while True:
            try:
                w = self._finished.get_nowait()
            except queue.Empty:
                break
            if w.dropped:
                continue
            if w.rejected is not None:
                w.event = None  # refused by Prefect: it joins the decoding failures
                self._to_dead_letter.append(w)
            else:
                self._to_record.append(w)
        self._record_receipts()
        self._dead_letter(dlq)

    def _settled(self, w: Work) -> None:
        self._ledger.settle(self._partition_of(w.record), w.record.offset, w)

    def _record_receipts(self) -> None:
        accepted = [w for w in self._to_record if not w.dropped]
        if not accepted or not self._receipts_backoff.due():
            self._to_record = accepted
            return
        conflicts: dict[int, str] = {}
        recorded = [w for w in accepted if w.event is not None]
        if self._receipts is not None:
            try:
                conflicts = self._receipts.record([(w.event, w.runs) for w in recorded if w.event])
            except Exception as exc:  # noqa: BLE001 - any register failure: hold those records, try again
                self._to_record = accepted
                self._receipts_backoff.failed()
                self._in_trouble("register", f"register write failed: {exc}")
                return
        self._receipts_backoff.succeeded()
        self._out_of_trouble("register")
        self._to_record = []
        for position, why in conflicts.items():
            # Two copies raced to the register: the later one is dead-lettered, never kept.
            conflicting_duplicate(recorded[position], why)
            self._to_dead_letter.append(recorded[position])
        for w in accepted:
            if w.rejected is None:
                self._settled(w)

    # -- dead letters --------------------------------------------------------------------------

    def _dead_letter(self, dlq: KafkaProducer) -> None:
        from kafka.errors import KafkaError

        self._check_sent()
        if summary := self._dead_letter_log.summary():
            log.warning(summary)
        while self._to_dead_letter and self._dead_letter_backoff.due():
            w = self._to_dead_letter[0]
            if w.dropped:
                self._to_dead_letter.popleft()
                continue
            try:
                future = self._send_dead_letter(dlq, w)
            except KafkaError as exc:
                if _too_large(exc) and not w.as_reference:
                    w.as_reference = True
                    continue
                self._dead_letter_failed(w, exc)
                return
            self._to_dead_letter.popleft()
            future.add_both(lambda _answer, w=w, future=future: self._sent.put((w, future)))

    def _send_dead_letter(self, dlq: KafkaProducer, w: Work) -> FutureRecordMetadata:
        r, why = w.record, w.rejected
        assert why is not None
        headers = dead_letter_headers(r.headers or [], why.reason, why.detail, r.topic, r.partition, r.offset)
        if not w.as_reference and copy_size(r.key, r.value, headers) > MAX_REQUEST_BYTES:
            w.as_reference = True
        if w.as_reference:
            key, value, headers = reference_letter(
                r.key, r.value, r.headers or [], why.reason, why.detail, r.topic, r.partition, r.offset
            )
        else:
            key, value = r.key, r.value
        w.dead_letter_attempts += 1
        # A reference is rare and says where the original is: always a line. Copies are summed up.
        if w.as_reference or (w.dead_letter_attempts == 1 and self._dead_letter_log.one_by_one(why.reason)):
            log.warning(
                "dead-letter %s[%d]@%d%s: %s: %s",
                r.topic,
                r.partition,
                r.offset,
                " (as a reference: too large to copy whole)" if w.as_reference else "",
                why.reason.value,
                why.detail[:300],
            )
        return dlq.send(self.settings.dead_letter_topic, key=key, value=value, headers=headers)

    def _check_sent(self) -> None:
        while True:
            try:
                w, future = self._sent.get_nowait()
            except queue.Empty:
                return
            if future.succeeded():
                self.stats.dead_lettered += 1
                self._dead_letter_backoff.succeeded()
                self._out_of_trouble("kafka")
                self._settled(w)
            elif _too_large(future.exception) and not w.as_reference:
                # The broker's limit (or the topic's) is below what the copy needs.
                w.as_reference = True
                self._to_dead_letter.appendleft(w)
            else:
                self._dead_letter_failed(w, future.exception)

    def _dead_letter_failed(self, w: Work, exc: BaseException | None) -> None:
        self._dead_letter_backoff.failed()
        self._in_trouble(
            "kafka",
            f"could not dead-letter {w.record.topic}[{w.record.partition}]@{w.record.offset}: {exc}; "
            "it is kept and tried again",
        )
        if w not in self._to_dead_letter:
            self._to_dead_letter.appendleft(w)

    # -- commits and flow control ----------------------------------------------------------------

    def _commit(self, consumer: KafkaConsumer, final: bool = False) -> None:
        from kafka.errors import KafkaError
        from kafka.structs import OffsetAndMetadata

        ready = self._ledger.ready()
        if not ready or not (final or self._commit_backoff.due()):
            return
        try:
            # Only partitions still ours: an older offset must not rewind what a new owner committed.
            mine = consumer.assignment()
            ready = {tp: offset for tp, offset in ready.items() if tp in mine}
            if not ready:
                return
            consumer.commit(
                {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in ready.items()},
                timeout_ms=COMMIT_TIMEOUT_MS,
            )
        except _rebalancing() as exc:
            # The group is rebalancing: the offsets are committed on the next pass if the partitions
            # stay ours; if they move, their new owner reads those records again (idempotency keys).
            log.info("commit deferred by a rebalance: %s", type(exc).__name__)
            return
        except KafkaError as exc:
            self._commit_backoff.failed()
            self._in_trouble("kafka", f"commit failed: {type(exc).__name__}: {exc}")
            return
        self._ledger.committed(ready)
        self._commit_backoff.succeeded()
        self._out_of_trouble("kafka")
        self.stats.commits += 1

    def _flow_control(self, consumer: KafkaConsumer) -> None:
        """Stop fetching a partition whose records in flight reached the cap (or everything, at the
        byte budget or the held-records bound); start again once they drained.

        Records already done (dead-lettered, or routed and recorded) behind one still in flight do not
        count toward the cap: they wait for the commit only. Counting them paused a flood of malformed
        records behind each good event until Prefect had created its run, which held the dead letters
        to Prefect's pace: a quarter of what a bare consume-and-produce loop forwards.
        """
        from kafka.errors import KafkaError

        assigned = consumer.assignment()
        full = self._ledger.bytes >= HELD_BYTES_LIMIT or self._ledger.total >= HELD_RECORDS_LIMIT
        cap = self.settings.router_max_in_flight
        wanted = {tp for tp in assigned if full or self._ledger.in_flight(tp) >= cap}
        try:
            if wanted - self._paused:
                consumer.pause(*(wanted - self._paused))
            if (self._paused & assigned) - wanted:
                consumer.resume(*((self._paused & assigned) - wanted))
        except KafkaError as exc:  # a partition revoked a moment ago; the next pass sees it
            log.info("pause/resume skipped: %s", exc)
            return
        if wanted - self._paused:
            log.warning(
                "%d record(s) held uncommitted (%d bytes): fetching paused on partitions %s",
                self._ledger.total,
                self._ledger.bytes,
                sorted(tp.partition for tp in wanted),
            )
        self._paused = wanted

    def _finish(self, consumer: KafkaConsumer, dlq: KafkaProducer) -> None:
        """On stop: launches in flight end (none start), then what settled is recorded and committed."""
        deadline = time.monotonic() + self.settings.router_launch_timeout + 5
        while self._chains and time.monotonic() < deadline:
            time.sleep(0.05)
        self._receipts_backoff.succeeded()
        self._dead_letter_backoff.succeeded()
        self._settle(dlq)
        dlq.flush(timeout=10)  # at once when no letter is on its way
        self._check_sent()
        self._commit(consumer, final=True)


def _too_large(exc: BaseException | None) -> bool:
    from kafka.errors import MessageSizeTooLargeError, RecordListTooLargeError

    return isinstance(exc, MessageSizeTooLargeError | RecordListTooLargeError)


def _rebalancing() -> tuple[type[Exception], ...]:
    """The commit errors that mean "the group is moving partitions", not "Kafka is away"."""
    from kafka.errors import (
        CommitFailedError,
        IllegalGenerationError,
        RebalanceInProgressError,
        UnknownMemberIdError,
    )

    return (CommitFailedError, RebalanceInProgressError, IllegalGenerationError, UnknownMemberIdError)
