"""The write-back flow's steps on a real register and a recording MLflow (write_back_to_mlflow.py).

The steps run as the flow runs them, without a Prefect server (`.fn`); the flow around them is
exercised end to end against a real MLflow server in tests/integration/test_mlflow_intake.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.mlflow_registry import RegistryUnavailable
from connectors.register.store import Register
from flows.runtime import Runtime, use
from schemas.events import ApprovalDecidedEvent, RiskAssessedEvent
from schemas.mlflow import MlflowWriteBack
from schemas.policy import Policy
from schemas.settings import load_settings
from tests.flows.models.test_mlflow_writeback import MODEL, SYSTEM, V1, approval, assessment
from tests.resources import example_policy

ALIAS = "production"


class RecordingMlflow:
    """MLflow's registry as the write-back sees it: tags per version, aliases per model, every write."""

    def __init__(self) -> None:
        self.tags: dict[str, dict[str, str]] = {}
        self.alias_of: dict[str, str] = {}
        self.writes: list[tuple[str, ...]] = []
        self.down = False

    def version_tags(self, name: str, version: str) -> dict[str, str]:
        return dict(self.tags.get(version, {}))

    def aliases(self, name: str) -> dict[str, str]:
        return dict(self.alias_of)

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.writes.append(("tag", version, key, value))
        self.tags.setdefault(version, {})[key] = value

    def set_alias(self, name: str, alias: str, version: str) -> None:
        if self.down:
            raise RegistryUnavailable("MLflow answered 503 to /api/2.0/mlflow/registered-models/alias")
        self.writes.append(("alias", alias, version))
        self.alias_of[alias] = version

    def delete_alias(self, name: str, alias: str) -> None:
        self.writes.append(("delete", alias))
        self.alias_of.pop(alias, None)


def policy_with(write_back: MlflowWriteBack) -> Policy:
    policy = example_policy()
    return policy.model_copy(update={"mlflow": policy.mlflow.model_copy(update={"write_back": write_back})})


@pytest.fixture
def mlflow() -> RecordingMlflow:
    return RecordingMlflow()


@pytest.fixture
def runtime(register: Register, mlflow: RecordingMlflow) -> Iterator[Runtime]:
    resources = Runtime(
        settings=load_settings(),
        register=register,
        load_policy=lambda: policy_with(MlflowWriteBack(approved_alias=ALIAS)),
        mlflow=mlflow,
    )
    with use(resources):
        yield resources


def seed(register: Register, status: str) -> None:
    from schemas.records import AISystem

    with register.unit_of_work("test") as uow:
        uow.systems.add(AISystem(name=SYSTEM, owner="ml-platform", intended_use="Score loans"))
        uow.model_versions.add(V1)
        uow.assessments.add(assessment("ra-1", V1.id, 0, "approval-ra-1"))
        uow.approvals.add(approval("ra-1", status))


def decided(outcome: str = "approved") -> ApprovalDecidedEvent:
    return ApprovalDecidedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": f"approval-ra-1:{outcome}",
            "source": "urn:aims:request-approval",
            "data": {
                "approval_id": "approval-ra-1",
                "subject": "risk-assessment:ra-1",
                "requested_decision": "risk-acceptance",
                "outcome": outcome,
                "approved": outcome == "approved",
                "decisions": [
                    {
                        "approver": "aisha.khan@northwind.example",
                        "decision": "approve",
                        "channel": "slack",
                        "decided_at": datetime.now(UTC).isoformat(),
                    }
                ]
                if outcome == "approved"
                else [],
                "decided_at": datetime.now(UTC).isoformat(),
            },
        }
    )


def run(event: RiskAssessedEvent | ApprovalDecidedEvent) -> dict[str, Any]:
    """The flow's steps, in its order."""
    import flows.models.write_back_to_mlflow as wb

    system = wb.system_of(event)
    assert system is not None
    wanted = wb.plan_for.fn(system)
    assert not isinstance(wanted, str), wanted
    outcome = wb.outcome_of(system, wanted, wb.converge(wanted, lambda: wb.plan_for.fn(system), wb.apply.fn))
    wb.record.fn(event, outcome)
    return outcome


def test_an_approval_tags_the_version_and_moves_the_alias_once(
    register: Register, runtime: Runtime, mlflow: RecordingMlflow
) -> None:
    seed(register, "approved")
    event = decided()
    outcome = run(event)
    assert mlflow.tags["1"]["aims.approval"] == "approved" and mlflow.tags["1"]["aims.assessment"] == "ra-1"
    assert mlflow.alias_of == {ALIAS: "1"}
    assert outcome["aliases_changed"] == [f"{MODEL} @{ALIAS} → version 1 (newest cleared version)"]
    # Again (a redelivery, a retry, a re-run): MLflow is there already, nothing is written twice.
    writes = list(mlflow.writes)
    assert run(event)["tags_set"] == [] and mlflow.writes == writes
    with register.reader() as uow:
        [row] = uow.evidence.find(flow="write-back-to-mlflow")
    assert row.event_key == event.dedup_key and row.outcome["alias_targets"] == {f"{MODEL}@{ALIAS}": "1"}


def test_a_pending_approval_takes_away_an_alias_set_by_hand(
    register: Register, runtime: Runtime, mlflow: RecordingMlflow
) -> None:
    seed(register, "pending")
    mlflow.alias_of = {ALIAS: "1", "candidate": "1"}
    run(decided("expired"))
    assert mlflow.alias_of == {"candidate": "1"} and mlflow.tags["1"]["aims.approval"] == "pending"


def test_mlflow_down_fails_the_step_keeps_the_decision_and_a_rerun_converges(
    register: Register, runtime: Runtime, mlflow: RecordingMlflow
) -> None:
    seed(register, "approved")
    mlflow.down = True
    with pytest.raises(RegistryUnavailable):
        run(decided())
    with register.reader() as uow:
        assert uow.approvals.one("approval-ra-1").status == "approved"
        assert uow.evidence.find(flow="write-back-to-mlflow") == []
    mlflow.down = False
    run(decided())
    assert mlflow.alias_of == {ALIAS: "1"}


def test_nothing_is_planned_when_the_policy_writes_nothing_back(register: Register, runtime: Runtime) -> None:
    import flows.models.write_back_to_mlflow as wb

    seed(register, "approved")
    runtime.load_policy = lambda: policy_with(MlflowWriteBack(tags=False, approved_alias=None))
    assert "neither tags nor an approved alias" in str(wb.plan_for.fn(SYSTEM))


def test_a_system_without_mlflow_versions_is_skipped(register: Register, runtime: Runtime) -> None:
    import flows.models.write_back_to_mlflow as wb

    assert wb.plan_for.fn("never-seen") == "no version of never-seen came from MLflow"


def test_a_decision_recorded_while_the_run_writes_is_written_in_the_same_run(
    register: Register, runtime: Runtime, mlflow: RecordingMlflow
) -> None:
    """A run planned on 'pending'; the approval lands while it writes: its second pass moves the alias,
    so a slower run never leaves the older state behind the newer one."""
    import flows.models.write_back_to_mlflow as wb

    seed(register, "pending")
    stale = wb.plan_for.fn(SYSTEM)
    assert not isinstance(stale, str)

    def write_then_approve(wanted: Any) -> dict[str, list[str]]:
        written = wb.apply.fn(wanted)
        with register.unit_of_work("test") as uow:
            uow.approvals.update("approval-ra-1", status="approved")
        return written

    wb.converge(stale, lambda: wb.plan_for.fn(SYSTEM), write_then_approve)
    assert mlflow.alias_of == {ALIAS: "1"} and mlflow.tags["1"]["aims.approval"] == "approved"
