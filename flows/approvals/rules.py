"""Who may decide an approval, and when it is decided: pure rules, no clock and no I/O.

Every channel (Slack, Jira, the CLI, the Prefect UI, the deadline) reaches these same two
functions: `check` for one attempt, `tally` for the approval as a whole.

- Only an authenticated person decides (`identify`): the channel must have proved who they are,
  as the policy's `people` map it (Slack user id, Jira account id, OS login). The Prefect UI's resume
  form proves nobody: refused, unless the policy lets it decide low-risk approvals, marked so.
- The approver must be a member of one of the approval's groups, or of a group or a person the
  deadline escalated it to.
- Separation of duties on people: whoever submitted the model may not decide on it; a team that
  submitted it is every one of its members; an owner the policy cannot resolve to anyone makes the
  approval need one more approver than its quorum (`submitters`).
- A rejection needs a reason; one authorized rejection rejects (a veto).
- Approval needs `quorum` distinct approvers; with `distinct_groups`, each from another group.
- Decisions are final: the same answer again is a duplicate, a different one is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.payloads import ApprovalOutcome, Decision, DecisionChannel, RiskLevel
from schemas.people import Decisions, Person, PrefectUi, by_name, person_key, same_person
from schemas.policy import Policy
from schemas.records import Approval, ApprovalDecision

DEADLINE = "aims:deadline"
WHERE_TO_DECIDE = (
    "decide with the buttons in Slack, the Approve/Reject transitions of the Jira issue, or "
    "`aims approvals approve|reject` on a login the policy maps to you"
)


@dataclass(frozen=True)
class Attempt:
    """Someone (or the deadline) answering an approval request through one channel."""

    approval_id: str
    approver: str
    decision: Decision
    channel: DecisionChannel
    reason: str
    at: datetime
    # What the channel proved about who acts: the Slack user id, the Jira account id, the OS login;
    # None when it proved nothing (the Prefect UI's form).
    credential: str | None = None


@dataclass(frozen=True)
class Submitters:
    """Who submitted, as people: none of them decides; `extra` approvers when nobody is known."""

    people: Mapping[str, str] = field(default_factory=dict)  # casefolded person → why they may not decide
    extra: int = 0
    note: str | None = None  # why, for the approval's record and its messages

    def context(self) -> dict[str, Any]:
        """What the approval's record keeps of it (its `context`)."""
        return {"submitters": sorted(self.people), "extra_approvers": self.extra, "submitter_note": self.note}


def known_people(policy: Policy) -> set[str]:
    """Everyone the policy names as a person (casefolded)."""
    names = {*policy.people, *(m for g in policy.approver_groups.values() for m in g.members)}
    names |= {m for t in policy.teams.values() for m in t.members}
    names |= {a.email for a in policy.management_review.attendees}
    names |= {w for s in policy.slas.values() for step in s.escalation for w in step.notify if "@" in w}
    return {person_key(n) for n in names}


def submitters(policy: Policy, owner: str | None) -> Submitters:
    """The people behind a model's owner ("person or team"), as today's policy names them."""
    if owner is None or not owner.strip():
        return Submitters()  # nothing was submitted by anyone (e.g. a system without model versions)
    key = person_key(owner)
    teams = [(f"team {n}", t.members) for n, t in policy.teams.items() if person_key(n) == key]
    groups = policy.approver_groups.items()
    teams += [(f"approver group {n}", g.members) for n, g in groups if person_key(n) == key]
    excluded: dict[str, str] = {}
    for team, members in teams:
        for member in members:
            excluded.setdefault(person_key(member), f"{member} is in {team}, which submitted the model")
    if key in known_people(policy):
        excluded.setdefault(key, f"{owner.strip()} submitted the model")
    if teams:
        names = ", ".join(dict.fromkeys(m for _, ms in teams for m in ms))
        return Submitters(excluded, 0, f"submitted by {owner.strip()} ({names}): none of them may decide")
    if excluded:
        return Submitters(excluded)
    return Submitters(
        {},
        1,
        f"the submitter {owner.strip()!r} is no person or team of the policy, so separation of duties "
        "cannot tell who may not decide: one more approver than the quorum is needed",
    )


def still_submitters(context: Mapping[str, Any], today: Submitters) -> Submitters:
    """Today's resolution, and what the request recorded: someone who has left the submitting team
    since is still a submitter of this request, and an extra approver once asked for stays asked."""
    recorded = {
        person_key(p): f"{p} was among the submitters when the approval was requested"
        for p in context.get("submitters") or ()
    }
    extra = max(today.extra, int(context.get("extra_approvers") or 0))
    return Submitters({**recorded, **today.people}, extra, today.note or context.get("submitter_note"))


@dataclass(frozen=True)
class Authority:
    """Who may decide one approval, and what a decision needs."""

    seats: Mapping[str, frozenset[str]]  # casefolded person → the groups they decide for
    groups: tuple[str, ...]
    quorum: int
    distinct_groups: bool
    separation_of_duties: bool
    submitters: Submitters = field(default_factory=Submitters)
    people: Mapping[str, Person] = field(default_factory=dict)
    decisions: Decisions = field(default_factory=Decisions)

    def seat(self, person: str) -> frozenset[str]:
        return self.seats.get(person_key(person), frozenset())

    @property
    def needed(self) -> int:
        """Distinct approvers needed: the quorum, plus one when the submitter is nobody known."""
        return self.quorum + (self.submitters.extra if self.separation_of_duties else 0)


def authority(approval: Approval, policy: Policy) -> Authority:
    """The approval's rule (as requested) applied to today's group membership, escalations and people."""
    seats: dict[str, set[str]] = {}
    groups = [*approval.groups, *(g for g in approval.escalated_to if g in policy.approver_groups)]
    for group in dict.fromkeys(groups):
        spec = policy.approver_groups.get(group)
        for member in spec.members if spec else ():
            seats.setdefault(person_key(member), set()).add(group)
    for person in approval.escalated_to:
        if person not in policy.approver_groups:
            # A person named in an escalation decides for themselves: a group of one.
            seats.setdefault(person_key(person), set()).add(f"person:{person}")
    ctx = approval.context
    return Authority(
        seats={k: frozenset(v) for k, v in seats.items()},
        submitters=still_submitters(ctx, submitters(policy, ctx.get("submitted_by"))),
        groups=tuple(dict.fromkeys(groups)),
        quorum=approval.quorum,
        distinct_groups=bool(ctx.get("distinct_groups", False)),
        separation_of_duties=bool(ctx.get("separation_of_duties", True)),
        people=policy.people,
        decisions=policy.decisions,
    )


@dataclass(frozen=True)
class Refused:
    why: str


@dataclass(frozen=True)
class Duplicate:
    existing: ApprovalDecision


Verdict = Refused | Duplicate | None


def identify(approval: Approval, rules: Authority, attempt: Attempt) -> Refused | bool:
    """Whether the channel proved the approver is who the attempt names: True (authenticated),
    False (accepted unauthenticated, where the policy allows it; the record says so) or why not."""
    channel, who, proof = attempt.channel, attempt.approver, attempt.credential
    person = by_name(rules.people, who)
    if channel is DecisionChannel.deadline:
        return True  # the system's own clock, not a person (`check` lets it only expire a request)
    if channel is DecisionChannel.prefect_ui:
        if rules.decisions.prefect_ui is PrefectUi.low_risk and approval.risk_level is RiskLevel.low:
            return False
        allowed = (
            " (the policy allows it for low-risk approvals only)"
            if rules.decisions.prefect_ui is PrefectUi.low_risk
            else ""
        )
        return Refused(
            f"the Prefect UI's resume form cannot prove who is deciding{allowed}; {WHERE_TO_DECIDE}"
        )
    if proof is None or not proof.strip():
        return Refused(f"the {channel.value} channel proved no identity for {who}")
    if channel is DecisionChannel.cli:
        if person is not None and proof in person.logins:
            return True
        if rules.decisions.cli_any_login:
            return False  # the unsafe demo setting: recorded as unauthenticated
        return Refused(
            f"OS login {proof!r} may not decide as {who}: the policy lists no such login under "
            f"people: {who}: logins"
        )
    if channel is DecisionChannel.slack:
        # A person without a pinned Slack id was found by Slack's (verified) e-mail lookup.
        if person is not None and person.slack is not None and person.slack != proof:
            return Refused(f"Slack user {proof} is not {who}'s Slack account in the policy")
        return True
    # Jira: only the signed account id counts; a profile's e-mail address is not proof of anyone.
    if person is not None and person.jira == proof:
        return True
    return Refused(
        f"Jira account {proof} is not mapped to {who} in the policy (people: {who}: jira); "
        "AIMS does not take the e-mail address a Jira profile shows as proof"
    )


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
    # Before anything else: an unproven name learns nothing about the request, not even a duplicate.
    if isinstance(proven := identify(approval, rules, attempt), Refused):
        return proven
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
    why = rules.submitters.people.get(person_key(attempt.approver))
    if rules.separation_of_duties and why is not None:
        return Refused(f"{why} and may not decide on it (separation of duties)")
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
            return Tally(ApprovalOutcome.rejected, (d.decided_by,), rules.needed)
        if d.decision == Decision.expire.value:
            return Tally(ApprovalOutcome.expired, (), rules.needed)
    approvers = tuple(dict.fromkeys(d.decided_by for d in decisions if d.decision == Decision.approve.value))
    if rules.distinct_groups:
        # The quorum's groups, each by another person; an extra approver may come from any of them.
        matched = _match_groups({a: rules.seat(a) for a in approvers})
        extra = [a for a in approvers if a not in matched][: rules.needed - rules.quorum]
        counted = (*matched, *extra)
        if len(matched) >= rules.quorum and len(counted) >= rules.needed:
            return Tally(ApprovalOutcome.approved, counted, rules.needed)
        used = set(matched.values())
        missing = tuple(g for g in rules.groups if g not in used) if len(matched) < rules.quorum else ()
        return Tally(None, counted, rules.needed, missing)
    if len(approvers) >= rules.needed:
        return Tally(ApprovalOutcome.approved, approvers, rules.needed)
    return Tally(None, approvers, rules.needed)


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
