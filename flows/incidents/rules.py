"""Incident rules: triage, the Art. 73 clock, who may update what, when an incident may close.

Pure: no clock, no I/O. The handle-incident flow triages with these, the clock watcher plans its
reminders with them, and every channel that updates an incident (Slack, Jira, the CLI) goes
through `check` before anything is written.

- Severity is the reported one, raised to the policy's floor for the category.
- Serious (Art. 3(49), 73(3)): any harm the reporter names, plus the harm the category stands for
  when the severity reaches the policy's `serious_from` (a death always does).
- The clock runs from detection; the shortest deadline among the matching criteria applies.
- An incident closes only when it is contained, reported (if serious), its root cause is recorded,
  and every corrective action is done and verified effective by someone other than its owner.
- A serious incident, or repeated ones, call an extraordinary management review (9.3); while one is
  requested and not yet held, later incidents join it instead of calling another.
- An incident on an AI system that is not in the inventory is itself a finding (A.4.2, A.6.2.6):
  one nonconformity per system, which its later incidents refer to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flows.reviews.calendar import extraordinary_meeting
from flows.reviews.commands import is_open
from schemas.payloads import Art73Criterion, IncidentCategory, IncidentReported, IncidentUpdateKind, Severity
from schemas.policy import Art73Clock, IncidentStage, Policy
from schemas.records import CorrectiveAction, Incident, IncidentUpdate, ManagementReview, Nonconformity

# The harm a category stands for, once it is severe enough to be serious.
CATEGORY_HARM: dict[IncidentCategory, Art73Criterion] = {
    IncidentCategory.death: Art73Criterion.death,
    IncidentCategory.health_and_safety: Art73Criterion.serious_harm_to_health,
    IncidentCategory.critical_infrastructure: Art73Criterion.critical_infrastructure_disruption,
    IncidentCategory.fundamental_rights: Art73Criterion.fundamental_rights_infringement,
    IncidentCategory.property_or_environment: Art73Criterion.serious_harm_to_property_or_environment,
}

_BASIS = {
    "death": "Art. 73(4): death of a person",
    "widespread": "Art. 73(3): widespread infringement or serious disruption of critical infrastructure",
    "general": "Art. 73(2): serious incident",
}


# Art. 73(3): the shortest clock.
_TWO_DAY = (Art73Criterion.critical_infrastructure_disruption, Art73Criterion.widespread_infringement)


def _deadline(criterion: Art73Criterion, art73: Art73Clock) -> tuple[int, str]:
    if criterion is Art73Criterion.death:
        return art73.death_days, "death"
    if criterion in _TWO_DAY:
        return art73.widespread_days, "widespread"
    return art73.general_days, "general"


@dataclass(frozen=True)
class Clock:
    """When the report to the authority is due, and why that deadline."""

    detected_at: datetime
    due_at: datetime
    days: int
    basis: str  # death | widespread | general

    @property
    def text(self) -> str:
        return f"{_BASIS[self.basis]}, {self.days} days"


def clock(detected_at: datetime, criteria: Iterable[Art73Criterion], art73: Art73Clock) -> Clock | None:
    """The shortest deadline among the criteria, counted in calendar days from detection."""
    deadlines = [_deadline(c, art73) for c in criteria]
    if not deadlines:
        return None
    days, basis = min(deadlines, key=lambda d: (d[0], d[1] != "death"))
    # Calendar days on the detection's own clock: timedelta keeps the time of day across month
    # ends and leap days.
    return Clock(detected_at, detected_at + timedelta(days=days), days, basis)


@dataclass(frozen=True)
class Triage:
    severity: Severity
    criteria: tuple[Art73Criterion, ...]
    clock: Clock | None

    @property
    def serious(self) -> bool:
        return bool(self.criteria)


def triage(report: IncidentReported, policy: Policy) -> Triage:
    floor = policy.incidents.severity_floor.get(report.category, Severity.low)
    severity = max(report.severity, floor, key=lambda s: s.rank)
    criteria = set(report.harms)
    implied = CATEGORY_HARM.get(report.category)
    if implied is Art73Criterion.death or (
        implied is not None and severity.rank >= policy.incidents.serious_from.rank
    ):
        criteria.add(implied)
    ordered = tuple(c for c in Art73Criterion if c in criteria)
    return Triage(severity, ordered, clock(report.detected_at, ordered, policy.regulatory.art73))


# -- the clock's reminders ----------------------------------------------------------------------


@dataclass(frozen=True)
class ClockDue:
    kind: str  # clock-reminder | clock-overdue
    step: str  # the fraction, e.g. "0.5"; "" when overdue
    at: datetime


def clock_open(incident: Incident) -> bool:
    """A serious incident whose report to the authority is still to be made."""
    return (
        incident.serious
        and incident.reporting_due_at is not None
        and incident.reported_to_authority_at is None
        and incident.closed_at is None
    )


def notice_id(incident_id: str, kind: str, step: str = "") -> str:
    return f"{incident_id}:{kind}:{step}"


def clock_plan(incident: Incident, art73: Art73Clock, now: datetime, sent: set[str]) -> list[ClockDue]:
    """What is due for one open clock at `now` and not sent yet: the latest threshold only.

    A watcher that was down for a while sends one reminder for the latest threshold it passed,
    never a burst; the earlier thresholds are then moot and are not sent later either.
    """
    if not clock_open(incident) or incident.reporting_due_at is None:
        return []
    start, due = incident.detected_at, incident.reporting_due_at
    if now >= due:
        key = notice_id(incident.id, "clock-overdue")
        return [] if key in sent else [ClockDue("clock-overdue", "", due)]
    passed = [f for f in art73.reminders if start + (due - start) * f <= now]
    if not passed:
        return []
    latest = passed[-1]
    if notice_id(incident.id, "clock-reminder", str(latest)) in sent:
        return []
    return [ClockDue("clock-reminder", str(latest), start + (due - start) * latest)]


def time_left(incident: Incident, now: datetime) -> timedelta | None:
    """Until the report is due (negative when overdue); None when no clock runs."""
    if not clock_open(incident) or incident.reporting_due_at is None:
        return None
    return incident.reporting_due_at - now


def format_left(left: timedelta) -> str:
    seconds = int(left.total_seconds())
    sign, seconds = ("overdue by " if seconds < 0 else ""), abs(seconds)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{sign}{days} d {hours} h"
    return f"{sign}{hours} h {rest // 60} min"


# -- updates ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Update:
    """Someone telling the AIMS about an incident, through one channel."""

    incident_id: str
    kind: IncidentUpdateKind
    by: str
    channel: str
    at: datetime
    detail: str = ""
    action_id: str | None = None
    owner: str | None = None  # plan-action only
    due: date | None = None  # plan-action only


@dataclass(frozen=True)
class Refused:
    why: str


@dataclass(frozen=True)
class Duplicate:
    what: str


@dataclass(frozen=True)
class State:
    """An incident with everything its rules look at."""

    incident: Incident
    nonconformity: Nonconformity | None
    actions: tuple[CorrectiveAction, ...]

    def action(self, action_id: str | None) -> CorrectiveAction | None:
        return next((a for a in self.actions if a.id == action_id), None)


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().casefold() == b.strip().casefold()


def responders(policy: Policy) -> frozenset[str]:
    groups = policy.incidents.responders or tuple(policy.approver_groups)
    return frozenset(m.casefold() for g in groups for m in policy.approver_groups[g].members)


def accepted_id(update: Update, revision: int = 1) -> str:
    """One accepted update per thing done: redelivered webhooks and double clicks compute the same id.

    A root cause may be revised, so its updates are numbered (`revision`); an action's are keyed by
    the action, which `plan-action` numbers.
    """
    if update.kind in (
        IncidentUpdateKind.plan_action,
        IncidentUpdateKind.action_done,
        IncidentUpdateKind.verify_action,
    ):
        return f"{update.incident_id}:{update.kind.value}:{update.action_id}"
    if update.kind is IncidentUpdateKind.root_cause:
        return f"{update.incident_id}:{update.kind.value}:{revision}"
    return f"{update.incident_id}:{update.kind.value}"


def action_label(action: CorrectiveAction) -> str:
    short = action.id.rsplit("/", 1)[-1]
    return f"{short} '{action.description}' ({action.owner}, due {action.due.isoformat()})"


def close_blockers(state: State) -> list[str]:
    """Everything that stops the incident from closing, each naming what to do."""
    incident, blockers = state.incident, []
    if incident.contained_at is None:
        blockers.append("containment is not recorded")
    if incident.serious and incident.reported_to_authority_at is None:
        blockers.append(f"the Art. 73 report is not filed (due {_when(incident.reporting_due_at)})")
    if state.nonconformity is None or not state.nonconformity.root_cause:
        blockers.append("no root cause is recorded (10.2)")
    elif not state.actions:
        blockers.append("no corrective action is planned (10.2)")
    for action in state.actions:
        if action.status == "open":
            blockers.append(f"action {action_label(action)} is open")
        elif action.status != "verified":
            blockers.append(f"action {action_label(action)} is done but its effectiveness is not verified")
    return blockers


def _when(at: datetime | None) -> str:
    return at.isoformat(timespec="minutes") if at else "—"


def check(state: State, update: Update, policy: Policy) -> Refused | Duplicate | None:
    """None when the update may be recorded; otherwise why not, or that it is recorded already."""
    incident, kind = state.incident, update.kind
    if incident.closed_at is not None:
        return Duplicate("closed") if kind is IncidentUpdateKind.close else Refused("the incident is closed")
    if incident.triaged_at is None:
        return Refused("the incident is not triaged yet; try again in a moment")
    action = state.action(update.action_id)
    allowed = responders(policy)
    if kind is IncidentUpdateKind.action_done and action is not None and _same(action.owner, update.by):
        pass  # an owner may always mark their own action done
    elif update.by.strip().casefold() not in allowed:
        groups = ", ".join(policy.incidents.responders or tuple(policy.approver_groups))
        return Refused(f"{update.by} is not an incident responder (members of: {groups})")
    if kind is IncidentUpdateKind.contain:
        return Duplicate("contained") if incident.contained_at is not None else None
    if kind is IncidentUpdateKind.report:
        return _check_report(incident, update.detail.strip())
    if kind is IncidentUpdateKind.root_cause:
        if not update.detail.strip():
            return Refused("a root cause needs its text")
        nc = state.nonconformity
        return Duplicate("root cause") if nc is not None and nc.root_cause == update.detail.strip() else None
    if kind is IncidentUpdateKind.plan_action:
        return _check_plan(state, update)
    if kind in (IncidentUpdateKind.action_done, IncidentUpdateKind.verify_action):
        if action is None:
            known = ", ".join(a.id.rsplit("/", 1)[-1] for a in state.actions) or "none yet"
            return Refused(f"the incident has no corrective action {update.action_id!r} (actions: {known})")
        if kind is IncidentUpdateKind.action_done:
            return None if action.status == "open" else Duplicate("done")
        return _check_verify(action, update)
    blockers = close_blockers(state)
    if blockers:
        return Refused("it cannot close yet: " + "; ".join(blockers))
    return None


def _check_report(incident: Incident, reference: str) -> Refused | Duplicate | None:
    if not incident.serious:
        return Refused("it is not a serious incident under Art. 73: no report to the authority is due")
    if not reference:
        return Refused("an authority report needs its reference (e.g. the authority's case number)")
    if incident.reported_to_authority_at is not None:
        if incident.authority_reference == reference:
            return Duplicate("reported")
        return Refused(f"already reported under reference {incident.authority_reference!r}")
    return None


def _check_plan(state: State, update: Update) -> Refused | Duplicate | None:
    if state.nonconformity is None or not state.nonconformity.root_cause:
        return Refused("record the root cause first (10.2): actions address a cause")
    if not update.detail.strip():
        return Refused("a corrective action needs a description")
    if not update.owner or not update.owner.strip():
        return Refused("a corrective action needs an owner")
    if update.due is None:
        return Refused("a corrective action needs a due date")
    if update.due < update.at.date():
        return Refused(f"the due date {update.due.isoformat()} is in the past")
    for a in state.actions:
        if a.description == update.detail.strip() and _same(a.owner, update.owner) and a.due == update.due:
            return Duplicate(a.id)
    return None


def _check_verify(action: CorrectiveAction, update: Update) -> Refused | Duplicate | None:
    label = action.id.rsplit("/", 1)[-1]
    if action.status == "verified":
        return Duplicate("verified")
    if action.status == "open":
        return Refused(f"action {label} is not done yet: its effectiveness cannot be checked")
    if _same(action.owner, update.by):
        return Refused(f"{update.by} owns action {label}: someone else checks its effectiveness")
    if not update.detail.strip():
        return Refused("an effectiveness check needs its finding (what shows the action worked)")
    return None


def stage_of(state: State) -> IncidentStage:
    """The furthest stage the facts support; the authority report may come before containment."""
    incident = state.incident
    if incident.closed_at is not None:
        return IncidentStage.closed
    if state.nonconformity is not None and state.nonconformity.root_cause:
        return IncidentStage.corrective_action
    if incident.reported_to_authority_at is not None:
        return IncidentStage.reported_to_authority
    if incident.contained_at is not None:
        return IncidentStage.contained
    if incident.triaged_at is not None:
        return IncidentStage.triaged
    return IncidentStage.reported


# -- consequences -------------------------------------------------------------------------------


def review_reason(incident: Incident, recent: Sequence[Incident], policy: Policy) -> str | None:
    """Why this incident calls an extraordinary management review, if it does.

    `recent` are the register's incidents (this one may be among them); repeated incidents count
    when at least the policy's number of them, of at least its severity, were detected within its
    window up to this one.
    """
    if incident.serious:
        return f"serious incident {incident.id} on {incident.system} ({', '.join(incident.criteria)})"
    rule = policy.management_review.extraordinary
    if incident.severity.rank < rule.min_severity.rank:
        return None
    since = incident.detected_at - timedelta(days=rule.within_days)
    ids = {
        i.id
        for i in recent
        if since <= i.detected_at <= incident.detected_at and i.severity.rank >= rule.min_severity.rank
    }
    ids.add(incident.id)
    if len(ids) >= rule.incidents:
        return (
            f"{len(ids)} incidents of severity {rule.min_severity.value} or above within"
            f" {rule.within_days} days, the latest {incident.id} on {incident.system}"
        )
    return None


# -- joining the extraordinary review that is not yet held -------------------------------------


def incident_trigger(incident_id: str) -> str:
    return f"incident:{incident_id}"


def review_triggers(review: ManagementReview) -> list[str]:
    """Everything that called the review, the first first.

    Reviews recorded before `triggers` existed (migration 0009) have their one `trigger`.
    """
    if review.triggers:
        return list(review.triggers)
    return [review.trigger] if review.trigger else []


def late_triggers(review: ManagementReview) -> list[str]:
    """Triggers that joined the review after its pack was gathered: the pack does not show them.

    A review prepared before `pack_triggers` existed covered its first trigger only (nothing joined
    reviews then).
    """
    if review.prepared_at is None:
        return []
    covered = set(review.pack_triggers or review_triggers(review)[:1])
    return [t for t in review_triggers(review) if t not in covered]


def meeting_of(review: ManagementReview, policy: Policy) -> datetime:
    """When the review meets: fixed once hold-management-review took it up; until then the time that
    flow will fix (`extraordinary.notice_days` after the request)."""
    if review.meeting_at is not None:
        return review.meeting_at
    return extraordinary_meeting(policy.management_review, review.created_at)


def not_yet_held(review: ManagementReview, at: datetime, policy: Policy) -> bool:
    """An extraordinary review that a later incident joins rather than calling another.

    "Requested and not yet held" means, at `at`:
    - extraordinary (a scheduled review keeps its own agenda and cadence);
    - open: status requested, planned or prepared (`review_results.OPEN_STATUSES`), so no results
      have closed it; and
    - its meeting is still ahead: `meeting_at` is after `at`, or, for a request whose pack is not
      gathered yet (`meeting_at` unset), the meeting hold-management-review will fix is.
    A prepared review whose meeting has passed but whose results are not recorded yet *was* held: an
    incident after it calls a new review, since no meeting is left to discuss it at.
    """
    return review.kind == "extraordinary" and is_open(review) and meeting_of(review, policy) > at


def review_to_join(
    reviews: Iterable[ManagementReview], at: datetime, policy: Policy
) -> ManagementReview | None:
    """The review not yet held that an incident joins: the soonest meeting when (say, after people
    requested one too) several wait; none when none does."""
    waiting = [r for r in reviews if not_yet_held(r, at, policy)]
    return min(waiting, key=lambda r: (meeting_of(r, policy), r.created_at, r.id), default=None)


@dataclass(frozen=True)
class ReviewCall:
    """What an incident does about an extraordinary review: join `joins`, or request a new one."""

    reason: str
    trigger: str
    kind: str  # serious | repeated: what called it
    joins: ManagementReview | None = None


def review_call(
    incident: Incident,
    recent: Sequence[Incident],
    reviews: Sequence[ManagementReview],
    policy: Policy,
    at: datetime,
    *,
    join: bool = True,
) -> ReviewCall | None:
    """What this incident does about an extraordinary review at `at`; None when it calls none.

    Once per trigger: an incident already recorded on a review calls nothing again. A review not yet
    held is joined (`join=False` asks only whether a new one would be called). Otherwise a serious
    incident requests a new review; repeated incidents request one per `within_days` window: none
    while a review they called (or joined) was requested within it.
    """
    reason = review_reason(incident, recent, policy)
    trigger = incident_trigger(incident.id)
    if reason is None or any(trigger in review_triggers(r) for r in reviews):
        return None
    kind = "serious" if incident.serious else "repeated"
    joins = review_to_join(reviews, at, policy) if join else None
    if joins is None and not incident.serious and _repeated_called_within(recent, reviews, policy, at):
        return None
    return ReviewCall(reason, trigger, kind, joins)


def _repeated_called_within(
    recent: Sequence[Incident], reviews: Sequence[ManagementReview], policy: Policy, at: datetime
) -> bool:
    """Did repeated incidents call (or join) a review requested within the policy's window?

    A non-serious incident calls a review only through the repeated-incidents rule, so a review
    with one among its triggers is one they called.
    """
    window = timedelta(days=policy.management_review.extraordinary.within_days)
    not_serious = {incident_trigger(i.id) for i in recent if not i.serious}
    return any(
        r.kind == "extraordinary"
        and at - r.created_at < window
        and (r.id.startswith("extraordinary:repeated:") or not_serious & set(review_triggers(r)))
        for r in reviews
    )


def requested_review(
    incident: Incident, call: ReviewCall, at: datetime, requested_by: str
) -> ManagementReview:
    """The new review an incident requests: its id names what called it, so a redelivery finds it."""
    return ManagementReview(
        id=f"extraordinary:{call.kind}:{incident.id}",
        kind="extraordinary",
        reason=call.reason,
        status="requested",
        created_at=at,
        trigger=call.trigger,
        triggers=[call.trigger],
        requested_by=requested_by,
    )


def joined(review: ManagementReview, call: ReviewCall) -> dict[str, Any]:
    """The changes that record a further incident on the review: its reason and its trigger."""
    return {"reason": f"{review.reason}; {call.reason}", "triggers": [*review_triggers(review), call.trigger]}


# -- an AI system that is not in the inventory ---------------------------------------------------

INVENTORY_CONTROLS = ("A.4.2", "A.6.2.6")


def inventory_finding_id(system: str) -> str:
    """One finding per system, whatever number of incidents show it: its id is the system's."""
    return f"inventory:{system}"


def inventory_finding(system: str, incident_id: str, at: datetime) -> Nonconformity:
    """The nonconformity an incident on a system outside the inventory opens (10.2).

    An AI system the inventory does not know runs in production without its resources documented
    (A.4.2) and outside the AIMS's operation and monitoring (A.6.2.6): the incident is how it showed.
    """
    return Nonconformity(
        id=inventory_finding_id(system),
        source="inventory",
        source_ref=incident_id,
        description=(
            f"AI system {system!r} is not in the AI system inventory, yet incident {incident_id} shows it "
            "in operation: its resources are not documented (A.4.2) and it is not operated and monitored "
            "under the AIMS (A.6.2.6)"
        ),
        controls=list(INVENTORY_CONTROLS),
        opened_at=at,
    )


def refused_update(update: Update, why: str, refusal_id: str) -> IncidentUpdate:
    return IncidentUpdate(
        id=refusal_id,
        incident_id=update.incident_id,
        kind=update.kind.value,
        by=update.by,
        channel=update.channel,
        detail=update.detail,
        action_id=update.action_id,
        accepted=False,
        refusal=why,
        at=update.at,
    )
