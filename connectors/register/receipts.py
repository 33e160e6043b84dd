"""The router's record of the events it accepted, one register row per source#id.

It is also where the router tells a redelivery from a conflicting duplicate: each receipt keeps the
hash of its event's canonical form, and a later event under the same source#id with another hash is
not recorded (the first one stands) but reported, for the router to dead-letter and alert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol
from uuid import UUID

from connectors.register.store import Register
from schemas.events import AimsEvent
from schemas.signing import content_hash
from schemas.trail import EventReceived


class ReceiptLog(Protocol):
    def conflict(self, event: AimsEvent) -> str | None:
        """Why `event` conflicts with the receipt under its source#id; None if none or the same."""
        ...

    def record(self, accepted: Sequence[tuple[AimsEvent, Mapping[str, UUID]]]) -> dict[int, str]:
        """Store the accepted events and the flow runs they started; raise if that is impossible.

        Returns, by their position in `accepted`, the events that were not stored because their id
        was received before with other content (why, as `conflict` says it).
        """
        ...


def _differs(receipt: EventReceived, event: AimsEvent, digest: str) -> str | None:
    """Why `event` is not the event `receipt` recorded; None when it is the same event."""
    if receipt.content_hash is not None:
        same = receipt.content_hash == digest
    else:  # a receipt from before hashes were kept: its type, source, subject and data must match
        same = (receipt.type, receipt.source, receipt.subject, receipt.data) == (
            event.type,
            event.source,
            event.key,
            event.model_dump(mode="json")["data"],
        )
    if same:
        return None
    stored = f"sha256 {receipt.content_hash[:16]}…" if receipt.content_hash else "a receipt without a hash"
    return (
        f"{event.dedup_key} was received at {receipt.received_at.isoformat()} with other content "
        f"({stored}; this one sha256 {digest[:16]}…); the first one stands, this one started nothing"
    )


class RegisterReceipts:
    def __init__(self, register: Register, actor: str) -> None:
        self.register = register
        self.actor = actor

    def conflict(self, event: AimsEvent) -> str | None:
        with self.register.reader() as uow:
            receipt = uow.events.get(event.dedup_key)
        return None if receipt is None else _differs(receipt, event, content_hash(event))

    def record(self, accepted: Sequence[tuple[AimsEvent, Mapping[str, UUID]]]) -> dict[int, str]:
        conflicts: dict[int, str] = {}
        if not accepted:
            return conflicts
        with self.register.unit_of_work(self.actor) as uow:
            # Receipts added in this unit, so that two copies in one batch are compared too.
            added: dict[str, EventReceived] = {}
            for position, (event, runs) in enumerate(accepted):
                run_ids = sorted(str(r) for r in runs.values())
                digest = content_hash(event)
                existing = added.get(event.dedup_key) or uow.events.get(event.dedup_key)
                if existing is None:
                    added[event.dedup_key] = receipt = EventReceived(
                        key=event.dedup_key,
                        type=event.type,
                        source=event.source,
                        subject=event.key,
                        event_time=event.time if event.time and event.time.tzinfo else None,
                        flow_runs=run_ids,
                        data=event.model_dump(mode="json")["data"],
                        content_hash=digest,
                    )
                    uow.events.add(receipt)
                elif (why := _differs(existing, event, digest)) is not None:
                    # Checked before its launch too; this catches two copies racing to the register.
                    conflicts[position] = why
                elif set(run_ids) - set(existing.flow_runs):
                    # A redelivery after a crash: the same runs (idempotency keys), or more routes since.
                    merged = sorted({*existing.flow_runs, *run_ids})
                    uow.events.update(event.dedup_key, flow_runs=merged)
                    if event.dedup_key in added:
                        added[event.dedup_key] = existing.model_copy(update={"flow_runs": merged})
        return conflicts
