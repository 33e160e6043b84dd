"""How much evidence the register holds for each clause and control, through what implements it.

An implementation (a flow, the router, a record type) gives evidence for the ids the catalogue maps
it to. Its evidence is counted where it is recorded: a flow's evidence records, the router's event
receipts, a record type's inserts in the audit log.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import func, select

from connectors.register.store import UnitOfWork
from connectors.register.tables import audit_log, entity_for
from schemas.catalogue import Catalogue, EvidenceStat
from schemas.trail import EventReceived, EvidenceRecord

ROUTER = "event-router"
# The `flow` of evidence a person supplied (`aims evidence add`): it counts for the controls it names.
SUPPLIED = "supplied"


def implementation_stats(uow: UnitOfWork) -> dict[str, EvidenceStat]:
    """Evidence per implementation name: flows, the router, and each record type."""
    stats: dict[str, EvidenceStat] = {}
    evidence = entity_for(EvidenceRecord).table
    # Evidence counts from when it was collected (supplied evidence may be recorded long after).
    collected = func.coalesce(evidence.c.collected_at, evidence.c.recorded_at)
    for flow, count, last in uow.conn.execute(
        select(evidence.c.flow, func.count(), func.max(collected)).group_by(evidence.c.flow)
    ):
        stats[flow] = EvidenceStat(count, _aware(last))
    received = entity_for(EventReceived).table
    count, last = uow.conn.execute(select(func.count(), func.max(received.c.received_at))).one()
    stats[ROUTER] = EvidenceStat(count, _aware(last))
    for entity, count, last in uow.conn.execute(
        select(audit_log.c.entity, func.count(), func.max(audit_log.c.at))
        .where(audit_log.c.action == "insert")
        .group_by(audit_log.c.entity)
    ):
        stats[entity] = EvidenceStat(count, datetime.fromisoformat(last))
    writes, last_write = uow.conn.execute(select(func.count(), func.max(audit_log.c.at))).one()
    stats["audit_log"] = EvidenceStat(writes, datetime.fromisoformat(last_write) if last_write else None)
    return stats


def evidence_by_id(uow: UnitOfWork, catalogue: Catalogue) -> dict[str, EvidenceStat]:
    """Evidence per clause and control id: the sum over everything that implements it."""
    per_name = implementation_stats(uow)
    counts: dict[str, int] = defaultdict(int)
    lasts: dict[str, datetime] = {}
    for impl in catalogue.implementations:
        stat = per_name.get(impl.name)
        if stat is None or stat.count == 0:
            continue
        for id_ in (*impl.clauses, *impl.controls):
            counts[id_] += stat.count
            if stat.last_at is not None and (id_ not in lasts or stat.last_at > lasts[id_]):
                lasts[id_] = stat.last_at
    evidence = entity_for(EvidenceRecord).table
    collected = func.coalesce(evidence.c.collected_at, evidence.c.recorded_at)
    # Supplied evidence counts for the controls it names (they were checked when it was added).
    supplied = select(evidence.c.controls, collected).where(evidence.c.flow == SUPPLIED)
    for ids, raw in uow.conn.execute(supplied):
        at = _aware(raw)
        for id_ in ids if isinstance(ids, list) else []:
            counts[id_] += 1
            if at is not None and (id_ not in lasts or at > lasts[id_]):
                lasts[id_] = at
    return {id_: EvidenceStat(n, lasts.get(id_)) for id_, n in counts.items()}


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite aggregates come back as text, not through the column type
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
