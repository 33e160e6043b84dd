"""Incident rules: triage, the Art. 73 clock, who may update what, when an incident may close.

Pure: no clock, no I/O. The handle-incident flow triages with these, the clock watcher plans its
reminders with them, and every channel that updates an incident (Slack, Jira, the CLI) goes
through `check` before anything is written.

- Severity is the reported one, raised to the policy's floor for the category.
- Serious (Art. 3(49), 73(3)): any harm the reporter names, plus the harm the category stands for
  when the severity reaches the policy's `serious_from` (a death always does).
- The clock runs from detection; the shortest deadline among the matching criteria applies
  (flows.incidents.clocks).
- An incident closes only when it is contained, reported (if serious), its root cause is recorded,
  and every corrective action is done and verified effective by someone other than its owner.
- A serious incident, or repeated ones, call an extraordinary management review (9.3); while one is
  requested and not yet held, later incidents join it instead of calling another
  (flows.reviews.calls: the review's rules, which incidents use).
- An incident on an AI system that is not in the inventory is itself a finding (A.4.2, A.6.2.6):
  one nonconformity per system, which its later incidents refer to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from flows.incidents.clocks import CATEGORY_HARM, Clock, clock
from schemas.payloads import Art73Criterion, IncidentReported, IncidentUpdateKind, Severity
from schemas.policy import IncidentStage, Policy
from schemas.records import CorrectiveAction, Incident, IncidentUpdate, Nonconformity


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
