"""One filled-in example of every register record, every optional field set."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from schemas import records as r
from schemas.payloads import RiskLevel
from schemas.trail import EventReceived, EvidenceRecord, OutboxMessage, WebhookDelivery
from tests.people import DEV

if TYPE_CHECKING:
    from schemas.policy import Policy

R = TypeVar("R", bound=r.Record)

T0 = datetime(2026, 11, 2, 9, 30, 15, 123456, tzinfo=UTC)


def every_record() -> list[r.Record]:
    later = T0 + timedelta(hours=5)
    return [
        r.AISystem(
            name="credit-scoring",
            owner="risk-analytics",
            intended_use="Score consumer loan applications for human underwriters",
            lifecycle_stage=r.LifecycleStage.deployed,
            risk_tier="high",
            description="Gradient-boosted trees",
            created_at=T0,
            updated_at=later,
        ),
        r.ModelVersion(
            system="credit-scoring",
            model_name="credit-gbm",
            version="7",
            source_uri="models:/credit-gbm/7",
            submitted_by="ana@example.org",
            datasets=["loan-applications"],
            event_key="urn:mlflow#42",
            registered_at=T0,
        ),
        r.Dataset(
            name="loan-applications", owner="data-eng", description="Applications", suite="suites/loans.yaml"
        ),
        r.DatasetVersion(
            dataset="loan-applications",
            version="2026-11-02",
            location={"kind": "file", "uri": "file:///data/loans.csv"},
            content_hash="ab" * 32,
            size_bytes=1234,
            change_kind="append",
            produced_by="etl-nightly",
            provenance={"source": "core-banking", "event_key": "urn:etl#9"},
            status="accepted",
            received_at=T0,
        ),
        r.DataQualityResult(
            dataset_version_id="v1",
            suite_name="loans",
            suite_version="3",
            verdict="failed",
            statistics={"evaluated": 12, "failed": 1, "ratio": 0.9166},
            expectations=[
                {"type": "expect_column_values_to_not_be_null", "success": False, "unexpected": [None]}
            ],
            drift={"amount": {"psi": 0.31}},
            flow_run_id="fr-1",
            checked_at=later,
        ),
        r.SuiteReview(
            id="loans:accepted:0",
            dataset="loans",
            kind="acceptance",
            suite_version="baseline-1",
            suite_sha256="ab" * 32,
            reviewed_version="1",
            by=DEV,
            channel="cli",
            credential="dev",
            authenticated=True,
            accepted=True,
            refusal=None,
            note="accepted as drafted",
            at=later,
        ),
        r.Risk(
            system="credit-scoring",
            category="fairness",
            title="Disparate approval rates",
            owner="cro",
            likelihood=3,
            impact=4,
            inherent_level=r.RiskLevel.high,
            treatment="Quarterly bias audit",
            controls=["A.5.4", "A.7.4"],
            residual_level=r.RiskLevel.medium,
            next_review=date(2027, 2, 1),
            version=2,
            updated_at=later,
        ),
        r.RiskVersion(
            risk_id="risk-1",
            version=2,
            likelihood=3,
            impact=4,
            inherent_level=r.RiskLevel.high,
            treatment="Quarterly bias audit",
            controls=["A.5.4"],
            residual_level=r.RiskLevel.medium,
            rationale=[
                {"rule": "dq-failure-rate", "evidence": "1 of 4 checks failed", "effect": "+1 likelihood"}
            ],
            assessed_by="flow:reassess-risk",
            assessed_at=later,
            assessment_id="ra-1",
        ),
        r.RiskAssessment(
            id="ra-1",
            system="credit-scoring",
            reason="incident",
            trigger="urn:aims:handle-incident#reassess:inc-1",
            evidence="inc-1",
            inputs={"system": "credit-scoring", "incidents": [{"id": "inc-1", "severity": "high"}]},
            highest_inherent=r.RiskLevel.high,
            highest_residual=r.RiskLevel.medium,
            gated=["fairness"],
            approval_id="ap-1",
            blocked=True,
            assessed_by="flow:reassess-risk",
            assessed_at=later,
            flow_run_id="run-1",
        ),
        r.ImpactAssessment(
            system="credit-scoring",
            model_version_id="mv-1",
            status="completed",
            assessor="dpo@example.org",
            summary="Affects credit access",
            findings={"individuals": "denial of credit", "society": "none found"},
            due=date(2026, 12, 1),
            opened_at=T0,
            completed_at=later,
        ),
        r.Approval(
            subject="model_version:credit-gbm/7",
            system="credit-scoring",
            requested_decision="go-live",
            risk_level=r.RiskLevel.high,
            approver_group="model-risk",
            quorum=2,
            context={"risk": "risk-1"},
            status="approved",
            requested_by="flow:reassess-risk",
            requested_at=T0,
            due_at=later,
            decided_at=later,
            flow_run_id="fr-2",
            slack_channel="C0MODELRISK",
            slack_ts="1503435956.000247",
            jira_issue="MRC-12",
            escalated_to=["compliance"],
        ),
        r.ApprovalDecision(
            approval_id="ap-1",
            decided_by="bob@example.org",
            channel="slack",
            decision="approve",
            reason="Bias audit scheduled",
            accepted=False,
            refusal="bob submitted the model",
            decided_at=later,
        ),
        r.ApprovalNotice(
            id="ap-1:reminder:4",
            approval_id="ap-1",
            kind="reminder",
            step="4",
            recipients=["#ai-model-risk"],
            sent_at=later,
        ),
        r.Incident(
            id="urn:support#77",
            system="credit-scoring",
            title="Wrong denials",
            description="Scores shifted after release",
            category="fundamental_rights",
            severity="high",
            occurred_at=T0,
            detected_at=later,
            reported_by="support",
            status="triaged",
            serious=True,
            criteria=["fundamental-rights infringement"],
            reporting_due_at=later + timedelta(days=15),
            deadline_basis="art73-general-15d",
            authority_reference="NCA-2026-1",
            closed_at=None,
            reported_severity="medium",
            triaged_at=later,
            contained_at=later,
            reported_to_authority_at=later,
            slack_channel="C0INCIDENTS",
            slack_ts="1700000000.000100",
            jira_issue="AIINC-3",
            flow_run_id="run-7",
            inventory_finding="inventory:credit-scoring",
        ),
        r.IncidentUpdate(
            id="urn:support#77:contain",
            incident_id="urn:support#77",
            kind="contain",
            by="ops@example.org",
            channel="jira",
            detail="Model rolled back",
            at=later,
        ),
        r.IncidentNotice(
            id="urn:support#77:clock-reminder:0.5",
            incident_id="urn:support#77",
            kind="clock-reminder",
            step="0.5",
            recipients=["slack:C0INCIDENTS"],
            sent_at=later,
        ),
        r.EvidenceRequest(
            id="A.7.4@2026-11-01",
            control="A.7.4",
            status="stale",
            period_start=later,
            collections=["recheck-dataset:loans v2"],
            asked=["alice: A.7.4"],
            requested_at=later,
        ),
        r.Nonconformity(
            source="incident",
            source_ref="urn:support#77",
            description="Release without fairness check",
            root_cause="Checklist skipped",
            status="actions-planned",
            opened_at=T0,
            controls=["A.4.2", "A.6.2.6"],
        ),
        r.CorrectiveAction(
            nonconformity_id="nc-1",
            description="Block release without fairness check",
            owner="ml-platform",
            due=date(2026, 12, 15),
            status="verified",
            done_at=later,
            effectiveness="Two releases blocked as intended",
            verified_by="qa",
            verified_at=later,
        ),
        r.ManagementReview(
            kind="extraordinary",
            reason="serious incident urn:support#77",
            period_start=T0 - timedelta(days=90),
            period_end=T0,
            meeting_at=later,
            status="closed",
            pack={"inputs": {"1": "none open"}},
            pack_path="reviews/2026-q4.md",
            results=[{"decision": "Add fairness gate"}],
            trigger="urn:support#77",
            requested_by="aims:handle-incident",
            policy={"version": "2026-11"},
            files={"markdown": "reviews/rev-1/pack.md", "ics": "reviews/rev-1/invite.ics"},
            jira_issue="AIMS-9",
            flow_run_id="fr-9",
            prepared_at=later,
            closed_at=later,
            triggers=["urn:support#77", "incident:urn:support#78"],
            pack_triggers=["urn:support#77"],
        ),
        r.ReviewAction(
            review_id="rev-1",
            description="Add fairness gate",
            owner="cto",
            due=date(2027, 1, 31),
            recorded_by="ceo@example.com",
            recorded_at=later,
        ),
        r.ReviewResult(
            id="rev-1:action:ab12",
            review_id="rev-1",
            kind="action",
            by="ceo@example.com",
            channel="jira",
            text="Add fairness gate",
            owner="cto",
            due=date(2027, 1, 31),
            action_id="rev-1/A1",
            at=later,
        ),
        r.InterestedPartyNeed(
            party="Market surveillance authority",
            need="Serious incidents reported through the new portal",
            change="changed",
            recorded_by="compliance",
            recorded_at=T0,
        ),
        EventReceived(
            key="urn:mlflow#42",
            type="org.aims.model.version.registered",
            source="urn:mlflow",
            subject="credit-scoring",
            event_time=T0,
            received_at=later,
            flow_runs=["fr-1"],
            data={"version": "7"},
        ),
        EvidenceRecord(
            event_key="urn:mlflow#42",
            flow="onboard-model",
            event_type="org.aims.model.version.registered",
            subject="credit-scoring",
            flow_run_id="fr-1",
            recorded_at=later,
            controls=["A.6.2.8", "8.2"],
            outcome={"registered": True, "nested": {"k": [1, 2.5, None]}},
            event={"id": "42"},
        ),
        OutboxMessage(
            key="urn:aims:check-data-quality#validated:loans@1",
            topic="aims.events",
            event={"specversion": "1.0", "id": "validated:loans@1", "data": {"verdict": "passed"}},
            created_at=T0,
            sent_at=later,
        ),
        WebhookDelivery(
            key="mlflow#6f1c2d3e-0000-4000-8000-000000000001",
            sender="mlflow",
            kind="model_version.created",
            subject="side-project/2",
            ai_system=None,
            outcome="unmapped",
            reasons=["no AI system: the policy's mlflow.models does not map 'side-project'"],
            notes=[],
            data={"name": "side-project", "version": "2", "tags": {}},
            event_key=None,
            sent_at=T0,
            received_at=later,
        ),
    ]


def sample(record: type[R]) -> R:
    """The example of one record type."""
    return next(s for s in every_record() if isinstance(s, record))


def serious_incident(incident_id: str, detected_at: datetime, **changes: object) -> r.Incident:
    """A serious incident (fundamental rights, reported medium, triaged high) as triage leaves it:
    detected at `detected_at`, three hours after it occurred, the 15-day Art. 73 clock running."""
    incident = r.Incident(
        id=incident_id,
        system="credit-scoring",
        title="Approval rates dropped for one postcode group",
        category="fundamental_rights",
        severity="high",
        occurred_at=detected_at - timedelta(hours=3),
        detected_at=detected_at,
        reported_by="support@northwind.example",
        status="triaged",
        serious=True,
        criteria=["fundamental_rights_infringement"],
        reporting_due_at=detected_at + timedelta(days=15),
        deadline_basis="general",
        reported_severity="medium",
        triaged_at=detected_at,
    )
    return incident.model_copy(update=changes)


def waiting_approval(approval_id: str, requested_at: datetime, **changes: object) -> r.Approval:
    """A medium-risk treatment of credit-scoring's risks, waiting for one of model-risk, with five
    days to decide; submitted by DEV (who may therefore not approve it)."""
    approval = r.Approval(
        id=approval_id,
        subject="risk-assessment:ra-1",
        system="credit-scoring",
        requested_decision="risk-treatment",
        risk_level="medium",
        approver_group="model-risk",
        quorum=1,
        context={"submitted_by": DEV},
        requested_by="flow:reassess-risk",
        requested_at=requested_at,
        due_at=requested_at + timedelta(hours=120),
    )
    return approval.model_copy(update=changes)


def requested_approval(
    level: RiskLevel, owner: str, policy: Policy, at: datetime, **changes: object
) -> r.Approval:
    """An approval as request-approval records it: the policy's rule for `level`, and the people
    `owner` (the model's submitter) resolves to; a model version's go-live, asked at `at`."""
    from flows.approvals.rules import submitters

    rule = policy.approvals[level]
    approval = r.Approval(
        id=f"approval-{level.value}",
        subject="model-version:credit-scoring/7",
        system="credit-scoring",
        requested_decision="go-live",
        risk_level=level,
        approver_group=",".join(rule.groups),
        quorum=rule.quorum,
        context={
            "distinct_groups": rule.distinct_groups,
            "separation_of_duties": rule.separation_of_duties,
            "submitted_by": owner,
            **submitters(policy, owner).context(),
        },
        requested_by="flow:onboard-model",
        requested_at=at,
        due_at=at + timedelta(hours=24),
    )
    return approval.model_copy(update=changes)
