"""Who may decide an approval, and when it is decided: pure rules, no clock and no I/O.

Every channel (Slack, Jira, the CLI, the Prefect UI, the deadline) reaches these same two
functions: `check` for one attempt, `tally` for the approval as a whole.

- The approver must be a member of one of the approval's groups, or of a group or a person the
  deadline escalated it to.
- Separation of duties: whoever submitted the model may not decide on it.
- A rejection needs a reason; one authorized rejection rejects (a veto).
- Approval needs `quorum` distinct approvers; with `distinct_groups`, each from another group.
- Decisions are final: the same answer again is a duplicate, a different one is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from schemas.payloads import ApprovalOutcome, Decision, DecisionChannel
from schemas.policy import Policy
from schemas.records import Approval, ApprovalDecision

DEADLINE = "aims:deadline"


def same_person(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().casefold() == b.strip().casefold()


@dataclass(frozen=True)
class Attempt:
    """Someone (or the deadline) answering an approval request through one channel."""

    approval_id: str
    approver: str
    decision: Decision
    channel: DecisionChannel
    reason: str
    at: datetime


@dataclass(frozen=True)
class Authority:
    """Who may decide one approval, and what a decision needs."""

    seats: Mapping[str, frozenset[str]]  # casefolded person → the groups they decide for
    groups: tuple[str, ...]
    quorum: int
    distinct_groups: bool
    separation_of_duties: bool
    submitted_by: str | None

    def seat(self, person: str) -> frozenset[str]:
        return self.seats.get(person.strip().casefold(), frozenset())


def authority(approval: Approval, policy: Policy) -> Authority:
    """The approval's rule (as requested) applied to today's group membership and escalations."""
    seats: dict[str, set[str]] = {}
    groups = [*approval.groups, *(g for g in approval.escalated_to if g in policy.approver_groups)]
    for group in dict.fromkeys(groups):
        spec = policy.approver_groups.get(group)
        for member in spec.members if spec else ():
            seats.setdefault(member.casefold(), set()).add(group)
    for person in approval.escalated_to:
        if person not in policy.approver_groups:
            # A person named in an escalation decides for themselves: a group of one.
            seats.setdefault(person.casefold(), set()).add(f"person:{person}")
    ctx = approval.context
    return Authority(
        seats={k: frozenset(v) for k, v in seats.items()},
        groups=tuple(dict.fromkeys(groups)),
        quorum=approval.quorum,
        distinct_groups=bool(ctx.get("distinct_groups", False)),
        separation_of_duties=bool(ctx.get("separation_of_duties", True)),
        submitted_by=ctx.get("submitted_by"),
    )


@dataclass(frozen=True)
class Refused:
    why: str


@dataclass(frozen=True)
class Duplicate:
    existing: ApprovalDecision


Verdict = Refused | Duplicate | None


def check(
    approval: Approval, rules: Authority, accepted: Sequence[ApprovalDecision], attempt: Attempt
) -> Verdict:
    """None when the attempt may be recorded; otherwise why not, or the decision it repeats."""
    if attempt.decision is Decision.expire:
        if attempt.channel is not DecisionChannel.deadline:
            return Refused("only the deadline lets a request expire; approve or reject it")
        if approval.status != "pending":
            return (
                Duplicate(accepted[-1]) if accepted else Refused(f"the request is already {approval.status}")
            )
        return None
    if attempt.channel is DecisionChannel.deadline:
        return Refused("the deadline can only let a request expire")
    mine = [d for d in accepted if same_person(d.decided_by, attempt.approver)]
    if mine:
        if mine[0].decision == attempt.decision.value:
            return Duplicate(mine[0])
        return Refused(
            f"{attempt.approver} already answered {mine[0].decision} at "
            f"{mine[0].decided_at:%Y-%m-%d %H:%M} UTC; decisions are final"
        )
    if approval.status != "pending":
        return Refused(f"the request is already {approval.status}")
    if not rules.seat(attempt.approver):
        level = f" for a {approval.risk_level.value}-risk decision" if approval.risk_level else ""
        return Refused(
            f"{attempt.approver} is not in approver group(s) {', '.join(rules.groups)}{level}; "
            "ask one of its members"
        )
    if rules.separation_of_duties and same_person(attempt.approver, rules.submitted_by):
        return Refused(
            f"{attempt.approver} submitted the model and may not decide on it (separation of duties)"
        )
    if attempt.decision is Decision.reject and not attempt.reason.strip():
        return Refused("a rejection needs a reason")
    return None


@dataclass(frozen=True)
class Tally:
    outcome: ApprovalOutcome | None  # None while still open
    approvers: tuple[str, ...] = ()
    needed: int = 1
    missing_groups: tuple[str, ...] = field(default_factory=tuple)

    @property
    def progress(self) -> str:
        if self.outcome is not None:
            return self.outcome.value
        got = f"{len(self.approvers)} of {self.needed} approvals"
        return got + (f"; still needed from {', '.join(self.missing_groups)}" if self.missing_groups else "")


def tally(rules: Authority, accepted: Iterable[ApprovalDecision]) -> Tally:
    """The approval's state from its accepted decisions, in the order they were made."""
    decisions = sorted(accepted, key=lambda d: d.decided_at)
    for d in decisions:
        if d.decision == Decision.reject.value:
            return Tally(ApprovalOutcome.rejected, (d.decided_by,), rules.quorum)
        if d.decision == Decision.expire.value:
            return Tally(ApprovalOutcome.expired, (), rules.quorum)
    approvers = tuple(dict.fromkeys(d.decided_by for d in decisions if d.decision == Decision.approve.value))
    if rules.distinct_groups:
        matched = _match_groups({a: rules.seat(a) for a in approvers})
        if len(matched) >= rules.quorum:
            return Tally(ApprovalOutcome.approved, tuple(matched), rules.quorum)
        used = set(matched.values())
        missing = tuple(g for g in rules.groups if g not in used)
        return Tally(None, tuple(matched), rules.quorum, missing)
    if len(approvers) >= rules.quorum:
        return Tally(ApprovalOutcome.approved, approvers, rules.quorum)
    return Tally(None, approvers, rules.quorum)


def _match_groups(seats: Mapping[str, frozenset[str]]) -> dict[str, str]:
    """Most approvers that can each stand for a different group (bipartite matching, augmenting paths)."""
    owner: dict[str, str] = {}  # group → approver

    def place(person: str, seen: set[str]) -> bool:
        for group in sorted(seats[person]):
            if group in seen:
                continue
            seen.add(group)
            if group not in owner or place(owner[group], seen):
                owner[group] = person
                return True
        return False

    for person in seats:
        place(person, set())
    return {person: group for group, person in owner.items()}
