"""The audit writer as it was before migration 0011, for tests of registers written back then:
before/after in the JSON columns, plain SHA-256 over Python's sorted-key JSON (connectors.register.audit
`entry_hash`, which still verifies such entries)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, Text, insert, select, update

from connectors.register.audit import GENESIS, entry_hash
from connectors.register.tables import JsonColumn

# The two tables as migration 0002 made them: what the old writer knew.
_old = MetaData()
OLD_LOG = Table(
    "audit_log",
    _old,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", String(40)),
    Column("actor", Text),
    Column("action", String(10)),
    Column("entity", String(40)),
    Column("entity_id", Text),
    Column("before", JsonColumn),
    Column("after", JsonColumn),
    Column("prev_hash", String(64)),
    Column("hash", String(64)),
)
OLD_HEAD = Table(
    "audit_head",
    _old,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer),
    Column("hash", String(64)),
)


def append_legacy_audit(
    conn: Connection,
    action: str,
    entity: str,
    entity_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    actor: str = "legacy",
) -> str:
    """Append one legacy entry after the head and move the head; returns its hash."""
    head = conn.execute(select(OLD_HEAD.c.seq, OLD_HEAD.c.hash)).first()
    seq, prev = (head.seq + 1, head.hash) if head else (1, GENESIS)
    fields: dict[str, Any] = {
        "seq": seq,
        "at": f"2026-11-28T00:00:{seq:02d}.000000+00:00",
        "actor": actor,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "before": before,
        "after": after,
        "prev_hash": prev,
    }
    fields["hash"] = entry_hash(fields)
    conn.execute(insert(OLD_LOG).values(**fields))
    if head is None:
        conn.execute(insert(OLD_HEAD).values(id=1, seq=seq, hash=fields["hash"]))
    else:
        conn.execute(update(OLD_HEAD).values(seq=seq, hash=fields["hash"]))
    return str(fields["hash"])
