"""Staging events in the register's outbox, in the unit of work that writes what they report.

Staging is a register write, so it lives with the register: flows, the gateway and the CLI stage;
only `events.outbox.OutboxRelay` (the Kafka side) sends. See DESIGN.md "Outbox".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from schemas.events import AimsEvent
from schemas.trail import OutboxMessage

if TYPE_CHECKING:
    from connectors.register.store import UnitOfWork


def outbox_message(event: AimsEvent, topic: str) -> OutboxMessage:
    return OutboxMessage(key=event.dedup_key, topic=topic, event=event.model_dump(mode="json"))


def stage(uow: UnitOfWork, events: Iterable[AimsEvent], topic: str) -> list[str]:
    """Add the events to the outbox of this unit of work; a retried run's copies are not added twice."""
    keys = []
    for event in events:
        uow.outbox.add_if_absent(outbox_message(event, topic))
        keys.append(event.dedup_key)
    return keys
