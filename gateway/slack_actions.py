"""The Slack action table: one row per button (action id) → the command its click gives.

As slack-bolt registers one listener per action id: a click on an approval's Approve or Reject
button is a `DecideApproval`, a click on an incident's buttons an `UpdateIncident`. Adding a button
is one row. The clicker is the identity Slack signed (`Actor`); what they typed in the message's
input block travels with the click.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flows.approvals.commands import DecideApproval
from flows.approvals.messages import APPROVE_ACTION, REASON_BLOCK, REASON_INPUT, REJECT_ACTION
from flows.commands import Actor, Command
from flows.incidents.commands import UpdateIncident
from flows.incidents.messages import DONE_ACTION, NOTE_BLOCK, NOTE_INPUT, SLACK_ACTIONS
from gateway.payloads import BlockActions, SlackAction
from schemas.payloads import Decision, IncidentUpdateKind


@dataclass(frozen=True)
class Click:
    """One click on a button, by a person the gateway has named."""

    payload: BlockActions
    action: SlackAction
    value: str
    actor: Actor

    @property
    def delivery(self) -> str:
        # A retried delivery of the same click carries the same action_ts.
        return self.action.action_ts or ""


@dataclass(frozen=True)
class Row:
    command: Callable[[Click], Command]
    # Incident buttons win over approval buttons when one payload carries both (as they always did).
    rank: int
    # An action's owner may mark it done without being in the policy: looked up by Slack's email.
    owner_may_act: bool = False


def decision(choice: Decision) -> Callable[[Click], Command]:
    def command(click: Click) -> Command:
        return DecideApproval(
            actor=click.actor,
            approval_id=click.value,
            decision=choice,
            reason=click.payload.typed(REASON_BLOCK, REASON_INPUT),
            delivery=("slack", click.value, click.payload.user.id, click.delivery),
        )

    return command


def incident_of(action_value: str, kind: IncidentUpdateKind) -> tuple[str, str | None]:
    """A button's value is the incident id, or for the action buttons the action id <incident>/A<n>."""
    if kind in (IncidentUpdateKind.action_done, IncidentUpdateKind.verify_action):
        incident, _, _ = action_value.rpartition("/")
        return incident, action_value
    return action_value, None


def incident_update(action_id: str, kind: IncidentUpdateKind) -> Callable[[Click], Command]:
    def command(click: Click) -> Command:
        incident_id, action = incident_of(click.value, kind)
        return UpdateIncident(
            actor=click.actor,
            incident_id=incident_id,
            kind=kind,
            detail=click.payload.typed(NOTE_BLOCK, NOTE_INPUT),
            action_id=action,
            delivery=("slack", click.value, action_id, f"{click.payload.user.id}:{click.delivery}"),
        )

    return command


ACTIONS: dict[str, Row] = {
    **{
        action_id: Row(incident_update(action_id, kind), 0, owner_may_act=action_id == DONE_ACTION)
        for action_id, kind in SLACK_ACTIONS.items()
    },
    APPROVE_ACTION: Row(decision(Decision.approve), 1),
    REJECT_ACTION: Row(decision(Decision.reject), 1),
}


def clicked(payload: BlockActions) -> tuple[SlackAction, Row] | None:
    """The click this payload answers, or None when it is no click on one of our buttons."""
    if payload.type != "block_actions":
        return None
    clicks = [a for a in payload.actions if a.action_id in ACTIONS and a.value]
    if not clicks:
        return None
    first = min(clicks, key=lambda a: ACTIONS[a.action_id].rank)  # stable: the payload's order next
    return first, ACTIONS[first.action_id]
