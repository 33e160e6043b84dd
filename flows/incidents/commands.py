"""The one path every incident update takes: check, record (accepted or refused), announce.

The Slack and Jira gateway and `aims incidents contain|report|cause|action|done|verify|close` all
send an `UpdateIncident` command through `flows.commands.handle`, as approvals' decisions do; its
handler (`update_incident`) calls `submit`. An accepted update changes
the incident, its nonconformity and corrective actions, and stages its incident-updated event in
one transaction (the outbox); the track-incident flow then brings Slack and Jira up to date.
A refused attempt is recorded with its reason and announces nothing.

No Prefect here: the gateway and the CLI import this without the orchestrator's start-up cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from flows.commands import Actor, Command, Context, Verdict, attempt_key, handles
from flows.incidents.rules import (
    Duplicate,
    Refused,
    State,
    Update,
    accepted_id,
    check,
    refused_update,
    stage_of,
)
from schemas.events import IncidentUpdatedEvent
from schemas.payloads import DecisionChannel, IncidentUpdated, IncidentUpdateKind
from schemas.policy import IncidentStage, Policy
from schemas.records import CorrectiveAction, IncidentUpdate, Nonconformity

if TYPE_CHECKING:
    from connectors.register.store import Register, UnitOfWork

SOURCE = "urn:aims:incidents"
# The label handle-incident puts on every incident's Jira issue: the gateway dispatches by it.
ISSUE_LABEL = "aims-incident"


@dataclass(frozen=True, kw_only=True)
class UpdateIncident(Command):
    """Someone telling the AIMS about an incident: contained, reported, its cause, an action …"""

    incident_id: str
    kind: IncidentUpdateKind
    detail: str = ""
    action_id: str | None = None
    owner: str | None = None  # plan-action only
    due: date | None = None  # plan-action only

    @classmethod
    def of(cls, update: Update, delivery: tuple[str, ...] = ()) -> UpdateIncident:
        """The command an `Update` states (the CLI builds its update first, to check it)."""
        return cls(
            actor=Actor(update.by, DecisionChannel(update.channel)),
            at=update.at,
            delivery=delivery,
            incident_id=update.incident_id,
            kind=update.kind,
            detail=update.detail,
            action_id=update.action_id,
            owner=update.owner,
            due=update.due,
        )

    def describe(self) -> str:
        return f"{self.kind.value} of incident {self.incident_id}"

    def update(self) -> Update:
        return Update(
            incident_id=self.incident_id,
            kind=self.kind,
            by=self.actor.name,
            channel=self.actor.channel.value,
            at=self.at,
            detail=self.detail,
            action_id=self.action_id,
            owner=self.owner,
            due=self.due,
        )


@handles(UpdateIncident)
def update_incident(command: UpdateIncident, ctx: Context) -> Verdict:
    """The handler: the update through `submit`."""
    return submit(ctx.register, ctx.policy, command.update(), ctx.topic, command.refusal_id())


def nonconformity_id(incident_id: str) -> str:
    return f"{incident_id}/NC"


def load_state(uow: UnitOfWork, incident_id: str) -> State | None:
    incident = uow.incidents.get(incident_id)
    if incident is None:
        return None
    nc = uow.nonconformities.get(nonconformity_id(incident_id))
    actions = uow.corrective_actions.find(nonconformity_id=nonconformity_id(incident_id), order_by="id")
    # A1 … A9, A10: by number, not by text.
    actions.sort(key=lambda a: int(a.id.rsplit("/A", 1)[-1]) if a.id.rsplit("/A", 1)[-1].isdigit() else 0)
    return State(incident, nc, tuple(actions))


def resolve_action(state: State, ref: str | None) -> str | None:
    """`A2` or the full action id → the full id (people type the short form)."""
    if ref is None:
        return None
    for action in state.actions:
        if ref in (action.id, action.id.rsplit("/", 1)[-1]):
            return action.id
    return ref


def updated_event(update: IncidentUpdate, stage: IncidentStage) -> IncidentUpdatedEvent:
    return IncidentUpdatedEvent(
        specversion="1.0",
        id=update.id,
        source=SOURCE,
        time=update.at,
        data=IncidentUpdated(
            incident_id=update.incident_id,
            update_id=update.id,
            kind=update.kind,
            by=update.by,
            channel=update.channel,
            detail=update.detail,
            action_id=update.action_id,
            status=stage.value,
            at=update.at,
        ),
    )


def submit(
    register: Register, policy: Policy, update: Update, topic: str, refusal_id: str | None = None
) -> Verdict:
    """Check and record one update; nothing is announced unless it was accepted."""
    from dataclasses import replace

    if update.channel not in {c.value for c in DecisionChannel}:
        raise ValueError(f"unknown channel {update.channel!r}: use one of {', '.join(DecisionChannel)}")
    # People are compared trimmed and case-blind; recorded and announced trimmed.
    update = replace(update, by=update.by.strip())
    with register.unit_of_work(f"{update.channel}:{update.by}") as uow:
        return _submit(uow, policy, update, topic, refusal_id)


def _submit(uow: UnitOfWork, policy: Policy, update: Update, topic: str, refusal_id: str | None) -> Verdict:
    from connectors.register.outbox import stage

    state = load_state(uow, update.incident_id)
    if state is None:
        return Verdict.refusal(f"there is no incident {update.incident_id!r}")
    update = _with_action(state, update)
    verdict = check(state, update, policy)
    if isinstance(verdict, Duplicate):
        return Verdict("duplicate", f"already recorded ({verdict.what})", state=stage_of(state).value)
    if isinstance(verdict, Refused):
        key = refusal_id or attempt_key(update.incident_id, update.kind.value, update.by, str(update.at))
        refused = refused_update(update, verdict.why, key)
        fresh = uow.incident_updates.add_if_absent(refused)
        return Verdict.refusal(
            verdict.why,
            logged=True,
            fresh=fresh,
            record=refused,
            state=stage_of(state).value,
            ref=refused.action_id,
        )
    message = _apply(uow, state, update)
    after = load_state(uow, update.incident_id)
    assert after is not None
    now_at = stage_of(after)
    if after.incident.status != now_at.value:
        uow.incidents.update(update.incident_id, status=now_at.value)
    earlier = uow.incident_updates.count(
        incident_id=update.incident_id, kind=update.kind.value, accepted=True
    )
    record = IncidentUpdate(
        id=accepted_id(update, earlier + 1),
        incident_id=update.incident_id,
        kind=update.kind.value,
        by=update.by,
        channel=update.channel,
        detail=update.detail.strip(),
        action_id=update.action_id,
        at=update.at,
    )
    uow.incident_updates.add(record)
    keys = stage(uow, [updated_event(record, now_at)], topic)
    return Verdict(
        "accepted", message, keys=tuple(keys), record=record, state=now_at.value, ref=record.action_id
    )


def _with_action(state: State, update: Update) -> Update:
    from dataclasses import replace

    if update.kind is IncidentUpdateKind.plan_action:
        return replace(update, action_id=f"{update.incident_id}/A{len(state.actions) + 1}")
    return replace(update, action_id=resolve_action(state, update.action_id))


def _apply(uow: UnitOfWork, state: State, update: Update) -> str:
    incident, kind, at = state.incident, update.kind, update.at
    detail = update.detail.strip()
    if kind is IncidentUpdateKind.contain:
        uow.incidents.update(incident.id, contained_at=at)
        return "containment recorded"
    if kind is IncidentUpdateKind.report:
        uow.incidents.update(incident.id, reported_to_authority_at=at, authority_reference=detail)
        return f"authority report {detail} recorded; the Art. 73 clock is stopped"
    nc_id = nonconformity_id(incident.id)
    if kind is IncidentUpdateKind.root_cause:
        if state.nonconformity is None:
            uow.nonconformities.add(
                Nonconformity(
                    id=nc_id,
                    source="incident",
                    source_ref=incident.id,
                    description=f"{incident.title} ({incident.system})",
                    root_cause=detail,
                    opened_at=at,
                )
            )
        else:
            uow.nonconformities.update(nc_id, root_cause=detail)
        return "root cause recorded (10.2)"
    if kind is IncidentUpdateKind.plan_action:
        assert update.action_id is not None and update.owner is not None and update.due is not None
        uow.corrective_actions.add(
            CorrectiveAction(
                id=update.action_id,
                nonconformity_id=nc_id,
                description=detail,
                owner=update.owner.strip(),
                due=update.due,
            )
        )
        uow.nonconformities.update(nc_id, status="actions-planned")
        return f"corrective action {update.action_id.rsplit('/', 1)[-1]} planned"
    if kind is IncidentUpdateKind.action_done:
        assert update.action_id is not None
        uow.corrective_actions.update(update.action_id, status="done", done_at=at)
        return f"action {update.action_id.rsplit('/', 1)[-1]} done; its effectiveness is still to be checked"
    if kind is IncidentUpdateKind.verify_action:
        assert update.action_id is not None
        uow.corrective_actions.update(
            update.action_id, status="verified", effectiveness=detail, verified_by=update.by, verified_at=at
        )
        others = [a for a in state.actions if a.id != update.action_id and a.status != "verified"]
        if not others:
            uow.nonconformities.update(nc_id, status="verified")
        return f"effectiveness of action {update.action_id.rsplit('/', 1)[-1]} verified"
    uow.incidents.update(incident.id, closed_at=at)
    if state.nonconformity is not None:
        uow.nonconformities.update(nc_id, status="closed", closed_at=at)
    return "incident closed"
