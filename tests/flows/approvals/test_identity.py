"""One person, however their e-mail is spelled: segregation of duties cannot be dodged by case or spaces.

Slack, Jira and the CLI hand over e-mail addresses as the person typed or the directory stores them;
the submitter recorded on a request and the approver of a decision are compared as one identity.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given

from flows.approvals.rules import Attempt, Refused, authority, check, same_person
from schemas.payloads import Decision, DecisionChannel, RiskLevel
from schemas.people import by_name
from schemas.policy import Policy
from schemas.records import Approval
from tests.people import AISHA, TOM, spellings
from tests.resources import example_policy

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def request_by(submitter: str, policy: Policy) -> Approval:
    """A medium-risk request (model-risk decides, separation of duties on) submitted by `submitter`."""
    rule = policy.approvals[RiskLevel.medium]
    return Approval(
        id="approval-sod",
        subject="go-live:credit-scoring",
        system="credit-scoring",
        requested_decision="go-live",
        risk_level=RiskLevel.medium,
        approver_group=",".join(rule.groups),
        quorum=rule.quorum,
        context={"separation_of_duties": True, "submitted_by": submitter},
        requested_by="flow:onboard-model",
        requested_at=T0,
        due_at=T0 + timedelta(hours=120),
    )


def approve_as(approver: str) -> Attempt:
    """A signed Slack click by `approver`: the Slack user id the policy pins to them."""
    person = by_name(example_policy().people, approver)
    assert person is not None and person.slack is not None
    return Attempt("approval-sod", approver, Decision.approve, DecisionChannel.slack, "", T0, person.slack)


def verdict(submitter: str, approver: str, policy: Policy) -> object:
    request = request_by(submitter, policy)
    return check(request, authority(request, policy), [], approve_as(approver))


def test_the_submitter_spelled_in_capitals_with_spaces_may_not_approve(policy: Policy) -> None:
    result = verdict("  Tom.Becker@NorthWind.EXAMPLE \t", TOM, policy)
    assert isinstance(result, Refused) and "separation of duties" in result.why


def test_the_approver_spelled_in_capitals_with_spaces_is_still_the_submitter(policy: Policy) -> None:
    result = verdict(TOM, " TOM.BECKER@northwind.example  ", policy)
    assert isinstance(result, Refused) and "separation of duties" in result.why


def test_another_member_of_the_group_may_approve(policy: Policy) -> None:
    assert verdict(f" {TOM.upper()} ", AISHA, policy) is None


@given(submitter=spellings(TOM), approver=spellings(TOM))
def test_every_spelling_of_the_submitter_is_refused_as_approver(submitter: str, approver: str) -> None:
    policy = example_policy()
    assert same_person(submitter, approver)
    result = verdict(submitter, approver, policy)
    assert isinstance(result, Refused) and "separation of duties" in result.why


@given(submitter=spellings(TOM), approver=spellings(AISHA))
def test_no_spelling_makes_two_people_one(submitter: str, approver: str) -> None:
    assert not same_person(submitter, approver)
    assert verdict(submitter, approver, example_policy()) is None
