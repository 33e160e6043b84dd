"""Receipts tell a redelivery (the same content) from a conflicting duplicate (other content, same id)."""

from __future__ import annotations

from uuid import uuid4

import pytest

from connectors.register.receipts import RegisterReceipts
from connectors.register.store import Register
from schemas.events import AimsEvent, DataQualityValidatedEvent
from schemas.trail import EventReceived


def _validated(verdict: str = "passed", event_id: str = "dq-1") -> AimsEvent:
    return DataQualityValidatedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": "urn:tests:producer",
            "data": {"dataset_id": "loans", "version": "v1", "verdict": verdict},
        }
    )


@pytest.fixture
def receipts(register: Register) -> RegisterReceipts:
    return RegisterReceipts(register, actor="router:test")


def test_a_redelivery_is_no_conflict_and_adds_only_new_runs(
    receipts: RegisterReceipts, register: Register
) -> None:
    event, run, later = _validated(), uuid4(), uuid4()
    assert receipts.record([(event, {"a": run})]) == {}
    assert receipts.conflict(event) is None
    assert receipts.record([(event, {"a": run, "b": later})]) == {}
    with register.reader() as uow:
        receipt = uow.events.one(event.dedup_key)
    assert receipt.flow_runs == sorted([str(run), str(later)]) and receipt.content_hash


def test_other_content_under_a_received_id_is_a_conflict_and_the_first_stands(
    receipts: RegisterReceipts, register: Register
) -> None:
    first, other = _validated("passed"), _validated("failed")
    receipts.record([(first, {})])
    why = receipts.conflict(other)
    assert why is not None and first.dedup_key in why and "other content" in why
    assert receipts.record([(other, {})]) == {0: why}
    with register.reader() as uow:
        assert uow.events.one(first.dedup_key).data["verdict"] == "passed"


def test_two_copies_in_one_batch_are_compared_too(receipts: RegisterReceipts, register: Register) -> None:
    first, same, other = _validated("passed"), _validated("passed"), _validated("failed")
    conflicts = receipts.record([(first, {}), (same, {}), (other, {})])
    assert list(conflicts) == [2]
    with register.reader() as uow:
        assert uow.events.one(first.dedup_key).data["verdict"] == "passed"
        assert len(uow.audit_entries("event_received", first.dedup_key)) == 1


def test_a_receipt_from_before_hashes_is_compared_by_its_content(
    receipts: RegisterReceipts, register: Register
) -> None:
    event = _validated("passed", "dq-legacy")
    with register.unit_of_work("router:old") as uow:
        uow.events.add(
            EventReceived(
                key=event.dedup_key,
                type=event.type,
                source=event.source,
                subject=event.key,
                data=event.model_dump(mode="json")["data"],
            )
        )
    assert receipts.conflict(event) is None
    assert receipts.conflict(_validated("failed", "dq-legacy")) is not None
