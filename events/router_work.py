"""The router's books: one consumed record and what became of it, the counters, the backoff.

Shared by the consumer loop (events.router), the flow-run chains (events.router_chains) and the
liveness reports (events.router_liveness).
"""

from __future__ import annotations

import logging
import random
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from uuid import UUID

from events.codec import MAX_DETAIL, Reason, Rejected
from schemas.envelope import printable
from schemas.events import AimsEvent

if TYPE_CHECKING:
    from kafka.consumer.fetcher import ConsumerRecord

log = logging.getLogger("aims.router")

MAX_BACKOFF = 5.0
# Datasets remembered per router; one forgotten only costs its next superseded check a flow run.
LATEST_COALESCED = 10_000


@dataclass(eq=False)
class Work:
    """One consumed record and what became of it. Compared by identity: the ledger relies on it."""

    record: ConsumerRecord
    event: AimsEvent | None = None
    rejected: Rejected | None = None
    runs: dict[str, UUID] = field(default_factory=dict)
    accepted: bool = False
    # Its partition went to another router: whatever still happens to it is not ours to commit.
    dropped: bool = False
    # Too large to dead-letter whole: its dead letter is a reference.
    as_reference: bool = False
    dead_letter_attempts: int = 0
    # Compared with the receipt under its source#id (a conflicting duplicate starts nothing).
    checked: bool = False

    @property
    def chain(self) -> str:
        # One subject's events stay in order; records without a key keep their partition's order.
        key = self.record.key
        subject = key.decode("utf-8", "replace") if key else "-"
        return f"{self.record.partition}:{subject}"

    @property
    def size(self) -> int:
        return len(self.record.value or b"") + len(self.record.key or b"")


def conflicting_duplicate(w: Work, why: str) -> None:
    """Turn `w` into a dead letter of its own reason, and alert: one of two copies is not genuine."""
    why = printable(why, MAX_DETAIL)  # it quotes the producer's source and id
    w.rejected = Rejected(Reason.conflicting_duplicate, why)
    w.event = None
    log.error(
        "conflicting duplicate at %s[%d]@%d: %s", w.record.topic, w.record.partition, w.record.offset, why
    )


@dataclass
class RouterStats:
    consumed: int = 0
    routed: int = 0
    dead_lettered: int = 0
    commits: int = 0
    # Coalesced runs this router stood down before they started (a later change replaced them).
    stood_down: int = 0
    # Times the consumer joined its group afresh after a rebalance that never ended (events.rebalance).
    rejoined: int = 0
    # Since when Prefect has not accepted runs (None: it does).
    holding_since: float | None = None
    last_error: str = ""


class LatestCoalesced:
    """Per coalescing tag, the last run this router started and the record that started it.

    When a later change of the same dataset starts its run, the one before it has nothing left to
    check: the router stands it down before it starts (`connectors.prefect_runs.SUPERSEDED`), and the
    check that does run records it. Without this every superseded change used a flow run of its own to
    find out (seconds of CPU each: a burst of 10,000 changes took hours to record).
    """

    def __init__(self, limit: int = LATEST_COALESCED) -> None:
        self._limit = limit
        self._runs: OrderedDict[str, tuple[UUID, int, int]] = OrderedDict()

    def replace(self, tag: str, run_id: UUID, partition: int, offset: int) -> UUID | None:
        """Remember `run_id` (started by the record at `partition`/`offset`) as the latest of `tag`;
        return the run it replaces, to be stood down if it has not started
        (`connectors.prefect_runs.PrefectLauncher.stand_down` reads its state first).

        Only a run started by an earlier record of the same partition is replaced: a record delivered
        again (the partition came back to this router) starts no stand-down of the runs after it.
        """
        previous = self._runs.get(tag)
        if previous is not None:
            _, prev_partition, prev_offset = previous
            if prev_partition == partition and offset <= prev_offset:
                return None  # delivered again: the run after it stays the latest
        self._runs[tag] = (run_id, partition, offset)
        self._runs.move_to_end(tag)
        while len(self._runs) > self._limit:
            self._runs.popitem(last=False)
        if previous is None or previous[0] == run_id or previous[1] != partition:
            return None
        return previous[0]


class Backoff:
    """When to try an outside call again after failures: doubling, with full jitter, capped."""

    def __init__(self) -> None:
        self.failures = 0
        self.next_at = 0.0

    def due(self) -> bool:
        return time.monotonic() >= self.next_at

    def failed(self) -> None:
        self.failures += 1
        self.next_at = time.monotonic() + random.uniform(0, min(MAX_BACKOFF, 0.25 * 2**self.failures))

    def succeeded(self) -> None:
        self.failures = 0
        self.next_at = 0.0
