"""Evidence from before the register moves into it once, and the old file is kept aside."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from connectors.register import open_register
from schemas.settings import AimsSettings

OLD_SCHEMA = """
CREATE TABLE evidence (
    id INTEGER PRIMARY KEY AUTOINCREMENT, event_key TEXT NOT NULL, flow TEXT NOT NULL,
    event_type TEXT NOT NULL, subject TEXT NOT NULL, flow_run_id TEXT, recorded_at TEXT NOT NULL,
    controls TEXT NOT NULL, outcome TEXT NOT NULL, event TEXT NOT NULL, UNIQUE (event_key, flow)
)
"""


def test_old_evidence_is_imported_once(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "evidence.sqlite")
    old.execute(OLD_SCHEMA)
    for i in range(3):
        old.execute(
            "INSERT INTO evidence (event_key, flow, event_type, subject, flow_run_id, recorded_at,"
            " controls, outcome, event)"
            " VALUES (?, 'onboard-model', 't', 's', NULL, '2026-11-27T10:00:00+00:00', ?, ?, ?)",
            (f"urn:x#{i}", json.dumps(["A.6.2.8"]), json.dumps({"n": i}), json.dumps({"id": str(i)})),
        )
    old.commit()
    old.close()

    register = open_register(AimsSettings(state_dir=tmp_path))
    with register.reader() as uow:
        imported = uow.evidence.find(order_by="event_key")
        actors = {e.actor for e in uow.audit_entries()}
    assert [e.outcome for e in imported] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert actors == {"import:evidence.sqlite"}
    assert not (tmp_path / "evidence.sqlite").exists() and (tmp_path / "evidence.sqlite.imported").exists()
    assert register.verify_audit().ok

    again = open_register(AimsSettings(state_dir=tmp_path))
    with again.reader() as uow:
        assert uow.evidence.count() == 3
