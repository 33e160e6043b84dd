"""The router's record of the events it accepted, one register row per source#id."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol
from uuid import UUID

from connectors.register.store import Register
from schemas.events import AimsEvent
from schemas.records import EventReceived


class ReceiptLog(Protocol):
    def record(self, accepted: Sequence[tuple[AimsEvent, Mapping[str, UUID]]]) -> None:
        """Store the accepted events and the flow runs they started; raise if that is impossible."""
        ...


class RegisterReceipts:
    def __init__(self, register: Register, actor: str) -> None:
        self.register = register
        self.actor = actor

    def record(self, accepted: Sequence[tuple[AimsEvent, Mapping[str, UUID]]]) -> None:
        if not accepted:
            return
        with self.register.unit_of_work(self.actor) as uow:
            for event, runs in accepted:
                run_ids = sorted(str(r) for r in runs.values())
                existing = uow.events.get(event.dedup_key)
                if existing is None:
                    uow.events.add(
                        EventReceived(
                            key=event.dedup_key,
                            type=event.type,
                            source=event.source,
                            subject=event.key,
                            event_time=event.time if event.time and event.time.tzinfo else None,
                            flow_runs=run_ids,
                            data=event.model_dump(mode="json")["data"],
                        )
                    )
                elif set(run_ids) - set(existing.flow_runs):
                    # A redelivery after a crash: the same runs (idempotency keys), or more routes since.
                    uow.events.update(event.dedup_key, flow_runs=sorted({*existing.flow_runs, *run_ids}))
