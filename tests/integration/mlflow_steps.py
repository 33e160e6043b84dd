"""Steps of the MLflow integration test: read assessments and write-back evidence, approve in Slack."""

from __future__ import annotations

from typing import Any

from schemas.records import RiskAssessment
from schemas.trail import EvidenceRecord
from tests.integration.approvals.steps import approval, click, request_message
from tests.people import AISHA, MARIA, SAM
from tests.support import SessionStack, poll

WRITE_BACK = "write-back-to-mlflow"
# One approver of each group of the example policy, and the Slack channel their requests go to.
APPROVERS = {
    "model-risk": (AISHA, "ai-model-risk"),
    "compliance": (MARIA, "compliance-approvals"),
    "executive": (SAM, "exec-risk-decisions"),
}


def assessment_of(stack: SessionStack, system: str, evidence: str | None) -> RiskAssessment | None:
    """The system's latest assessment (of `evidence`, when given)."""
    with stack.register().reader() as uow:
        found = uow.assessments.find(system=system, order_by="assessed_at", descending=True)
    return next((a for a in found if evidence is None or a.evidence == evidence), None)


def write_backs(stack: SessionStack, system: str) -> list[EvidenceRecord]:
    with stack.register().reader() as uow:
        rows = uow.evidence.find(flow=WRITE_BACK)
    return [r for r in rows if r.outcome.get("ai_system") == system]


def approve_all(stack: SessionStack, gateway: str, approval_id: str) -> None:
    """Approve in the fakes' Slack, one approver per group the request names, until it is approved."""
    groups = approval(stack, approval_id).groups
    for group in groups:
        who, channel = APPROVERS[group]
        answer = click(stack, gateway, request_message(stack, approval_id, channel), who, "approve", "ok")
        assert answer.status_code == 200, answer.text
        if approval(stack, approval_id).status == "approved":
            break

    def decided() -> Any:
        return approval(stack, approval_id).status == "approved" or None

    poll(decided, 120, f"approval {approval_id} approved")
