"""Incident updates from a verified Slack click or Jira transition, onto the one update path.

The gateway has checked the signature already; here the click or the transition becomes an
`Update` for `flows.incidents.commands.submit`, which the CLI calls too. A refused update is recorded
and answered where it was made: an ephemeral Slack reply, or a Jira comment with the issue moved
back to the status it came from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from flows.approvals.commands import attempt_key
from flows.incidents.commands import Result, submit
from flows.incidents.messages import SLACK_ACTIONS
from flows.incidents.rules import Update
from schemas.payloads import DecisionChannel, IncidentUpdateKind
from schemas.policy import IncidentStage

if TYPE_CHECKING:
    from connectors.jira_issues import IssueTracker
    from connectors.register.store import Register
    from schemas.policy import Policy

log = logging.getLogger("aims.gateway")

# The stage a person moved the Jira issue to → the update it records (the comment is its detail).
JIRA_MOVES = {
    IncidentStage.contained: IncidentUpdateKind.contain,
    IncidentStage.reported_to_authority: IncidentUpdateKind.report,
    IncidentStage.corrective_action: IncidentUpdateKind.root_cause,
    IncidentStage.closed: IncidentUpdateKind.close,
}


@dataclass
class Handled:
    result: Result
    later: list[Callable[[], object]] = field(default_factory=list)


def incident_of(action_value: str, kind: IncidentUpdateKind) -> tuple[str, str | None]:
    """A button's value is the incident id, or for the action buttons the action id <incident>/A<n>."""
    if kind in (IncidentUpdateKind.action_done, IncidentUpdateKind.verify_action):
        incident, _, _ = action_value.rpartition("/")
        return incident, action_value
    return action_value, None


class IncidentDesk:
    def __init__(
        self,
        register: Register,
        policy: Callable[[], Policy],
        topic: str,
        tracker: IssueTracker | None,
    ) -> None:
        self.register = register
        self.policy = policy
        self.topic = topic
        self.tracker = tracker

    def slack(self, action_id: str, value: str, person: str, note: str, delivery: str) -> Result:
        kind = SLACK_ACTIONS[action_id]
        incident_id, action = incident_of(value, kind)
        update = Update(
            incident_id=incident_id,
            kind=kind,
            by=person,
            channel=DecisionChannel.slack.value,
            at=datetime.now(UTC),
            detail=note,
            action_id=action,
        )
        return self._submit(update, attempt_key("slack", value, action_id, delivery))

    def jira(
        self,
        issue: str,
        to_status: str,
        from_status: str,
        person: str,
        comment: str,
        at: datetime,
        delivery: str,
    ) -> Handled | None:
        """None when the issue is no incident's, or the move is not one that records anything."""
        with self.register.reader() as uow:
            found = uow.incidents.find(jira_issue=issue, limit=1)
        if not found:
            return None
        policy = self.policy()
        by_status = {status.casefold(): stage for stage, status in policy.incidents.jira_statuses.items()}
        stage = by_status.get(to_status.casefold())
        kind = JIRA_MOVES.get(stage) if stage is not None else None
        if kind is None:
            return None
        update = Update(
            incident_id=found[0].id,
            kind=kind,
            by=person,
            channel=DecisionChannel.jira.value,
            at=at,
            detail=comment,
        )
        result = self._submit(update, attempt_key("jira", issue, person, delivery))
        handled = Handled(result)
        if result.status == "refused" and result.fresh and self.tracker is not None:
            tracker = self.tracker
            text = f"AIMS did not record this move by {person}: {result.message}."

            def answer() -> None:
                # Put the issue back, so Jira does not show a state the register does not hold.
                if not from_status or not tracker.transition(issue, from_status, text):
                    tracker.comment(issue, text)

            handled.later.append(answer)
        return handled

    def _submit(self, update: Update, refusal_id: str) -> Result:
        result = submit(self.register, self.policy(), update, self.topic, refusal_id)
        log.info(
            "%s %s of incident %s by %s via %s: %s",
            result.status,
            update.kind.value,
            update.incident_id,
            update.by,
            update.channel,
            result.message,
        )
        return result
