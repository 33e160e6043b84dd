"""The router: a consumer-group member that turns events into Prefect flow runs.

At-least-once in, exactly-once effect (DESIGN decision 2):
- a record's offset is committed only after every route of it was accepted by Prefect, or after it
  was written to the dead-letter topic;
- the idempotency key (the event's source + id) makes a redelivered event return the flow run that
  already exists instead of a second one.

Kafka is driven from one thread (kafka-python is not thread-safe); flow runs are created from an
asyncio loop in a second thread, several subjects at a time but one subject's events in order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from connectors.prefect_runs import FlowRunLauncher, RejectedLaunch, TransientLaunchError
from events.codec import Reason, Rejected, decode
from events.dead_letter import dead_letter_headers
from events.kafka_clients import make_consumer, make_producer
from events.routing import ROUTES, Route
from schemas.events import AimsEvent
from schemas.settings import AimsSettings

if TYPE_CHECKING:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.consumer.fetcher import ConsumerRecord
    from kafka.structs import TopicPartition

    from connectors.register.receipts import ReceiptLog
    from events.outbox import OutboxRelay

log = logging.getLogger("aims.router")

LauncherFactory = Callable[[], AbstractAsyncContextManager[FlowRunLauncher]]
# Recorded as the "run" of a decision that found no run waiting (the nil UUID).
NOTHING_TO_RESUME = UUID(int=0)


@dataclass
class _Work:
    """One consumed record and what became of it."""

    record: ConsumerRecord
    event: AimsEvent | None = None
    rejected: Rejected | None = None
    runs: dict[str, UUID] = field(default_factory=dict)
    done: bool = False

    @property
    def chain(self) -> str:
        # Records without a key still keep their partition's order.
        key = self.record.key
        return key.decode("utf-8", "replace") if key else f"partition-{self.record.partition}"


@dataclass
class RouterStats:
    consumed: int = 0
    routed: int = 0
    dead_lettered: int = 0
    commits: int = 0
    holding_since: float | None = None
    last_error: str = ""


class Router:
    def __init__(
        self,
        settings: AimsSettings,
        bootstrap: str,
        launcher_factory: LauncherFactory,
        *,
        routes: Mapping[str, tuple[Route, ...]] = ROUTES,
        heartbeat_dir: Path | None = None,
        name: str | None = None,
        receipts: ReceiptLog | None = None,
        coalesce_seconds: float = 0.0,
        outbox: OutboxRelay | None = None,
    ) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.routes = routes
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.stats = RouterStats()
        self._launcher_factory = launcher_factory
        self._receipts = receipts
        self.coalesce_seconds = coalesce_seconds
        self._outbox = outbox
        self._last_relay = 0.0
        self._heartbeat_dir = heartbeat_dir
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._launcher: FlowRunLauncher | None = None
        self._assigned = False
        self._last_beat = 0.0

    # -- control -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the router to finish: safe from signal handlers and other threads."""
        self._stop.set()

    def wait_ready(self, timeout: float) -> bool:
        """True once the router has joined its group and holds partitions."""
        return self._ready.wait(timeout)

    def run(self) -> None:
        loop_thread = threading.Thread(target=self._loop.run_forever, name="router-async", daemon=True)
        loop_thread.start()
        launcher_cm = self._launcher_factory()
        self._launcher = self._call(launcher_cm.__aenter__()).result()
        consumer = make_consumer(
            self.bootstrap,
            self.settings.consumer_group,
            client_id=f"aims-router-{self.name}",
            max_poll_records=self.settings.router_batch_size,
        )
        dlq = make_producer(self.bootstrap, client_id=f"aims-router-dlq-{self.name}")
        try:
            consumer.subscribe([self.settings.events_topic])
            log.info("router %s consuming %s", self.name, self.settings.events_topic)
            self._consume(consumer, dlq)
        finally:
            dlq.flush(timeout=10)
            dlq.close(timeout=10)
            # close() leaves the group at once, so the partitions move without a session timeout.
            consumer.close(autocommit=False)
            self._call(launcher_cm.__aexit__(None, None, None)).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            loop_thread.join(timeout=10)
            self._write_heartbeat(final=True)
            log.info("router %s stopped: %s", self.name, self.stats)

    # -- the loop ----------------------------------------------------------------------------

    def _consume(self, consumer: KafkaConsumer, dlq: KafkaProducer) -> None:
        while not self._stop.is_set():
            polled = consumer.poll(timeout_ms=300)
            self._assigned = bool(consumer.assignment())
            if self._assigned:
                self._ready.set()
            self._beat()
            self._relay_outbox()
            if not polled:
                continue
            records = sorted(
                (r for batch in polled.values() for r in batch), key=lambda r: (r.partition, r.offset)
            )
            self.stats.consumed += len(records)
            work = [self._classify(r) for r in records]
            self._handle(consumer, dlq, work)
            self._commit(consumer, work)

    def _classify(self, record: ConsumerRecord) -> _Work:
        work = _Work(record)
        decoded = decode(record.value, record.headers or [], self.settings.max_event_bytes)
        if isinstance(decoded, Rejected):
            work.rejected = decoded
        elif decoded.type not in self.routes:
            work.rejected = Rejected(Reason.unknown_type, f"no route for type {decoded.type!r}")
        else:
            work.event = decoded
        return work

    def _handle(self, consumer: KafkaConsumer, dlq: KafkaProducer, work: list[_Work]) -> None:
        launches = [w for w in work if w.event is not None]
        future = self._call(self._dispatch(launches))
        paused: set[TopicPartition] = set()
        # While Prefect is away we keep polling (paused) so the group does not evict us.
        while True:
            try:
                future.result(timeout=0.5)
                break
            except TimeoutError:
                if not paused:
                    paused = set(consumer.assignment())
                    consumer.pause(*paused)
                self._rewind(consumer, consumer.poll(timeout_ms=0))
                self._beat()  # `aims status` shows the router alive and holding
        if paused:
            consumer.resume(*paused)
        # Orchestrator refusals join the decoding failures on the dead-letter topic.
        for w in launches:
            if w.rejected is not None:
                w.event = None
        self._dead_letter(dlq, [w for w in work if w.rejected is not None])
        self._record_receipts([w for w in launches if w.done and w.event is not None])

    def _record_receipts(self, accepted: list[_Work]) -> None:
        if self._receipts is None or not accepted:
            return
        try:
            self._receipts.record([(w.event, w.runs) for w in accepted if w.event is not None])
        except Exception as exc:  # noqa: BLE001 - any failure means: do not commit, read them again
            self.stats.last_error = f"register write failed: {exc}"
            log.error("could not record %d accepted events in the register: %s; holding", len(accepted), exc)
            for w in accepted:
                w.done = False  # redelivered; the flow runs already exist and are found by idempotency key
            self._stop.wait(2.0)

    @staticmethod
    def _rewind(consumer: KafkaConsumer, polled: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """A partition assigned during a rebalance is not paused and may deliver records while we
        hold: put them back so the next real poll reads them, instead of skipping them."""
        for tp, records in polled.items():
            if records:
                consumer.seek(tp, min(r.offset for r in records))

    def _dead_letter(self, dlq: KafkaProducer, rejected: list[_Work]) -> None:
        pending = []
        for w in rejected:
            r = w.record
            assert w.rejected is not None
            headers = dead_letter_headers(
                r.headers or [], w.rejected.reason, w.rejected.detail, r.topic, r.partition, r.offset
            )
            log.warning(
                "dead-letter %s[%d]@%d: %s: %s",
                r.topic,
                r.partition,
                r.offset,
                w.rejected.reason.value,
                w.rejected.detail[:300],
            )
            pending.append(
                (w, dlq.send(self.settings.dead_letter_topic, key=r.key, value=r.value, headers=headers))
            )
        dlq.flush(timeout=30)
        for w, fut in pending:
            try:
                fut.get(timeout=30)
                w.done = True
                self.stats.dead_lettered += 1
            except Exception as exc:  # noqa: BLE001 - any produce failure means: do not commit
                self.stats.last_error = f"dead-letter produce failed: {exc}"
                log.error("could not dead-letter offset %d: %s; it will be redelivered", w.record.offset, exc)

    def _commit(self, consumer: KafkaConsumer, work: list[_Work]) -> None:
        from kafka.errors import CommitFailedError
        from kafka.structs import OffsetAndMetadata, TopicPartition

        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        blocked: dict[TopicPartition, int] = {}
        for w in work:  # sorted by partition, offset
            tp = TopicPartition(w.record.topic, w.record.partition)
            if tp in blocked:
                continue
            if not w.done:
                blocked[tp] = w.record.offset  # never commit past a record that was not accepted
                continue
            offsets[tp] = OffsetAndMetadata(w.record.offset + 1, "", -1)
        if not self._stop.is_set():
            # Read the unhandled records again on the next poll instead of skipping them.
            for tp, offset in blocked.items():
                consumer.seek(tp, offset)
        if not offsets:
            return
        try:
            consumer.commit(offsets)
            self.stats.commits += 1
        except CommitFailedError as exc:
            # The group rebalanced; the new owner will redeliver and idempotency keys dedupe.
            log.warning("commit refused after a rebalance: %s", exc)

    # -- flow runs ---------------------------------------------------------------------------

    def _call(self, coro: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def _dispatch(self, launches: list[_Work]) -> None:
        chains: dict[str, list[_Work]] = defaultdict(list)
        for w in launches:
            chains[w.chain].append(w)
        gate = asyncio.Semaphore(self.settings.router_concurrency)

        async def run_chain(items: list[_Work]) -> None:
            for w in items:
                async with gate:
                    # On SIGTERM, finish what is in flight and start nothing new: the rest of the
                    # batch is not committed and goes to whoever owns the partition next.
                    if self._stop.is_set():
                        return
                    await self._launch_all(w)
                if not w.done and w.rejected is None:
                    return  # not accepted: later events of this subject must not overtake it

        await asyncio.gather(*(run_chain(items) for items in chains.values()))

    async def _launch_all(self, w: _Work) -> None:
        assert w.event is not None and self._launcher is not None
        event = w.event
        for route in self.routes[event.type]:
            if route.deployment in w.runs:
                continue
            run_id = await self._launch_one(route, event, w)
            if run_id is None:
                return
            w.runs[route.deployment] = run_id
        if w.rejected is None:
            w.done = True
            self.stats.routed += 1
            log.info(
                "routed %s %s → %s",
                event.type,
                event.id,
                ", ".join(f"{d}={r}" for d, r in w.runs.items()) or "recorded only: no flow for this type",
            )

    async def _launch_one(self, route: Route, event: AimsEvent, w: _Work) -> UUID | None:
        assert self._launcher is not None
        delay = 0.25
        while True:
            try:
                # Bounded, so an API that hangs is noticed and retried on our backoff; a request
                # cut short that did create the run is harmless: the retry gets the same run back.
                run_id = await asyncio.wait_for(
                    self._start(route, event), timeout=self.settings.router_launch_timeout
                )
                if self.stats.holding_since is not None:
                    log.info(
                        "Prefect accepts runs again after %.1fs", time.monotonic() - self.stats.holding_since
                    )
                    self.stats.holding_since = None
                return run_id
            except RejectedLaunch as exc:
                w.rejected = Rejected(Reason.rejected_by_orchestrator, f"{route.deployment}: {exc}")
                return None
            except (TransientLaunchError, TimeoutError) as exc:
                if isinstance(exc, TimeoutError):
                    exc = TransientLaunchError(
                        f"Prefect did not answer within {self.settings.router_launch_timeout:g}s"
                    )
                if self.stats.holding_since is None:
                    self.stats.holding_since = time.monotonic()
                    log.warning("holding: %s; retrying with backoff, nothing is committed", exc)
                self.stats.last_error = str(exc)
            if self._stop.is_set():
                return None
            # Full jitter, so routers that lost Prefect together do not return together.
            await self._sleep(random.uniform(0, delay))
            delay = min(delay * 2, 5.0)

    async def _start(self, route: Route, event: AimsEvent) -> UUID:
        assert self._launcher is not None
        if route.resume:
            assert route.tag is not None, "a resume route finds its run by tag"
            run_id = await self._launcher.resume(route.deployment, route.tag(event), route.parameters(event))
            if run_id is None:
                # Decisions are recorded before they are announced: a request run that starts later
                # reads this one from the register, so there is nothing to hold the partition for.
                log.info("%s %s: no %s run waits for it yet", event.type, event.id, route.deployment)
                return NOTHING_TO_RESUME
            return run_id
        start_at, tags = self._coalescing(route, event)
        if route.tag is not None:
            tags = [*(tags or []), route.tag(event)]
        return await self._launcher.launch(
            route.deployment, route.parameters(event), event.dedup_key, start_at, tags
        )

    def _coalescing(self, route: Route, event: AimsEvent) -> tuple[datetime | None, list[str] | None]:
        """(start time, tags) of a run that may be coalesced with later ones; (None, None) otherwise."""
        if route.coalesce_tag is None or self.coalesce_seconds <= 0:
            return None, None
        start_at = datetime.now(UTC) + timedelta(seconds=self.coalesce_seconds)
        return start_at, [route.coalesce_tag(event)]

    async def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < end:
            await asyncio.sleep(min(0.1, end - time.monotonic()))

    # -- the outbox ---------------------------------------------------------------------------

    # Flows send their own events right after their commit; only rows a crashed run left behind
    # are this old.
    OUTBOX_EVERY = 10.0
    OUTBOX_AGE = 30.0

    def _relay_outbox(self) -> None:
        now = time.monotonic()
        if self._outbox is None or now - self._last_relay < self.OUTBOX_EVERY:
            return
        self._last_relay = now
        try:
            sent = self._outbox.send(older_than=self.OUTBOX_AGE)
        except Exception as exc:  # noqa: BLE001 - the register may be away; the rows wait for the next pass
            log.warning("outbox relay failed: %s", exc)
            return
        if sent:
            log.info("relayed %d event(s) a flow run left in the outbox", sent)

    # -- liveness ----------------------------------------------------------------------------

    def _beat(self) -> None:
        now = time.monotonic()
        if now - self._last_beat > 2:
            self._write_heartbeat()
            self._last_beat = now

    def _write_heartbeat(self, final: bool = False) -> None:
        if self._heartbeat_dir is None:
            return
        self._heartbeat_dir.mkdir(parents=True, exist_ok=True)
        path = self._heartbeat_dir / f"router-{self.name}.json"
        if final:
            path.unlink(missing_ok=True)
            return
        beat = {
            "name": self.name,
            "pid": os.getpid(),
            "assigned": self._assigned,
            "at": time.time(),
            "consumed": self.stats.consumed,
            "routed": self.stats.routed,
            "dead_lettered": self.stats.dead_lettered,
            "holding": self.stats.holding_since is not None,
            "last_error": self.stats.last_error,
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(beat))
        tmp.replace(path)
