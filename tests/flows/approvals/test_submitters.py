"""Separation of duties on people, and the proof each channel must give: the pure rules.

A model's owner is "person or team": a team is every one of its members, however the owner or the
approver is spelled; an owner the policy cannot resolve costs one more approver, and says why.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from pydantic import ValidationError

from flows.approvals.messages import facts, issue_description, request_blocks
from flows.approvals.rules import Attempt, Refused, authority, check, tally
from schemas.payloads import ApprovalOutcome, Decision, DecisionChannel, RiskLevel
from schemas.people import by_name
from schemas.policy import Policy
from schemas.records import Approval, ApprovalDecision
from tests.people import AISHA, CLAIRE, DEV, JON, LI, MARIA, SAM, TOM, spellings
from tests.records import requested_approval
from tests.resources import example_policy

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def request(level: RiskLevel, owner: str, policy: Policy | None = None) -> Approval:
    """As request-approval records it: the rule of `level` and what the owner resolves to."""
    return requested_approval(level, owner, policy or example_policy(), T0)


def click(who: str, decision: Decision = Decision.approve, slack_id: str | None = None) -> Attempt:
    """A signed Slack click by `who`, with the Slack id the policy pins to them unless given."""
    person = by_name(example_policy().people, who)
    credential = slack_id or (person.slack if person else None) or "UNOBODY001"
    return Attempt("x", who, decision, DecisionChannel.slack, "why", T0, credential)


def verdict(approval: Approval, attempt: Attempt) -> Refused | None:
    result = check(approval, authority(approval, example_policy()), [], attempt)
    assert not isinstance(result, Exception)
    return result if isinstance(result, Refused) else None


def approved_by(*people: str) -> list[ApprovalDecision]:
    return [
        ApprovalDecision(
            approval_id="x",
            decided_by=p,
            channel="slack",
            decision="approve",
            decided_at=T0 + timedelta(minutes=i),
        )
        for i, p in enumerate(people)
    ]


# -- a team is its members --------------------------------------------------------------------------


def test_a_team_owner_excludes_every_member_and_no_one_else() -> None:
    medium = request(RiskLevel.medium, "ml-platform")  # team ml-platform: dev and Li (model-risk)
    refused = verdict(medium, click(LI))
    assert refused is not None and "li.wei@northwind.example is in team ml-platform" in refused.why
    assert "separation of duties" in refused.why
    assert verdict(medium, click(AISHA)) is None
    assert medium.context["submitters"] == sorted([DEV, LI]) and medium.context["extra_approvers"] == 0


# Team names are lowercase in the policy; an owner may arrive in any case, with spaces around.
@given(owner=spellings("ml-platform"), approver=spellings(LI))
def test_every_spelling_of_the_team_and_its_member_is_refused(owner: str, approver: str) -> None:
    refused = verdict(request(RiskLevel.medium, owner), click(approver, slack_id="ULIWEI0001"))
    assert refused is not None and "separation of duties" in refused.why


@given(owner=spellings("model-risk"), approver=spellings(TOM))
def test_an_approver_groups_name_as_owner_is_that_group(owner: str, approver: str) -> None:
    refused = verdict(request(RiskLevel.high, owner), click(approver, slack_id="UTOMBE0001"))
    assert refused is not None and "approver group model-risk" in refused.why


def test_a_person_owner_is_that_person_only() -> None:
    high = request(RiskLevel.high, f"  {TOM.upper()} ")
    assert verdict(high, click(TOM)) is not None and verdict(high, click(AISHA)) is None
    assert high.context["extra_approvers"] == 0 and high.context["submitter_note"] is None


# -- an owner that is nobody costs one more approver ------------------------------------------------


def test_an_unknown_owner_needs_one_more_approver_and_says_why() -> None:
    medium = request(RiskLevel.medium, "contractors@vendor.example")
    rules = authority(medium, example_policy())
    assert rules.needed == 2 and medium.context["extra_approvers"] == 1
    note = medium.context["submitter_note"]
    assert "'contractors@vendor.example' is no person or team of the policy" in note
    assert "one more approver than the quorum" in note
    one = tally(rules, approved_by(AISHA))
    assert one.outcome is None and one.progress == "1 of 2 approvals"
    assert tally(rules, approved_by(AISHA, TOM)).outcome is ApprovalOutcome.approved
    # The request says so where the approvers read it.
    assert ("Approvers", "2 of model-risk") in facts(medium)
    assert ("Separation of duties", note) in facts(medium)
    assert "one more approver than the quorum" in issue_description(medium)
    assert "one more approver than the quorum" in str(request_blocks(medium, "waiting"))


def test_with_distinct_groups_the_extra_approver_comes_on_top_of_each_group() -> None:
    critical = request(RiskLevel.critical, "somebody")  # compliance and executive, quorum 2
    rules = authority(critical, example_policy())
    two = tally(rules, approved_by(MARIA, SAM))
    assert two.outcome is None and two.progress == "2 of 3 approvals"
    three_one_group = tally(rules, approved_by(MARIA, JON, MARIA))
    assert three_one_group.outcome is None and "still needed from executive" in three_one_group.progress
    assert tally(rules, approved_by(MARIA, SAM, CLAIRE)).outcome is ApprovalOutcome.approved


def test_no_owner_at_all_changes_nothing() -> None:
    rules = authority(request(RiskLevel.medium, ""), example_policy())
    assert rules.needed == 1 and not rules.submitters.people


# -- what each channel must prove -------------------------------------------------------------------


def test_a_slack_click_by_another_id_than_the_one_the_policy_pins_is_refused() -> None:
    refused = verdict(request(RiskLevel.medium, DEV), click(AISHA, slack_id="UMALLORY01"))
    assert refused is not None and "is not aisha.khan@northwind.example's Slack account" in refused.why


@pytest.mark.parametrize(
    ("channel", "credential", "says"),
    [
        (DecisionChannel.jira, "712020:someone-else", "Jira account 712020:someone-else is not mapped"),
        (DecisionChannel.jira, None, "the jira channel proved no identity"),
        (DecisionChannel.slack, None, "the slack channel proved no identity"),
        (DecisionChannel.cli, None, "the cli channel proved no identity"),
        (DecisionChannel.prefect_ui, None, "Prefect UI's resume form cannot prove who is deciding"),
    ],
)
def test_a_channel_that_does_not_prove_the_person_is_refused(
    channel: DecisionChannel, credential: str | None, says: str
) -> None:
    attempt = Attempt("x", AISHA, Decision.approve, channel, "", T0, credential)
    refused = verdict(request(RiskLevel.medium, DEV), attempt)
    assert refused is not None and says in refused.why


def test_the_policy_refuses_one_slack_or_jira_id_for_two_people() -> None:
    data = example_policy().model_dump(mode="json")
    data["people"][TOM]["slack"] = data["people"][AISHA]["slack"]
    data["people"]["AISHA.KHAN@northwind.example"] = {"logins": ["x"]}
    with pytest.raises(ValidationError) as raised:
        Policy.model_validate(data)
    text = str(raised.value)
    assert "'UAISHA0001' is another person's already" in text
    assert "spelled otherwise" in text


def test_who_left_the_submitting_team_since_the_request_still_may_not_approve() -> None:
    medium = request(RiskLevel.medium, "ml-platform")
    data = example_policy().model_dump(mode="json")
    data["teams"]["ml-platform"]["members"] = [DEV]  # Li moved on after the request
    later = Policy.model_validate(data)
    refused = check(medium, authority(medium, later), [], click(LI))
    assert isinstance(refused, Refused) and "was among the submitters" in refused.why


def test_a_request_by_event_records_who_its_submitter_is_and_what_follows() -> None:
    from flows.approvals.request_approval import new_approval  # imports Prefect: not at collection time
    from schemas.events import ApprovalRequestedEvent

    def asked(requested_by: str) -> Approval:
        event = ApprovalRequestedEvent.model_validate(
            {
                "specversion": "1.0",
                "id": "approval-e:requested",
                "source": "urn:aims:tests",
                "time": T0.isoformat(),
                "data": {
                    "approval_id": "approval-e",
                    "subject": "model-version:credit-scoring/7",
                    "requested_decision": "go-live",
                    "risk_level": "high",
                    "requested_by": requested_by,
                },
            }
        )
        return new_approval(event, example_policy())

    team = asked("ml-platform").context
    assert team["submitters"] == sorted([DEV, LI]) and team["extra_approvers"] == 0
    assert "submitted by ml-platform" in team["submitter_note"]
    nobody = asked("release-bot").context
    assert nobody["submitters"] == [] and nobody["extra_approvers"] == 1
    assert "'release-bot' is no person or team of the policy" in nobody["submitter_note"]
