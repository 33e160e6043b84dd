"""Evidence written before the register existed (`.aims/evidence.sqlite`), moved into it once.

The old file is renamed to `evidence.sqlite.imported` afterwards, not deleted, so nothing is lost even
if the import is questioned later.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from connectors.register.store import Register
from schemas.trail import EvidenceRecord

LEGACY_FILE = "evidence.sqlite"


def import_legacy_evidence(register: Register, state_dir: Path) -> int:
    """Import the old evidence file if there is one; returns how many records were new."""
    path = state_dir / LEGACY_FILE
    if not path.is_file():
        return 0
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT event_key, flow, event_type, subject, flow_run_id, recorded_at, controls, outcome, event"
            " FROM evidence ORDER BY id"
        ).fetchall()
    except sqlite3.DatabaseError:
        return 0  # not the old evidence file after all: leave it alone
    finally:
        conn.close()
    added = 0
    with register.unit_of_work(f"import:{path.name}") as uow:
        for key, flow, event_type, subject, run_id, recorded_at, controls, outcome, event in rows:
            when = datetime.fromisoformat(recorded_at)
            record = EvidenceRecord(
                event_key=key,
                flow=flow,
                event_type=event_type,
                subject=subject,
                flow_run_id=run_id,
                recorded_at=when if when.tzinfo else when.replace(tzinfo=UTC),
                controls=json.loads(controls),
                outcome=json.loads(outcome),
                event=json.loads(event),
            )
            added += uow.evidence.add_if_absent(record)
    # Another process may have imported it at the same time; add_if_absent kept the records single.
    with contextlib.suppress(FileNotFoundError):
        path.rename(path.with_name(LEGACY_FILE + ".imported"))
    return added
