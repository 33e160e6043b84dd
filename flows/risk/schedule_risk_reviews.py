"""Ask for the planned reassessment (8.2) of every AI system whose next risk review has come.

Runs daily on its deployment's schedule (or on demand, with an `as_of` date to look from). A system
is due when one of its risks' `next_review` dates has passed, or when it has never been assessed.
Retired systems are not. The requests go through the outbox like any other, with ids made of the
system and the day, so running twice on one day asks once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from prefect import flow, task

from flows.evidence import actor, names_its_run, reassessment_request, register, run_settings, send_outbox
from schemas.payloads import ReassessmentReason
from schemas.records import AISystem, LifecycleStage

FLOW = "schedule-risk-reviews"
# Every day at 06:00 UTC, before the working day of the people who may have to approve.
SCHEDULE = "0 6 * * *"


def due_review(system: AISystem, reviews: list[date | None], day: date) -> str | None:
    """Why the system is due on `day` ("2026-05-01", "never assessed"), or None if it is not."""
    if system.lifecycle_stage is LifecycleStage.retired:
        return None
    if not reviews:
        return "never assessed"
    dates = [d for d in reviews if d is not None]
    if not dates:
        return "no review date"
    first = min(dates)
    return first.isoformat() if first <= day else None


@task(name="request-due-reassessments")
def request_due(day: date, only: list[str] | None) -> tuple[list[dict[str, Any]], list[str]]:
    from connectors.register.outbox import stage

    due: list[dict[str, Any]] = []
    with register().unit_of_work(actor(FLOW)) as uow:
        for system in uow.systems.find(order_by="name"):
            if only is not None and system.name not in only:
                continue
            why = due_review(system, [r.next_review for r in uow.risks.find(system=system.name)], day)
            if why is not None:
                due.append({"system": system.name, "next_review": why})
        requests = [
            reassessment_request(
                FLOW,
                f"scheduled:{d['system']}:{day.isoformat()}",
                d["system"],
                ReassessmentReason.scheduled,
                f"risk-review:{d['next_review']}",
                {"due": d["next_review"], "as_of": day.isoformat()},
            )
            for d in due
        ]
        keys = stage(uow, requests, run_settings().events_topic)
    return due, keys


@flow(
    name=FLOW,
    description="Request the planned risk reassessment of every AI system that is due.",
    flow_run_name=names_its_run(FLOW),
)
def schedule_risk_reviews(as_of: date | None = None, systems: list[str] | None = None) -> dict[str, Any]:
    """`as_of`: the day to look from (today); `systems`: review only these, if due (all by default)."""
    day = as_of or datetime.now(UTC).date()
    due, keys = request_due(day, systems)
    sent = send_outbox(FLOW, keys)
    return {"as_of": day.isoformat(), "due": [d["system"] for d in due], "requested": len(keys), "sent": sent}
