"""What the router tells about itself: what it holds on, its heartbeat file, its log summary, and the
outbox relay that runs beside it.

The heartbeat (`router-<name>.json` in the heartbeat folder) is what `aims status` and the stack read.
A mixin of `Router`: the attributes it declares are set in `Router.__init__`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from events.offsets import OffsetLedger
from events.router_work import RouterStats, Work

if TYPE_CHECKING:
    from kafka.structs import TopicPartition

    from events.anchors import AnchorPublisher
    from events.outbox import OutboxRelay

log = logging.getLogger("aims.router")


class RouterLiveness:
    name: str
    stats: RouterStats
    _stop: threading.Event
    _outbox: OutboxRelay | None
    _anchors: AnchorPublisher | None
    _heartbeat_dir: Path | None
    _last_beat: float
    _last_summary: float
    _partitions: list[int]
    _ledger: OffsetLedger[TopicPartition, Work]
    _paused: set[TopicPartition]
    _trouble: dict[str, str]
    _chains: dict[str, deque[Work]]
    _waiting: set[str]

    # -- holding ----------------------------------------------------------------------------------

    def _in_trouble(self, on: str, message: str) -> None:
        if on not in self._trouble:
            log.warning("holding: %s; nothing unsettled is committed, retrying with backoff", message)
        self._trouble[on] = message
        self.stats.last_error = message

    def _out_of_trouble(self, on: str) -> None:
        if self._trouble.pop(on, None) is not None:
            log.info("%s is back: going on", on)

    # -- the outbox ---------------------------------------------------------------------------

    # Flows send their own events right after their commit; only rows a crashed run left behind
    # are this old.
    OUTBOX_EVERY = 10.0
    OUTBOX_AGE = 30.0

    def _relay_outbox(self) -> None:
        # The audit anchors ride on this thread: periodic, off the consumer loop, and the publisher
        # decides itself whether its interval has passed.
        while (self._outbox is not None or self._anchors is not None) and not self._stop.wait(
            self.OUTBOX_EVERY
        ):
            if self._outbox is not None:
                try:
                    sent = self._outbox.send(older_than=self.OUTBOX_AGE)
                except Exception as exc:  # noqa: BLE001 - the register may be away; the rows wait for the next pass
                    log.warning("outbox relay failed: %s", exc)
                else:
                    if sent:
                        log.info("relayed %d event(s) a flow run left in the outbox", sent)
            self._publish_anchor()

    def _publish_anchor(self) -> None:
        if self._anchors is None:
            return
        try:
            self._anchors.tick()
        except Exception as exc:  # noqa: BLE001 - Kafka or the register may be away; the next pass retries
            log.warning("publishing the audit anchor failed: %s", exc)

    # -- liveness ----------------------------------------------------------------------------

    # While records are uncommitted, the log says every this many seconds where they stand.
    SUMMARY_EVERY = 30.0

    def _beat(self) -> None:
        now = time.monotonic()
        if now - self._last_beat > 2:
            self._write_heartbeat()
            self._last_beat = now
        if now - self._last_summary > self.SUMMARY_EVERY and (self._ledger.total or self._trouble):
            self._last_summary = now
            log.info(
                "partitions %s: %d record(s) uncommitted, %d subject(s) in flight, %d waiting, paused %s%s",
                self._partitions,
                self._ledger.total,
                len(self._chains),
                len(self._waiting),
                sorted(tp.partition for tp in self._paused),
                f"; holding on {self.holding_on()}" if self.holding_on() else "",
            )

    # What stops everything comes first: with Kafka away nothing commits, with the register away
    # nothing settles; a refused launch holds only the subjects it carries (a busy Prefect refuses
    # one now and then even while the broker is down, and must not hide the outage from the operator).
    HOLD_ORDER = ("kafka", "register")

    def holding_on(self) -> str | None:
        """What the router waits for before it can go on: kafka, register, prefect; None if nothing."""
        for on in self.HOLD_ORDER:
            if on in self._trouble:
                return on
        if self.stats.holding_since is not None:
            return "prefect"
        return next(iter(self._trouble), None)

    def _write_heartbeat(self, final: bool = False) -> None:
        if self._heartbeat_dir is None:
            return
        self._heartbeat_dir.mkdir(parents=True, exist_ok=True)
        path = self._heartbeat_dir / f"router-{self.name}.json"
        if final:
            path.unlink(missing_ok=True)
            return
        holding_on = self.holding_on()
        state = "holding" if holding_on is not None else "routing" if self._partitions else "idle"
        beat = {
            "name": self.name,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "at": time.time(),
            "assigned": bool(self._partitions),
            "partitions": self._partitions,
            "state": state,
            "holding": holding_on is not None,
            "holding_on": holding_on,
            "in_flight": self._ledger.total,
            "waiting_subjects": len(self._waiting),
            "consumed": self.stats.consumed,
            "routed": self.stats.routed,
            "dead_lettered": self.stats.dead_lettered,
            "stood_down": self.stats.stood_down,
            "rejoined": self.stats.rejoined,
            "last_error": self.stats.last_error,
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(beat))
        tmp.replace(path)
