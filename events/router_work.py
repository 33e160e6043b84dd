"""The router's books: one consumed record and what became of it, the counters, the backoff.

Shared by the consumer loop (events.router), the flow-run chains (events.router_chains) and the
liveness reports (events.router_liveness).
"""

from __future__ import annotations

import logging
import random
import time
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
    # Since when Prefect has not accepted runs (None: it does).
    holding_since: float | None = None
    last_error: str = ""


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
