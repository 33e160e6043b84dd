"""Who may decide, and when an approval is decided: the rules every channel shares."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.approvals.rules import Attempt, Duplicate, Refused, authority, check, tally
from schemas.payloads import ApprovalOutcome, Decision, DecisionChannel, RiskLevel
from schemas.people import by_name
from schemas.policy import Policy
from schemas.records import Approval, ApprovalDecision
from tests.people import AISHA, CLAIRE, DEV, JON, LI, MARIA, SAM, TOM
from tests.resources import example_policy

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SUBMITTER = DEV


def approval(level: RiskLevel, policy: Policy | None = None, **changes: object) -> Approval:
    policy = policy or example_policy()
    rule = policy.approvals[level]
    base = Approval(
        id=f"approval-{level.value}",
        subject="risk-assessment:ra-1",
        system="credit-scoring",
        requested_decision="risk-acceptance",
        risk_level=level,
        approver_group=",".join(rule.groups),
        quorum=rule.quorum,
        context={
            "distinct_groups": rule.distinct_groups,
            "separation_of_duties": rule.separation_of_duties,
            "submitted_by": SUBMITTER,
        },
        requested_by="flow:reassess-risk",
        requested_at=T0,
        due_at=T0 + timedelta(hours=policy.slas[level].decision_hours),
    )
    return base.model_copy(update=changes)


def clicked_by(who: str) -> str:
    """The Slack user id a signed click by `who` carries: the one the policy pins to them."""
    person = by_name(example_policy().people, who)
    return person.slack if person is not None and person.slack else "UNOBODY001"


def attempt(who: str, decision: Decision = Decision.approve, reason: str = "", **kw: object) -> Attempt:
    fields = {"channel": DecisionChannel.slack, "at": T0 + timedelta(hours=1), "credential": clicked_by(who)}
    fields |= kw
    return Attempt("approval-x", who, decision, reason=reason, **fields)  # type: ignore[arg-type]


def decided(who: str, decision: Decision = Decision.approve, minutes: int = 0) -> ApprovalDecision:
    return ApprovalDecision(
        id=f"d-{who}-{minutes}",
        approval_id="approval-x",
        decided_by=who,
        channel="slack",
        decision=decision.value,
        reason="ok",
        decided_at=T0 + timedelta(minutes=minutes),
    )


def verdict(a: Approval, who: str, decision: Decision = Decision.approve, reason: str = "", prior=()):  # type: ignore[no-untyped-def]
    return check(a, authority(a, example_policy()), list(prior), attempt(who, decision, reason))


# -- check ---------------------------------------------------------------------------------------


def test_a_member_of_the_levels_group_may_decide() -> None:
    assert verdict(approval(RiskLevel.medium), AISHA) is None
    assert verdict(approval(RiskLevel.medium), AISHA.upper()) is None  # emails compare case-blind


@pytest.mark.parametrize(
    ("level", "who", "says"),
    [
        (RiskLevel.medium, MARIA, "not in approver group(s) model-risk for a medium-risk decision"),
        (RiskLevel.critical, AISHA, "not in approver group(s) compliance, executive"),
        (RiskLevel.high, "mallory@evil.example", "not in approver group(s) model-risk, compliance"),
    ],
)
def test_outsiders_are_refused_with_the_groups_that_may(level: RiskLevel, who: str, says: str) -> None:
    result = verdict(approval(level), who)
    assert isinstance(result, Refused) and says in result.why


def test_the_submitter_may_not_approve_their_own_model() -> None:
    a = approval(RiskLevel.medium, context={"separation_of_duties": True, "submitted_by": TOM})
    result = verdict(a, TOM)
    assert isinstance(result, Refused) and "separation of duties" in result.why
    relaxed = approval(RiskLevel.medium, context={"separation_of_duties": False, "submitted_by": TOM})
    assert verdict(relaxed, TOM) is None


def test_a_rejection_needs_a_reason() -> None:
    result = verdict(approval(RiskLevel.medium), AISHA, Decision.reject, "  ")
    assert isinstance(result, Refused) and "needs a reason" in result.why
    assert verdict(approval(RiskLevel.medium), AISHA, Decision.reject, "bias audit missing") is None


def test_the_same_answer_twice_is_a_duplicate_and_a_change_of_mind_is_refused() -> None:
    a = approval(RiskLevel.high)
    prior = [decided(AISHA)]
    assert isinstance(verdict(a, AISHA, prior=prior), Duplicate)
    changed = verdict(a, AISHA, Decision.reject, "second thoughts", prior=prior)
    assert isinstance(changed, Refused) and "decisions are final" in changed.why


def test_a_decided_request_takes_no_more_decisions() -> None:
    result = verdict(approval(RiskLevel.medium, status="rejected"), TOM)
    assert isinstance(result, Refused) and "already rejected" in result.why


def test_only_the_deadline_expires_and_the_deadline_only_expires() -> None:
    a = approval(RiskLevel.medium)
    rules = authority(a, example_policy())
    by_person = check(a, rules, [], attempt(AISHA, Decision.expire))
    assert isinstance(by_person, Refused) and "only the deadline" in by_person.why
    deadline = attempt("aims:deadline", Decision.expire, channel=DecisionChannel.deadline)
    assert check(a, rules, [], deadline) is None
    approving = attempt("aims:deadline", Decision.approve, channel=DecisionChannel.deadline)
    assert isinstance(check(a, rules, [], approving), Refused)


def test_escalation_lets_the_named_groups_and_people_decide() -> None:
    a = approval(RiskLevel.medium)
    assert isinstance(verdict(a, CLAIRE), Refused)
    widened = a.model_copy(update={"escalated_to": ["executive", "ceo@northwind.example"]})
    assert verdict(widened, CLAIRE) is None
    assert verdict(widened, "ceo@northwind.example") is None


# -- tally ---------------------------------------------------------------------------------------


def test_quorum_of_one_and_of_two() -> None:
    medium = authority(approval(RiskLevel.medium), example_policy())
    assert tally(medium, []).outcome is None
    assert tally(medium, [decided(AISHA)]).outcome is ApprovalOutcome.approved
    high = authority(approval(RiskLevel.high), example_policy())
    one = tally(high, [decided(AISHA)])
    assert one.outcome is None and one.progress == "1 of 2 approvals"
    assert tally(high, [decided(AISHA), decided(MARIA, minutes=5)]).outcome is ApprovalOutcome.approved
    # Two people of the same group are enough when the rule does not ask for distinct groups.
    assert tally(high, [decided(AISHA), decided(TOM, minutes=5)]).outcome is ApprovalOutcome.approved


def test_distinct_groups_need_a_member_of_each() -> None:
    critical = authority(approval(RiskLevel.critical), example_policy())
    same_group = tally(critical, [decided(MARIA), decided(JON, minutes=1)])
    assert same_group.outcome is None and same_group.missing_groups == ("executive",)
    assert "still needed from executive" in same_group.progress
    both = tally(critical, [decided(MARIA), decided(SAM, minutes=1)])
    assert both.outcome is ApprovalOutcome.approved


def test_one_rejection_vetoes_and_expiry_is_not_approval() -> None:
    high = authority(approval(RiskLevel.high), example_policy())
    vetoed = tally(high, [decided(AISHA), decided(MARIA, Decision.reject, minutes=1)])
    assert vetoed.outcome is ApprovalOutcome.rejected and vetoed.approvers == (MARIA,)
    expired = tally(high, [decided("aims:deadline", Decision.expire)])
    assert expired.outcome is ApprovalOutcome.expired


people = st.sampled_from([AISHA, TOM, LI, MARIA, JON, CLAIRE, SAM])


@settings(max_examples=200, deadline=None)
@given(st.lists(people, unique=True, max_size=7), st.sampled_from(list(RiskLevel)[1:]))
def test_tally_agrees_with_brute_force(approvers: list[str], level: RiskLevel) -> None:
    """Approved exactly when some `quorum` of the approvers can each stand for a different group."""
    a = approval(level)
    rules = authority(a, example_policy())
    eligible = [p for p in approvers if rules.seat(p)]
    result = tally(rules, [decided(p, minutes=i) for i, p in enumerate(eligible)])
    if rules.distinct_groups:
        expected = any(
            len({g for g in combo}) == rules.quorum
            for chosen in itertools.combinations(eligible, rules.quorum)
            for combo in itertools.product(*(sorted(rules.seat(p)) for p in chosen))
        )
    else:
        expected = len(eligible) >= rules.quorum
    assert (result.outcome is ApprovalOutcome.approved) == expected


# -- deadlines -----------------------------------------------------------------------------------


def test_reminders_escalations_and_expiry_fall_due_once_in_time_order() -> None:
    from flows.approvals.chase_approvals import plan  # imports Prefect: not at collection time

    a = approval(RiskLevel.high)  # due 48 h; remind 12 h and 2 h before; escalate 24 h, 48 h; expire 96 h
    sla = example_policy().slas[RiskLevel.high]
    at = lambda hours: T0 + timedelta(hours=hours)  # noqa: E731
    assert plan(a, sla, at(1), set()) == []
    assert [(d.kind, d.step) for d in plan(a, sla, at(25), set())] == [("escalation", "0")]
    due = plan(a, sla, at(37), {f"{a.id}:escalation:0"})
    assert [(d.kind, d.step) for d in due] == [("reminder", "12")]
    sent = {f"{a.id}:escalation:0", f"{a.id}:reminder:12"}
    assert plan(a, sla, at(40), sent) == []
    assert [(d.kind, d.step) for d in plan(a, sla, at(46.5), sent)] == [("reminder", "2")]
    sent |= {f"{a.id}:reminder:2"}
    late = plan(a, sla, at(48), sent)
    assert [(d.kind, d.step, d.notify) for d in late] == [("escalation", "1", ("executive",))]
    assert [d.kind for d in plan(a, sla, at(96), sent)] == ["expiry"]
    assert plan(a, sla, at(97), sent | {f"{a.id}:expiry:"}) == []


def test_policy_defaults_for_reminders_and_expiry() -> None:
    from schemas.policy import Sla

    sla = Sla(decision_hours=8)
    assert sla.reminders() == (2,) and sla.expiry_hours() == 16
    assert Sla(decision_hours=1).reminders() == ()
    with pytest.raises(ValueError, match="must be between 1 and 7 hours"):
        Sla(decision_hours=8, remind_before_hours=(8,))
    with pytest.raises(ValueError, match="must not come before"):
        Sla(decision_hours=8, expire_after_hours=4)
