"""`aims demo` approves what its assessments asked for as the policy's approvers would: with the
example policy, the approvals it picks are accepted and decide the request, never by a submitter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aims.demo import demo_approvers
from flows.approvals.rules import Attempt, authority, check, tally
from schemas.payloads import ApprovalOutcome, Decision, DecisionChannel, RiskLevel
from schemas.policy import Policy
from schemas.records import Approval, ApprovalDecision
from tests.people import DEV, LI
from tests.records import requested_approval

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def asked(level: RiskLevel, owner: str, policy: Policy) -> Approval:
    # What the demo's reassessment asks for: the acceptance of a risk.
    return requested_approval(
        level,
        owner,
        policy,
        T0,
        subject="risk-assessment:demo",
        requested_decision="risk-acceptance",
        requested_by="flow:reassess-risk",
    )


@pytest.mark.parametrize("level", [RiskLevel.medium, RiskLevel.high, RiskLevel.critical])
@pytest.mark.parametrize("owner", ["ml-platform", DEV, "someone@elsewhere.example"])
def test_the_demos_approvers_decide_the_request(level: RiskLevel, owner: str, policy: Policy) -> None:
    approval = asked(level, owner, policy)
    rules = authority(approval, policy)
    chosen = demo_approvers(approval, policy)
    if owner == "ml-platform":
        assert LI not in chosen  # in the team that submitted it
    accepted: list[ApprovalDecision] = []
    for i, who in enumerate(chosen):
        # As the demo decides: on the CLI, as whatever login runs it (the example's demo setting).
        attempt = Attempt(approval.id, who, Decision.approve, DecisionChannel.cli, "demo", T0, "whoever")
        assert check(approval, rules, accepted, attempt) is None, who
        accepted.append(
            ApprovalDecision(
                approval_id=approval.id,
                decided_by=who,
                channel="cli",
                decision="approve",
                decided_at=T0 + timedelta(minutes=i),
            )
        )
    assert tally(rules, accepted).outcome is ApprovalOutcome.approved
