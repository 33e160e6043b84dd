"""watch-incident-clocks: remind before an Art. 73 report falls due, and say so when it is overdue.

Runs every 15 minutes on its deployment's schedule (or on demand with `as_of`, to look from
another time). Every serious incident whose report to the authority is not recorded has an open
clock; at each of the policy's `regulatory.art73.reminders` fractions of its time, and once when it
is due, the incident channel's alert thread and the Jira issue are told.

Each notice is a register row keyed <incident>:<kind>:<step>, so each goes out once however often
the schedule runs; a watcher that was down sends the latest threshold only, never a burst.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger, task

from flows.evidence import actor, chat, load_policy, names_its_run, register, tracker
from flows.incidents.clocks import ClockDue, clock_open, clock_plan, format_left, time_left
from flows.incidents.messages import clock_text
from flows.notices import notice_id
from flows.text import jira_text
from schemas.records import Incident, IncidentNotice

FLOW = "watch-incident-clocks"
SCHEDULE = "*/15 * * * *"


def _tell(incident: Incident, due: ClockDue, now: datetime) -> list[str]:
    text = clock_text(incident, now, overdue=due.kind == "clock-overdue")
    sent: list[str] = []
    slack, issues = chat(), tracker()
    if slack is not None and incident.slack_channel and incident.slack_ts:
        slack.post(incident.slack_channel, text, thread_ts=incident.slack_ts)
        sent.append(f"slack:{incident.slack_channel}")
    elif slack is not None:
        ref = slack.post(load_policy().incidents.slack_channel, text)
        sent.append(f"slack:{ref.channel}")
    if issues is not None and incident.jira_issue:
        overdue = due.kind == "clock-overdue"
        issues.comment(incident.jira_issue, clock_text(incident, now, overdue=overdue, escape=jira_text))
        sent.append(f"jira:{incident.jira_issue}")
    return sent


@task(name="remind-incident-clock", retries=2, retry_delay_seconds=[5, 30])
def remind(incident: Incident, due: ClockDue, now: datetime) -> list[str]:
    key = notice_id(incident.id, due.kind, due.step)
    with register().reader() as uow:
        if uow.incident_notices.get(key) is not None:
            return []  # a retried or overlapping run sent it already
    sent = _tell(incident, due, now)
    with register().unit_of_work(actor(FLOW)) as uow:
        uow.incident_notices.add_if_absent(
            IncidentNotice(id=key, incident_id=incident.id, kind=due.kind, step=due.step, recipients=sent)
        )
    return sent


@flow(
    name=FLOW,
    description="Remind before Art. 73 reports fall due; flag the overdue ones.",
    flow_run_name=names_its_run(FLOW),
)
def watch_incident_clocks(
    as_of: datetime | None = None, incidents: list[str] | None = None
) -> dict[str, Any]:
    now = as_of or datetime.now(UTC)
    art73 = load_policy().regulatory.art73
    with register().reader() as uow:
        found = uow.incidents.find(serious=True)
        sent = {n.id for n in uow.incident_notices.find()}
    open_clocks = [i for i in found if clock_open(i) and (incidents is None or i.id in incidents)]
    told: dict[str, list[str]] = {}
    for incident in open_clocks:
        for due in clock_plan(incident, art73, now, sent):
            told[notice_id(incident.id, due.kind, due.step)] = remind(incident, due, now)
    left = {i.id: format_left(t) for i in open_clocks if (t := time_left(i, now)) is not None}
    get_run_logger().info("%d open clocks, %d notices sent", len(open_clocks), len(told))
    return {"as_of": now.isoformat(), "open_clocks": left, "sent": told}
