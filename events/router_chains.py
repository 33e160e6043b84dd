"""The router's asyncio side: one chain per subject, each starting or resuming its flow runs in order.

The consumer thread (events.router) hands each decoded record to `_enqueue`; a chain launches its
routes one event at a time through the FlowRunLauncher, holding only its own subject while Prefect
refuses or the run to resume is not waiting yet, and hands finished works back on `_finished`.
A mixin of `Router`: the attributes it declares are set in `Router.__init__`.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from connectors.prefect_runs import FlowRunLauncher, NotWaitingYet, RejectedLaunch, TransientLaunchError
from events.codec import Reason, Rejected
from events.router_work import (
    MAX_BACKOFF,
    LatestCoalesced,
    RouterStats,
    Work,
    conflicting_duplicate,
)
from events.routing import Route, labels
from schemas.events import AimsEvent
from schemas.settings import AimsSettings

if TYPE_CHECKING:
    from connectors.register.receipts import ReceiptLog

log = logging.getLogger("aims.router")

# Recorded as the "run" of a decision that found no run waiting (the nil UUID).
NOTHING_TO_RESUME = UUID(int=0)
# Holding on Prefect for less than this is a busy server, not an outage: logged at debug level only.
NEWSWORTHY_HOLD = 2.0


class FlowRunChains:
    settings: AimsSettings
    routes: Mapping[str, tuple[Route, ...]]
    stats: RouterStats
    coalesce_seconds: float
    _stop: threading.Event
    _loop: asyncio.AbstractEventLoop
    _launcher: FlowRunLauncher | None
    _gate: asyncio.Semaphore | None
    _hold_logged: float
    _finished: queue.SimpleQueue[Work]
    _chains: dict[str, deque[Work]]
    _waiting: set[str]
    _receipts: ReceiptLog | None
    _latest_coalesced: LatestCoalesced

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _enqueue(self, w: Work) -> None:
        chain = self._chains.get(w.chain)
        if chain is None:
            chain = self._chains[w.chain] = deque()
            self._loop.create_task(self._run_chain(w.chain, chain))
        chain.append(w)

    async def _run_chain(self, key: str, chain: deque[Work]) -> None:
        """One subject's events, in order: each waits until the one before it was accepted."""
        try:
            while chain and not self._stop.is_set():
                w = chain[0]
                if not w.dropped:
                    await self._launch_all(w)
                    if not (w.accepted or w.rejected is not None or w.dropped):
                        return  # stopping: left uncommitted for whoever owns the partition next
                    self._finished.put(w)
                chain.popleft()
        finally:
            self._waiting.discard(key)
            if self._chains.get(key) is chain:
                del self._chains[key]
            if not self._chains:
                self.stats.holding_since = None  # nothing waits on Prefect any more

    async def _launch_all(self, w: Work) -> None:
        assert w.event is not None
        event = w.event
        if not w.checked and not await self._compare_with_receipt(w):
            return  # stopping, or a conflicting duplicate (w.rejected says so)
        for route in self.routes[event.type]:
            if route.deployment in w.runs:
                continue
            run_id = await self._launch_one(route, event, w)
            if run_id is None:
                return
            w.runs[route.deployment] = run_id
        w.accepted = True
        self.stats.routed += 1
        log.info(
            "routed %s %s → %s",
            event.type,
            event.id,
            ", ".join(f"{d}={r}" for d, r in w.runs.items()) or "recorded only: no flow for this type",
        )

    async def _compare_with_receipt(self, w: Work) -> bool:
        """Whether `w` may go on: not a conflicting duplicate of an event received before.

        Prefect's idempotency key would hand a copy with other content the first one's run, but the
        copy must not pass as delivered either, nor start a run if that one is gone: it is a dead
        letter and an alert. The register is asked off the event loop; while it does not answer,
        only this subject waits.
        """
        assert w.event is not None
        if self._receipts is None:
            w.checked = True
            return True
        delay = 0.25
        while True:
            try:
                why = await asyncio.to_thread(self._receipts.conflict, w.event)
                break
            except Exception as exc:  # noqa: BLE001 - any register failure holds this subject, retried
                self.stats.last_error = f"register: {type(exc).__name__}: {exc}"
                if delay >= MAX_BACKOFF / 2:
                    log.warning("holding %s: the register does not answer: %s", w.event.id, exc)
            if self._stop.is_set() or w.dropped:
                return False
            await self._sleep(random.uniform(0, delay))
            delay = min(delay * 2, MAX_BACKOFF)
        w.checked = True
        if why is not None:
            conflicting_duplicate(w, why)
            return False
        return True

    async def _launch_one(self, route: Route, event: AimsEvent, w: Work) -> UUID | None:
        assert self._gate is not None
        delay = 0.25
        while True:
            try:
                # The gate bounds calls in flight, not waiting: a chain that waits gives its place up.
                async with self._gate:
                    if self._stop.is_set():
                        return None  # stopping: start nothing new
                    # Bounded, so an API that hangs is noticed and retried on our backoff; a request
                    # cut short that did create the run is harmless: the retry gets the same run back.
                    run_id = await asyncio.wait_for(
                        self._start(route, event, w), timeout=self.settings.router_launch_timeout
                    )
                if self.stats.holding_since is not None:
                    held = time.monotonic() - self.stats.holding_since
                    # A busy SQLite server refuses a run now and then: only real outages are news.
                    log.log(
                        logging.INFO if held >= NEWSWORTHY_HOLD else logging.DEBUG,
                        "Prefect accepts runs again after %.1fs",
                        held,
                    )
                    self.stats.holding_since = None
                self._waiting.discard(w.chain)
                return run_id
            except RejectedLaunch as exc:
                w.rejected = Rejected(Reason.rejected_by_orchestrator, f"{route.deployment}: {exc}")
                return None
            except NotWaitingYet as exc:
                # Only this subject waits (its run is queued or busy); the others go on meanwhile.
                if w.chain not in self._waiting:
                    log.info("%s %s waits: %s", event.type, event.id, exc)
                    self._waiting.add(w.chain)
            except (TransientLaunchError, TimeoutError) as exc:
                if isinstance(exc, TimeoutError):
                    exc = TransientLaunchError(
                        f"Prefect did not answer within {self.settings.router_launch_timeout:g}s"
                    )
                now = time.monotonic()
                if self.stats.holding_since is None:
                    self.stats.holding_since = now
                if now - self.stats.holding_since >= NEWSWORTHY_HOLD and now - self._hold_logged > 60:
                    self._hold_logged = now
                    log.warning("holding: %s; retrying with backoff, nothing is committed", exc)
                self.stats.last_error = str(exc)
            except Exception as exc:  # an unforeseen failure holds this subject, never the router
                log.exception("routing %s %s to %s failed; retrying", event.type, event.id, route.deployment)
                self.stats.last_error = f"{route.deployment}: {type(exc).__name__}: {exc}"
            if self._stop.is_set() or w.dropped:
                return None
            # Full jitter, so routers that lost Prefect together do not return together.
            await self._sleep(random.uniform(0, delay))
            delay = min(delay * 2, MAX_BACKOFF)

    async def _start(self, route: Route, event: AimsEvent, w: Work) -> UUID:
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
        start_at, coalescing = self._coalescing(route, event)
        # Named and tagged for what it is about, so a person finds it in the Prefect UI.
        name, tags = labels(route, event)
        run_id = await self._launcher.launch(
            route.deployment,
            route.parameters(event),
            event.dedup_key,
            start_at,
            [*(coalescing or []), *tags],
            name,
        )
        if start_at is not None and coalescing:
            await self._stand_down_previous(coalescing[0], run_id, w)
        return run_id

    async def _stand_down_previous(self, tag: str, run_id: UUID, w: Work) -> None:
        """Cancel the run this one supersedes before it starts; the check that runs records it.

        Best effort: a run left standing finds this one when it starts and records itself."""
        assert self._launcher is not None
        record = w.record
        previous = self._latest_coalesced.replace(tag, run_id, record.partition, record.offset)
        if previous is None:
            return
        try:
            stood_down = await self._launcher.stand_down(
                previous, f"superseded by run {run_id} before its check started"
            )
        except Exception as exc:  # noqa: BLE001 - never worth holding the subject for
            log.debug("standing down run %s failed: %s", previous, exc)
            return
        if stood_down:
            self.stats.stood_down += 1

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


async def semaphore(size: int) -> asyncio.Semaphore:
    return asyncio.Semaphore(size)
