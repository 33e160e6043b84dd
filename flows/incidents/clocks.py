"""The Art. 73 clock of an incident and its reminders. Pure: no clock, no I/O.

The clock runs from detection; the shortest deadline among the matching criteria applies. Triage
(flows.incidents.rules) starts it; the clock watcher plans its reminders with `clock_plan`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flows.notices import notice_id
from schemas.payloads import Art73Criterion, IncidentCategory
from schemas.policy import Art73Clock
from schemas.records import Incident

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
