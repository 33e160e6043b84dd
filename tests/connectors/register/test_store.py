"""The register on SQLite and PostgreSQL: round-trips, audited writes, all-or-nothing units of work."""

from __future__ import annotations

import threading

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from connectors.register.store import Duplicate, NotFound, Register, RegisterError
from connectors.register.tables import ENTITIES, entity_for
from schemas import records as r
from schemas.trail import EvidenceRecord
from tests.records import every_record, sample


def test_every_entity_has_a_sample() -> None:
    assert {type(s) for s in every_record()} == set(ENTITIES)


def test_every_entity_round_trips(register: Register) -> None:
    samples = every_record()
    with register.unit_of_work("test:round-trip") as uow:
        for item in samples:
            uow.repository(type(item)).add(item)
    with register.reader() as uow:
        for item in samples:
            repo = uow.repository(type(item))
            key = tuple(getattr(item, k) for k in repo.entity.key)
            assert repo.one(*key) == item
            assert repo.count() == 1
        entries = uow.audit_entries()
    assert [(e.action, e.entity) for e in entries] == [("insert", entity_for(type(s)).name) for s in samples]
    assert all(e.actor == "test:round-trip" and e.before is None for e in entries)
    assert register.verify_audit().ok


def test_updates_are_validated_and_audited_with_before_and_after(register: Register) -> None:
    system = sample(r.AISystem)
    with register.unit_of_work("cli:ana") as uow:
        uow.systems.add(system)
        uow.systems.update(system.name, owner="new-owner", lifecycle_stage="retired")
    with register.reader() as uow:
        stored = uow.systems.one(system.name)
        [_, change] = uow.audit_entries("ai_system", system.name)
    assert stored.owner == "new-owner" and stored.lifecycle_stage is r.LifecycleStage.retired
    assert change.action == "update" and change.before is not None and change.after is not None
    assert (change.before["owner"], change.after["owner"]) == (system.owner, "new-owner")

    with pytest.raises(ValidationError), register.unit_of_work("cli:ana") as uow:
        uow.systems.update(system.name, risk_tier="not-a-tier")
    with pytest.raises(ValueError, match="cannot change"), register.unit_of_work("cli:ana") as uow:
        uow.systems.update(system.name, name="renamed")
    with pytest.raises(ValueError, match="no field"), register.unit_of_work("cli:ana") as uow:
        uow.systems.update(system.name, colour="blue")
    with register.reader() as uow:
        assert uow.systems.one(system.name) == stored
        assert len(uow.audit_entries()) == 2


def test_a_failed_unit_of_work_leaves_nothing_behind(register: Register) -> None:
    with pytest.raises(RuntimeError, match="boom"), register.unit_of_work("flow:x") as uow:
        uow.systems.add(sample(r.AISystem))
        uow.evidence.add(sample(EvidenceRecord))
        raise RuntimeError("boom")
    with register.reader() as uow:
        assert uow.systems.count() == 0 and uow.evidence.count() == 0 and uow.audit_entries() == []
    assert register.verify_audit().ok


def test_duplicates_are_refused_and_add_if_absent_is_idempotent(register: Register) -> None:
    evidence = sample(EvidenceRecord)
    with register.unit_of_work("flow:onboard-model") as uow:
        assert uow.evidence.add_if_absent(evidence) is True
        assert uow.evidence.add_if_absent(evidence.model_copy(update={"outcome": {"other": 1}})) is False
    with pytest.raises(Duplicate, match="already in the register"), register.unit_of_work("flow:x") as uow:
        uow.evidence.add(evidence)
    with register.reader() as uow:
        assert uow.evidence.find() == [evidence]
        assert len(uow.audit_entries()) == 1
    with pytest.raises(NotFound, match="no ai_system 'ghost'"), register.reader() as uow:
        uow.systems.one("ghost")


def test_reads_cannot_write_and_writes_name_their_actor(register: Register) -> None:
    with pytest.raises(RegisterError, match="read-only"), register.reader() as uow:
        uow.systems.add(sample(r.AISystem))
    with pytest.raises(ValueError, match="actor"), register.unit_of_work("  "):
        pass


def test_find_filters_orders_and_limits(register: Register) -> None:
    base = sample(EvidenceRecord)
    with register.unit_of_work("t") as uow:
        for i in range(5):
            uow.evidence.add(base.model_copy(update={"event_key": f"k#{i}", "flow": "a" if i % 2 else "b"}))
    with register.reader() as uow:
        assert [e.event_key for e in uow.evidence.find(flow="a", order_by="event_key")] == ["k#1", "k#3"]
        assert [e.event_key for e in uow.evidence.find(order_by="event_key", descending=True, limit=2)] == [
            "k#4",
            "k#3",
        ]
        assert uow.evidence.count(flow="b") == 3


def test_concurrent_writers_keep_one_unbroken_chain(register: Register) -> None:
    base = sample(EvidenceRecord)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(15):
                with register.unit_of_work(f"worker-{worker}") as uow:
                    uow.evidence.add(base.model_copy(update={"event_key": f"w{worker}#{i}"}))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    report = register.verify_audit()
    assert report.ok, report.problem
    assert report.entries == 60 and report.head_seq == 60


def test_times_come_back_aware_and_in_utc(register: Register) -> None:
    with register.unit_of_work("t") as uow:
        uow.systems.add(sample(r.AISystem))
    with register.reader() as uow:
        raw = uow.conn.execute(text("SELECT count(*) FROM ai_system")).scalar_one()
        stored = uow.systems.one("credit-scoring")
    assert (
        raw == 1
        and stored.created_at.utcoffset() is not None
        and stored.created_at.utcoffset().total_seconds() == 0
    )
