"""What `collect-evidence` does for the controls that are due: pure, from what the register holds.

Each due control without a request in its period gets one `EvidenceRequest`: the collections it
starts (events, staged with the request in one unit of work) and who is asked. A dataset or an AI
system is collected once per run however many controls want it, with an event id made of it and
the period, so a re-run starts nothing twice. Asks go one message per person, listing their controls.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from flows.data_quality.recheck import recheck_event
from flows.freshness.rules import Collection, ControlFreshness, Status, collections
from schemas.events import AimsEvent, RiskReassessmentRequestedEvent
from schemas.evidence_policy import EvidenceFreshness
from schemas.payloads import ReassessmentReason, RiskReassessmentRequested
from schemas.records import AISystem, DatasetVersion, EvidenceRequest, LifecycleStage

SOURCE = "urn:aims:collect-evidence"
PENDING = "pending"
CANNOT = "cannot re-check"


@dataclass
class Plan:
    requests: list[EvidenceRequest] = field(default_factory=list)
    events: list[AimsEvent] = field(default_factory=list)
    # person (email) → the lines to ask them, one message each
    asks: dict[str, list[str]] = field(default_factory=dict)


def _day(at: datetime) -> str:
    return f"{at:%Y%m%d}"


def _newest(control: ControlFreshness) -> str:
    if control.newest_at is None:
        return "no evidence at all"
    return f"newest evidence {control.newest_at:%Y-%m-%d}, older than {control.max_age.days} days"


def plan(
    due: Sequence[ControlFreshness],
    already: Iterable[str],
    datasets: Sequence[DatasetVersion],
    systems: Sequence[AISystem],
    policy: EvidenceFreshness,
    now: datetime,
) -> Plan:
    """Requests for the `due` controls not in `already` (request ids), with what each starts."""
    done = set(already)
    out = Plan()
    started: dict[tuple[Collection, str], str] = {}  # (collection, target) → what it says, once a run
    in_use = [s for s in systems if s.lifecycle_stage is not LifecycleStage.retired]
    for control in due:
        assert control.status in (Status.stale, Status.missing) and control.period_start is not None
        if control.request_id in done:
            continue
        period = _day(control.period_start)
        started_here: list[str] = []
        asked: list[str] = []
        for kind in collections(control):
            started_here += _collect(kind, control, period, datasets, in_use, now, out, started)
            if kind is Collection.impact_reminders:
                for system in in_use:
                    # The system's owner assesses its impact, when the register knows how to reach them.
                    owner = system.owner if "@" in system.owner else policy.owner(control.id)
                    line = f"the impact assessment of {system.name} (A.5) is due again: assess it"
                    asked.append(_ask(out, owner, line))
        if not any(not s.startswith(CANNOT) for s in started_here) and not asked:
            # Nothing the AIMS runs renews it (or there is nothing to run it on): a person supplies it.
            line = (
                f"{control.id} {control.title}: {_newest(control)}; supply evidence with "
                f"`aims evidence add {control.id} --by YOU --note ...`"
            )
            asked.append(_ask(out, policy.owner(control.id), line))
        out.requests.append(
            EvidenceRequest(
                id=control.request_id,
                control=control.id,
                status=control.status.value,
                period_start=control.period_start,
                collections=started_here,
                asked=asked,
                requested_at=now,
            )
        )
    return out


def _ask(out: Plan, owner: str | None, line: str) -> str:
    if owner is None:
        return "nobody: the policy names no owner (evidence.owners); kept in the register"
    lines = out.asks.setdefault(owner, [])
    if line not in lines:
        lines.append(line)
    return f"{owner}: {PENDING}"


def _collect(
    kind: Collection,
    control: ControlFreshness,
    period: str,
    datasets: Sequence[DatasetVersion],
    systems: Sequence[AISystem],
    now: datetime,
    out: Plan,
    started: dict[tuple[Collection, str], str],
) -> list[str]:
    """Stage the collection's events (once a run per target); what it started, for the request."""
    said: list[str] = []
    key: tuple[Collection, str]
    if kind is Collection.recheck_datasets:
        for version in datasets:
            key = (kind, version.dataset)
            if key not in started:
                event_id = f"freshness:{version.dataset}:{version.version}:{period}"
                try:
                    out.events.append(recheck_event(version, event_id, SOURCE, now))
                    started[key] = f"data check of {version.dataset} {version.version}"
                except ValidationError:
                    started[key] = f"{CANNOT} {version.dataset} {version.version}: its record makes no event"
            said.append(started[key])
    elif kind is Collection.reassess_systems:
        for system in systems:
            key = (kind, system.name)
            if key not in started:
                out.events.append(
                    RiskReassessmentRequestedEvent(
                        specversion="1.0",
                        id=f"freshness:{system.name}:{period}",
                        source=SOURCE,
                        time=now,
                        data=RiskReassessmentRequested(
                            ai_system=system.name,
                            reason=ReassessmentReason.scheduled,
                            evidence=f"evidence-request:{control.request_id}",
                            details={"control": control.id, "why": _newest(control)},
                        ),
                    )
                )
                started[key] = f"risk reassessment of {system.name}"
            said.append(started[key])
    return said
