"""A local evidence store: an SQLite file in the state folder, written idempotently.

Keyed by (event, flow), so a retried or resumed flow run never records the same thing twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Protocol

from schemas.records import EvidenceRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS evidence (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_key TEXT NOT NULL,
    flow TEXT NOT NULL,
    event_type TEXT NOT NULL,
    subject TEXT NOT NULL,
    flow_run_id TEXT,
    recorded_at TEXT NOT NULL,
    controls TEXT NOT NULL,
    outcome TEXT NOT NULL,
    event TEXT NOT NULL,
    UNIQUE (event_key, flow)
)
"""


class EvidenceStore(Protocol):
    def record(self, item: EvidenceRecord) -> bool:
        """Store the record; False if this event was already recorded by this flow."""
        ...

    def list(self, flow: str | None = None, limit: int = 100) -> list[EvidenceRecord]: ...


class SqliteEvidenceStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Several flow runs write at once from separate processes: wait for the lock, don't fail.
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)
            with conn:
                yield conn
        finally:
            conn.close()

    def record(self, item: EvidenceRecord) -> bool:
        with self._connect() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO evidence (event_key, flow, event_type, subject, flow_run_id,"
                " recorded_at, controls, outcome, event) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    item.event_key,
                    item.flow,
                    item.event_type,
                    item.subject,
                    item.flow_run_id,
                    item.recorded_at.isoformat(),
                    json.dumps(item.controls),
                    json.dumps(item.outcome, sort_keys=True, default=str),
                    json.dumps(item.event, sort_keys=True, default=str),
                ),
            )
            return cur.rowcount == 1

    def list(self, flow: str | None = None, limit: int = 100) -> list[EvidenceRecord]:
        query = (
            "SELECT event_key, flow, event_type, subject, flow_run_id, recorded_at, controls,"
            " outcome, event FROM evidence"
        )
        args: tuple[object, ...] = ()
        if flow is not None:
            query += " WHERE flow = ?"
            args = (flow,)
        query += " ORDER BY id DESC LIMIT ?"
        with self._connect() as conn:
            rows = conn.execute(query, (*args, limit)).fetchall()
        return [
            EvidenceRecord(
                event_key=r[0],
                flow=r[1],
                event_type=r[2],
                subject=r[3],
                flow_run_id=r[4],
                recorded_at=datetime.fromisoformat(r[5]),
                controls=json.loads(r[6]),
                outcome=json.loads(r[7]),
                event=json.loads(r[8]),
            )
            for r in rows
        ]
