"""What MLflow should say of the versions AIMS governs, from register rows (mlflow_writeback.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from flows.models.mlflow_writeback import (
    TAG_APPROVAL,
    TAG_APPROVAL_LINK,
    TAG_ASSESSMENT,
    TAG_ASSESSMENT_LINK,
    TAG_RESIDUAL,
    AliasPlan,
    Links,
    alias_step,
    plan,
    tag_changes,
)
from schemas.payloads import RiskLevel
from schemas.records import Approval, ModelVersion, RiskAssessment

SYSTEM = "credit-scoring"
MODEL = "cs-model"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ALIAS = "production"


def version(number: str, from_mlflow: bool = True) -> ModelVersion:
    key = f"urn:aims:gateway:mlflow#{MODEL}/{number}" if from_mlflow else f"urn:aims:tests#{number}"
    return ModelVersion(
        id=f"{SYSTEM}/{MODEL}/{number}",
        system=SYSTEM,
        model_name=MODEL,
        version=number,
        source_uri=f"models:/{MODEL}/{number}",
        submitted_by="ml-platform",
        event_key=key,
    )


def assessment(
    aid: str, evidence: str, minutes: int, approval_id: str | None = None, level: RiskLevel = RiskLevel.high
) -> RiskAssessment:
    return RiskAssessment(
        id=aid,
        system=SYSTEM,
        reason="new_model_version",
        trigger=f"urn:aims:tests#{aid}",
        evidence=evidence,
        inputs={},
        highest_inherent=level,
        highest_residual=level,
        approval_id=approval_id,
        # Frozen when assessed: true while its own approval was pending, and so after it too.
        blocked=approval_id is not None,
        assessed_by="flow:reassess-risk",
        assessed_at=T0 + timedelta(minutes=minutes),
        flow_run_id=f"run-{aid}",
    )


def approval(aid: str, status: str, jira: str | None = None) -> Approval:
    return Approval(
        id=f"approval-{aid}",
        subject=f"risk-assessment:{aid}",
        system=SYSTEM,
        requested_decision="risk-acceptance",
        approver_group="model-risk",
        status=status,
        requested_by="flow:reassess-risk",
        flow_run_id=f"approval-run-{aid}",
        jira_issue=jira,
    )


V1, V2 = version("1"), version("2")


def test_an_assessment_waiting_for_approval_is_tagged_pending_and_gets_no_alias() -> None:
    a1 = assessment("ra-1", V1.id, 0, "approval-ra-1")
    found = plan([V1], [a1], [approval("ra-1", "pending")], ALIAS)
    [planned] = found.versions
    assert planned.tags == {TAG_ASSESSMENT: "ra-1", TAG_RESIDUAL: "high", TAG_APPROVAL: "pending"}
    assert planned.not_cleared is not None and "pending, not approved" in planned.not_cleared
    assert found.aliases == (AliasPlan(MODEL, ALIAS, None, frozenset({"1"})),)


def test_once_approved_the_version_is_cleared_though_its_assessment_was_blocked_when_made() -> None:
    a1 = assessment("ra-1", V1.id, 0, "approval-ra-1")
    assert a1.blocked
    found = plan([V1], [a1], [approval("ra-1", "approved")], ALIAS)
    assert found.versions[0].tags[TAG_APPROVAL] == "approved" and found.versions[0].not_cleared is None
    assert found.aliases[0].version == "1"


def test_links_name_the_assessments_run_and_the_approvals_jira_issue() -> None:
    a1 = assessment("ra-1", V1.id, 0, "approval-ra-1")
    links = Links(prefect_ui="http://prefect:4200", jira="https://jira.example/")
    tags = plan([V1], [a1], [approval("ra-1", "approved", jira="MRC-7")], ALIAS, links).versions[0].tags
    assert tags[TAG_ASSESSMENT_LINK] == "http://prefect:4200/runs/flow-run/run-ra-1"
    assert tags[TAG_APPROVAL_LINK] == "https://jira.example/browse/MRC-7"
    # Without Jira, the request-approval run; without either, no link at all.
    tags = plan([V1], [a1], [approval("ra-1", "approved")], ALIAS, links).versions[0].tags
    assert tags[TAG_APPROVAL_LINK] == "http://prefect:4200/runs/flow-run/approval-run-ra-1"
    assert TAG_APPROVAL_LINK not in plan([V1], [a1], [approval("ra-1", "approved")], ALIAS).versions[0].tags


def test_a_later_blocking_assessment_of_the_system_takes_the_alias_from_every_version() -> None:
    a1 = assessment("ra-1", V1.id, 0, "approval-ra-1")
    incident = assessment("ra-2", "incident-42", 10, "approval-ra-2")
    found = plan([V1], [a1, incident], [approval("ra-1", "approved"), approval("ra-2", "pending")], ALIAS)
    [planned] = found.versions
    # The incident's assessment governs the version now: it speaks of the whole system.
    assert planned.tags[TAG_ASSESSMENT] == "ra-2" and planned.tags[TAG_APPROVAL] == "pending"
    assert found.aliases[0].version is None
    assert alias_step(found.aliases[0], {ALIAS: "1"}) is not None


def test_another_versions_assessment_does_not_speak_of_this_one_but_its_pending_approval_holds_all() -> None:
    a1 = assessment("ra-1", V1.id, 0, "approval-ra-1")
    a2 = assessment("ra-2", V2.id, 10, "approval-ra-2")
    approvals = [approval("ra-1", "approved"), approval("ra-2", "pending")]
    found = plan([V1, V2], [a1, a2], approvals, ALIAS)
    assert [(p.version, p.tags[TAG_ASSESSMENT], p.tags[TAG_APPROVAL]) for p in found.versions] == [
        ("1", "ra-1", "approved"),
        ("2", "ra-2", "pending"),
    ]
    assert all(p.not_cleared for p in found.versions) and found.aliases[0].version is None
    # Once v2 is approved too, the alias goes to the newest cleared version.
    approvals[1] = approval("ra-2", "approved")
    assert plan([V1, V2], [a1, a2], approvals, ALIAS).aliases[0].version == "2"


def test_a_rejected_newer_version_leaves_the_alias_on_the_older_cleared_one() -> None:
    a1 = assessment("ra-1", V1.id, 0, "approval-ra-1")
    a2 = assessment("ra-2", V2.id, 10, "approval-ra-2")
    found = plan([V1, V2], [a1, a2], [approval("ra-1", "approved"), approval("ra-2", "rejected")], ALIAS)
    assert found.aliases[0].version == "1"
    assert found.versions[1].tags[TAG_APPROVAL] == "rejected"


def test_an_assessment_that_asked_no_approval_is_not_required_and_cleared() -> None:
    a1 = assessment("ra-1", V1.id, 0, None, RiskLevel.low)
    found = plan([V1], [a1], [], ALIAS)
    assert found.versions[0].tags[TAG_APPROVAL] == "not-required" and found.versions[0].not_cleared is None


def test_versions_that_did_not_come_from_mlflow_are_left_alone_and_no_alias_without_the_policy() -> None:
    other = version("3", from_mlflow=False)
    a1 = assessment("ra-1", V1.id, 0)
    found = plan([V1, other], [a1], [], None)
    assert [p.version for p in found.versions] == ["1"] and found.aliases == ()


def test_an_alias_on_a_version_aims_does_not_govern_is_taken_from_no_one() -> None:
    wanted = AliasPlan(MODEL, ALIAS, None, frozenset({"1", "2"}))
    assert alias_step(wanted, {ALIAS: "9"}) is None
    assert alias_step(wanted, {}) is None
    step = alias_step(wanted, {ALIAS: "2", "candidate": "1"})
    assert step is not None and step.version is None
    assert alias_step(AliasPlan(MODEL, ALIAS, "2", frozenset({"2"})), {ALIAS: "2"}) is None


def test_only_missing_or_different_tags_are_set_again() -> None:
    assert tag_changes({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "x"}) == {"b": "2"}


STATUSES = st.sampled_from(["pending", "approved", "rejected", "expired"])


@given(
    statuses=st.lists(STATUSES, min_size=1, max_size=5),
    minutes=st.lists(st.integers(0, 10), min_size=5, max_size=5),
    order=st.randoms(use_true_random=False),
)
def test_the_plan_is_the_same_in_any_order_of_the_rows(
    statuses: list[str], minutes: list[int], order: object
) -> None:
    """Runs read the register in whatever order it answers: the plan may not depend on it, even for
    assessments at the same instant (ties are broken by id)."""
    import random

    assert isinstance(order, random.Random)
    versions = [version(str(i + 1)) for i in range(len(statuses))]
    assessments = [
        assessment(f"ra-{i}", v.id, minutes[i], f"approval-ra-{i}") for i, v in enumerate(versions)
    ]
    approvals = [approval(f"ra-{i}", s) for i, s in enumerate(statuses)]
    expected = plan(versions, assessments, approvals, ALIAS)
    for rows in (versions, assessments, approvals):
        order.shuffle(rows)
    assert plan(versions, assessments, approvals, ALIAS) == expected
    # The alias is on the newest version exactly when nothing is pending and it was approved.
    cleared = [str(i + 1) for i, s in enumerate(statuses) if s == "approved"]
    target = cleared[-1] if cleared and "pending" not in statuses else None
    assert expected.aliases[0].version == target
