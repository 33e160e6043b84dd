"""The audit log's hash chain catches edits, deletions and reordering made directly in the database."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from connectors.register.audit import GENESIS, HeadRow, entry_hash, jcs, text_entry_hash, verify_chain
from connectors.register.store import Register
from connectors.register.tables import audit_log
from schemas import records as r
from schemas.trail import AuditEntry, EvidenceRecord
from tests.records import sample


def populate(register: Register) -> None:
    """Five entries: three inserts, two updates."""
    with register.unit_of_work("flow:onboard-model/run-1") as uow:
        uow.systems.add(sample(r.AISystem))
        uow.evidence.add(sample(EvidenceRecord))
    with register.unit_of_work("cli:ana") as uow:
        uow.systems.update("credit-scoring", owner="model-risk")
        uow.incidents.add(sample(r.Incident))
        uow.incidents.update("urn:support#77", status="contained")


def raw(register: Register, *statements: str) -> None:
    with register.engine.connect() as conn, conn.begin():
        for statement in statements:
            conn.execute(text(statement))


def test_a_clean_log_verifies(register: Register) -> None:
    populate(register)
    report = register.verify_audit()
    assert report.ok and report.entries == 5 and report.head_seq == 5 and len(report.head_hash) == 64


def test_an_edited_entry_is_reported(register: Register) -> None:
    populate(register)
    raw(register, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
    problem = register.verify_audit().problem
    assert problem is not None and (problem.seq, problem.kind) == (3, "altered")
    assert "ai_system 'credit-scoring'" in problem.detail and "mallory" in problem.detail


def test_an_edited_snapshot_is_reported_even_with_a_recomputed_hash_of_its_own(register: Register) -> None:
    populate(register)
    with register.engine.connect() as conn:
        entry = dict(conn.execute(select(audit_log).where(audit_log.c.seq == 2)).mappings().one())
    after = {**json.loads(entry["after_text"]), "outcome": {"registered": False}}
    forged = {**entry, "after_text": jcs(after)}
    forged["hash"] = text_entry_hash(forged, None)  # the register has no key: plain SHA-256 entries
    params = {"after": forged["after_text"], "hash": forged["hash"]}
    with register.engine.connect() as conn, conn.begin():
        conn.execute(text("UPDATE audit_log SET after_text = :after, hash = :hash WHERE seq = 2"), params)
    problem = register.verify_audit().problem
    # Its own hash checks out now, but the next entry no longer follows it.
    assert problem is not None and (problem.seq, problem.kind) == (3, "reordered")


def test_a_deleted_entry_is_reported(register: Register) -> None:
    populate(register)
    raw(register, "DELETE FROM audit_log WHERE seq = 2")
    problem = register.verify_audit().problem
    assert problem is not None and (problem.seq, problem.kind) == (2, "deleted")


def test_entries_deleted_from_the_end_are_reported(register: Register) -> None:
    populate(register)
    raw(register, "DELETE FROM audit_log WHERE seq >= 4")
    problem = register.verify_audit().problem
    assert problem is not None and (problem.seq, problem.kind) == (4, "deleted")


def test_reordered_entries_are_reported(register: Register) -> None:
    populate(register)
    # Swap entries 2 and 4 by renumbering them (their contents and hashes untouched).
    raw(
        register,
        "UPDATE audit_log SET seq = 1000 WHERE seq = 2",
        "UPDATE audit_log SET seq = 2 WHERE seq = 4",
        "UPDATE audit_log SET seq = 4 WHERE seq = 1000",
    )
    problem = register.verify_audit().problem
    assert problem is not None and problem.seq == 2 and problem.kind in {"altered", "reordered"}


def test_a_register_row_edited_behind_the_registers_back_is_reported(register: Register) -> None:
    populate(register)
    raw(register, "UPDATE incident SET severity = 'low' WHERE id = 'urn:support#77'")
    problem = register.verify_audit().problem
    assert problem is not None and problem.kind == "row altered" and problem.seq == 5
    assert "incident 'urn:support#77'" in problem.detail


def test_register_rows_deleted_or_added_behind_its_back_are_reported(register: Register) -> None:
    populate(register)
    raw(register, "DELETE FROM evidence")
    problem = register.verify_audit().problem
    assert problem is not None and problem.kind == "row deleted"

    raw(register, "DELETE FROM incident")
    with register.unit_of_work("t") as uow:
        uow.evidence.add(sample(EvidenceRecord))
    raw(
        register,
        "INSERT INTO dataset (name, owner, description, suite, created_at)"
        " VALUES ('smuggled', '', '', NULL, '2026-01-01 00:00:00')",
    )
    problem = register.verify_audit().problem
    assert problem is not None and problem.kind in {"row deleted", "unlogged row"}


def _chain(n: int) -> list[AuditEntry]:
    entries, prev = [], GENESIS
    for seq in range(1, n + 1):
        fields = {
            "seq": seq,
            "at": f"2026-11-28T00:00:{seq:02d}+00:00",
            "actor": "t",
            "action": "insert",
            "entity": "evidence",
            "entity_id": f"k#{seq}",
            "before": None,
            "after": {"n": seq},
            "prev_hash": prev,
        }
        fields["hash"] = entry_hash(fields)
        entries.append(AuditEntry.model_validate(fields))
        prev = fields["hash"]
    return entries


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(2, 12),
    data=st.data(),
    field=st.sampled_from(["at", "actor", "action", "entity", "entity_id", "after"]),
    value=st.one_of(st.text(max_size=8), st.integers()),
)
def test_any_single_change_to_any_entry_is_caught(
    n: int, data: st.DataObject, field: str, value: object
) -> None:
    entries = _chain(n)
    head = (entries[-1].seq, entries[-1].hash)
    victim = data.draw(st.integers(0, n - 1))
    changed = {"after": {"n": value}} if field == "after" else {field: str(value)}
    if entries[victim].model_dump() | changed == entries[victim].model_dump():
        return
    tampered = [*entries]
    tampered[victim] = entries[victim].model_copy(update=changed)
    assert verify_chain(entries, head).ok
    problem = verify_chain(tampered, head).problem
    assert problem is not None and problem.seq == victim + 1


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_any_deletion_or_swap_is_caught(data: st.DataObject) -> None:
    entries = _chain(data.draw(st.integers(3, 10)))
    head = (entries[-1].seq, entries[-1].hash)
    i = data.draw(st.integers(0, len(entries) - 2))
    if data.draw(st.booleans()):
        tampered = entries[:i] + entries[i + 1 :]
    else:
        tampered = [*entries]
        tampered[i], tampered[i + 1] = tampered[i + 1], tampered[i]
    assert not verify_chain(tampered, head).ok
    assert not verify_chain(entries[:-1], head).ok


@pytest.mark.parametrize("head", [None, (0, GENESIS)])
def test_an_empty_log_verifies(head: tuple[int, str] | None) -> None:
    assert verify_chain([], head).ok


KEY = b"k" * 32


def _keyed_chain(n: int) -> list[dict[str, object]]:
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        row: dict[str, object] = {
            "seq": seq,
            "at": f"2026-12-05T00:00:{seq:02d}+00:00",
            "actor": "t",
            "action": "update",
            "entity": "evidence",
            "entity_id": f"k#{seq}",
            "encoding": "jcs",
            "before_text": jcs({"n": seq - 1}),
            "after_text": jcs({"n": seq}),
            "prev_hash": prev,
        }
        row["hash"] = text_entry_hash(row, KEY)
        rows.append(row)
        prev = str(row["hash"])
    return rows


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 10),
    data=st.data(),
    field=st.sampled_from(["at", "actor", "action", "entity", "entity_id", "before_text", "after_text"]),
    value=st.one_of(st.text(max_size=8), st.integers(), st.floats(allow_nan=False, allow_infinity=False)),
)
def test_any_single_change_to_a_keyed_entry_is_caught_even_with_its_plain_hash_recomputed(
    n: int, data: st.DataObject, field: str, value: object
) -> None:
    rows = _keyed_chain(n)
    head = HeadRow(n, str(rows[-1]["hash"]), keyed_from=1)
    assert verify_chain(rows, head, key=KEY).ok
    victim = data.draw(st.integers(0, n - 1))
    new = jcs({"n": value}) if field.endswith("_text") else str(value)
    if rows[victim][field] == new:
        return
    forged = {**rows[victim], field: new}
    forged["hash"] = text_entry_hash(forged, None)  # the forger has no key
    tampered = [*rows[:victim], forged, *rows[victim + 1 :]]
    problem = verify_chain(tampered, head, key=KEY).problem
    assert problem is not None and problem.seq == victim + 1
