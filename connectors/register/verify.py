"""`Register.verify_audit`: the chain walked in batches, then every register row against the log.

One pass over the log, `batch` entries at a time (keyset pagination on seq), keeps the previous hash
and, per record, only the seq and a digest of its last logged state: memory follows the number of
records, never the length of the log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, select

from connectors.register.anchors import AnchorSet
from connectors.register.audit import (
    TEXT,
    AuditProblem,
    AuditReport,
    HeadRow,
    check_keyed_from,
    jcs,
    verify_chain,
    verify_segment,
)
from connectors.register.tables import ENTITIES, Entity, audit_head, audit_log

LastState = dict[tuple[str, str], tuple[int, bytes | None]]


def verify_register(
    conn: Connection, key: bytes | None, anchors: AnchorSet | None, batch: int
) -> AuditReport:
    head = read_head(conn)
    last: LastState = {}
    report = verify_chain(
        _remember(_batches(conn, batch), last), head, key=key, anchors=anchors.by_seq if anchors else None
    )
    if anchors is not None:
        report = replace(report, anchors_rejected=anchors.rejected)
        if report.ok:
            problem = check_keyed_from(report, anchors.keyed_from)
            if problem is not None:
                return replace(report, problem=problem)
    if report.ok:
        problem = _check_rows(conn, last)
        if problem is not None:
            report = replace(report, problem=problem)
    return report


def read_head(conn: Connection) -> HeadRow | None:
    row = conn.execute(select(audit_head.c.seq, audit_head.c.hash, audit_head.c.keyed_from)).first()
    return HeadRow(row.seq, row.hash, row.keyed_from) if row else None


def check_since(
    conn: Connection, key: bytes | None, start: tuple[int, str] | None, head: HeadRow, batch: int = 500
) -> AuditProblem | None:
    """Whether the entries after `start` (trusted: the last anchor published) chain up to `head`."""
    return verify_segment(_batches(conn, batch, start[0] if start else 0), start, head, key)


def _batches(conn: Connection, size: int, after: int = 0) -> Iterator[Mapping[str, Any]]:
    """The log in seq order, `size` rows per query: no cursor held open, no whole log in memory."""
    while True:
        rows = (
            conn.execute(
                select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq).limit(size)
            )
            .mappings()
            .all()
        )
        yield from (dict(row) for row in rows)
        if len(rows) < size:
            return
        after = rows[-1]["seq"]


def _remember(rows: Iterator[Mapping[str, Any]], last: LastState) -> Iterator[Mapping[str, Any]]:
    """Pass the rows on, noting per record the seq and digest of its newest logged state."""
    for row in rows:
        if row.get("encoding") == TEXT:
            after = None if row["after_text"] is None else json.loads(row["after_text"])
        else:
            after = row["after"]
        last[(row["entity"], row["entity_id"])] = (row["seq"], _digest(row["entity"], after))
        yield row


def _digest(entity_name: str, after: dict[str, Any] | None) -> bytes | None:
    if after is None:
        return None
    entity = _BY_NAME.get(entity_name)
    return _state_digest(after if entity is None else _as_now(entity, after))


_BY_NAME = {entity.name: entity for entity in ENTITIES.values()}


def _state_digest(value: Any) -> bytes:
    # JCS on both sides of the comparison, integral doubles beyond 2**53 as the integers they write:
    # the same numbers compare equal however a database wrote them back (JSONB turned the float
    # 1e+22 into the integer 10000000000000000000000, which JCS would write differently).
    return hashlib.sha256(jcs(_integral(value)).encode()).digest()


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) > 2**53:
        # The integer its shortest decimal form denotes (what JSONB stores and JCS writes), not the
        # double's exact binary value: -4.865909381259369e16 is ...690 in text, ...688 in binary.
        return int(Decimal(repr(value)))
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def _as_now(entity: Entity, after: dict[str, Any]) -> dict[str, Any]:
    """A logged record as the record type reads it today.

    Entries written before a migration added a field lack it; the row then holds the field's
    default, which is what the record type fills in too. Values that were logged stay as logged.
    """
    try:
        return entity.record.model_validate(after).model_dump(mode="json")
    except ValidationError:
        return after


def _check_rows(conn: Connection, last: LastState) -> AuditProblem | None:
    """Compare every register row with the last state the log recorded for it."""
    for entity in ENTITIES.values():
        seen: set[str] = set()
        for row in conn.execute(select(entity.table)).mappings():
            record = entity.record.model_validate(dict(row))
            entity_id = " / ".join(str(getattr(record, k)) for k in entity.key)
            seen.add(entity_id)
            what = f"{entity.name} {entity_id!r}"
            logged = last.get((entity.name, entity_id))
            if logged is None:
                return AuditProblem(0, "unlogged row", f"{what} was written without an audit entry")
            if _state_digest(record.model_dump(mode="json")) != logged[1]:
                return AuditProblem(logged[0], "row altered", f"{what} differs from what this entry recorded")
        for (name, entity_id), (seq, after) in last.items():
            if name == entity.name and after is not None and entity_id not in seen:
                what = f"{entity.name} {entity_id!r}"
                return AuditProblem(seq, "row deleted", f"{what} is logged but no longer stored")
    return None
