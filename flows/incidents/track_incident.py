"""track-incident: bring the Slack alert and the Jira issue up to date after an accepted update.

Started by every `org.aims.incident.updated` event, which `flows.incidents.commands.submit` stages
when an update from Slack, Jira or the CLI is accepted. The run reads the incident as the register
holds it now, so runs that overlap or arrive late still leave both channels showing the truth:

- Slack: the alert is rewritten (facts, progress, a button for each next step) and the update is
  posted in its thread;
- Jira: the issue is moved to the status of the incident's stage (policy `incidents.jira_statuses`)
  when it is elsewhere, and the update is commented.

Each post is keyed in the register (`incident_notice`), so a retried run posts nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger, task

from flows.evidence import (
    actor,
    chat,
    evidence_record,
    load_policy,
    names_its_run,
    publish_summary,
    register,
    tag_this_run,
    tracker,
)
from flows.incidents.commands import load_state
from flows.incidents.messages import alert_blocks, alert_text, update_line
from flows.incidents.rules import State, stage_of
from flows.notices import notice_id
from flows.run_tags import system_tag
from flows.text import jira_text
from schemas.events import IncidentUpdatedEvent
from schemas.policy import IncidentStage
from schemas.records import IncidentNotice

FLOW = "track-incident"


def _state(incident_id: str) -> State:
    with register().reader() as uow:
        state = load_state(uow, incident_id)
    if state is None:
        raise LookupError(f"no incident {incident_id!r} in the register")
    return state


def _sent(key: str) -> bool:
    with register().reader() as uow:
        return uow.incident_notices.get(key) is not None


def _mark(incident_id: str, key: str, kind: str, step: str, recipients: list[str]) -> None:
    with register().unit_of_work(actor(FLOW)) as uow:
        uow.incident_notices.add_if_absent(
            IncidentNotice(id=key, incident_id=incident_id, kind=kind, step=step, recipients=recipients)
        )


@task(name="refresh-slack-alert", retries=3, retry_delay_seconds=[2, 10, 30])
def refresh_slack(event: IncidentUpdatedEvent) -> str:
    from connectors.slack import MessageRef

    slack = chat()
    data = event.data
    state = _state(data.incident_id)
    incident = state.incident
    if slack is None:
        return "Slack not configured"
    if not incident.slack_ts or not incident.slack_channel:
        # The alert is not posted yet; handle-incident posts it from the register's state.
        return "no alert yet"
    ref = MessageRef(incident.slack_channel, incident.slack_ts)
    slack.update(ref, alert_text(incident, stage_of(state)), alert_blocks(state, datetime.now(UTC)))
    key = notice_id(incident.id, "update-slack", data.update_id)
    if not _sent(key):
        line = update_line(data.kind.value, data.by, data.channel.value, data.detail, data.action_id)
        slack.post(ref.channel, line, thread_ts=ref.ts)
        _mark(incident.id, key, "update-slack", data.update_id, [ref.channel, ref.ts])
    return "updated"


def _behind(status: str, stage: IncidentStage, statuses: Mapping[IncidentStage, str]) -> bool:
    """True when the issue shows an earlier stage than the register's.

    Only forward: a person's move ahead (say, to Closed) is being recorded through its webhook right
    now, and a run that read the register a moment earlier must not drag the issue back.
    """
    order = list(IncidentStage)
    shown = next((s for s, name in statuses.items() if name.casefold() == status.casefold()), None)
    return shown is None or order.index(shown) < order.index(stage)


@task(name="move-jira-issue", retries=3, retry_delay_seconds=[2, 10, 30])
def move_issue(event: IncidentUpdatedEvent) -> str:

    issues = tracker()
    data = event.data
    state = _state(data.incident_id)
    incident = state.incident
    if issues is None:
        return "Jira not configured"
    if not incident.jira_issue:
        return "no issue yet"
    key = notice_id(incident.id, "update-jira", data.update_id)
    if _sent(key):
        return "already told"
    line = update_line(data.kind.value, data.by, data.channel.value, data.detail, data.action_id, jira_text)
    statuses = load_policy().incidents.jira_statuses
    stage = stage_of(_state(data.incident_id))  # read again: people move the issue meanwhile
    wanted = statuses.get(stage)
    moved = False
    if wanted and _behind(issues.status(incident.jira_issue), stage, statuses):
        moved = issues.transition(incident.jira_issue, wanted, comment=f"AIMS: {line}")
        if not moved:
            get_run_logger().warning("Jira offers no %r transition on %s", wanted, incident.jira_issue)
    if not moved:
        issues.comment(incident.jira_issue, f"AIMS: {line}")
    _mark(incident.id, key, "update-jira", data.update_id, [incident.jira_issue])
    return f"moved to {wanted}" if moved else "commented"


@task(name="record-tracking")
def record(event: IncidentUpdatedEvent, outcome: dict[str, Any]) -> None:
    with register().unit_of_work(actor(FLOW)) as uow:
        uow.evidence.add_if_absent(evidence_record(FLOW, event, outcome))


@flow(
    name=FLOW,
    description="Show an incident's accepted update in its Slack alert and its Jira issue.",
    flow_run_name=names_its_run(FLOW),
)
def track_incident(event: IncidentUpdatedEvent) -> dict[str, Any]:
    outcome: dict[str, Any] = {
        "incident": event.data.incident_id,
        "update": event.data.kind.value,
        "by": event.data.by,
        "channel": event.data.channel.value,
        "status": event.data.status,
    }
    # The event names the incident only: its system comes from the register, for the UI's filters.
    system = _state(event.data.incident_id).incident.system
    tag_this_run([system_tag(system)])
    outcome["slack"] = refresh_slack(event)
    outcome["jira"] = move_issue(event)
    record(event, outcome)
    d = event.data
    headline = (
        f"{d.kind.value} by {d.by} via {d.channel.value}: the incident on {system} is now {d.status};"
        f" Slack {outcome['slack']}, Jira {outcome['jira']}"
    )
    publish_summary(FLOW, f"Incident update on {system}", event, outcome, headline)
    return outcome
