"""The routing table: event type → the deployments it starts, with their parameters.

This is the only place that knows which flow handles what. Adding an event type is a payload model
and its declaration in `schemas/events.py` (`DECLARATIONS`) plus one row here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flows.run_tags import DEPLOYMENT, approval_tag, coalescing_tag, run_name, subject_tags
from schemas.events import (
    APPROVAL_DECIDED,
    APPROVAL_DECISION_SUBMITTED,
    APPROVAL_REQUESTED,
    DATA_CHANGED,
    DATA_QUALITY_VALIDATED,
    INCIDENT_REPORTED,
    INCIDENT_UPDATED,
    MODEL_VERSION_REGISTERED,
    REVIEW_REQUESTED,
    RISK_ASSESSED,
    RISK_REASSESSMENT_REQUESTED,
    AimsEvent,
)


def _whole_event(event: AimsEvent) -> dict[str, Any]:
    return {"event": event.model_dump(mode="json")}


def decision_input(event: AimsEvent) -> dict[str, Any]:
    """The `DecisionInput` a waiting request-approval run resumes with (validated by Prefect again)."""
    data = event.data.model_dump(mode="json")
    return {k: data[k] for k in ("approver", "decision", "reason", "channel", "decision_id")}


@dataclass(frozen=True)
class Route:
    deployment: str  # "<flow-name>/<deployment-name>"
    # The run's parameters; for a resume route, the run input it resumes with.
    parameters: Callable[[AimsEvent], dict[str, Any]] = _whole_event
    # Runs with the same coalescing tag start a window after their event (the policy's
    # `data_quality.coalesce_seconds`); a run that finds a later one with its tag stands down.
    coalesce_tag: Callable[[AimsEvent], str] | None = None
    # A tag the run carries for good, so a later event can find it (e.g. the run awaiting a decision).
    tag: Callable[[AimsEvent], str] | None = None
    # Resume the suspended run of this deployment that carries `tag`, instead of starting one.
    resume: bool = False

    @property
    def flow_name(self) -> str:
        return self.deployment.split("/", 1)[0]


# A type with no routes is known and recorded in the register, but starts nothing (yet): outcome
# events that other systems consume.
ROUTES: Mapping[str, tuple[Route, ...]] = {
    MODEL_VERSION_REGISTERED: (Route(f"onboard-model/{DEPLOYMENT}"),),
    DATA_CHANGED: (Route(f"check-data-quality/{DEPLOYMENT}", coalesce_tag=coalescing_tag),),
    INCIDENT_REPORTED: (Route(f"handle-incident/{DEPLOYMENT}"),),
    # Every trigger of a risk assessment (new model version, failed check, drift, incident, schedule,
    # a person) is this one request, so the assessment has a single entry point.
    RISK_REASSESSMENT_REQUESTED: (Route(f"reassess-risk/{DEPLOYMENT}"),),
    # The request waits suspended; each validated decision resumes it (DESIGN decision 4).
    APPROVAL_REQUESTED: (Route(f"request-approval/{DEPLOYMENT}", tag=approval_tag),),
    APPROVAL_DECISION_SUBMITTED: (
        Route(f"request-approval/{DEPLOYMENT}", decision_input, tag=approval_tag, resume=True),
    ),
    DATA_QUALITY_VALIDATED: (),
    # What the register now says is written back onto the system's MLflow versions (tags, alias).
    RISK_ASSESSED: (Route(f"write-back-to-mlflow/{DEPLOYMENT}"),),
    APPROVAL_DECIDED: (Route(f"write-back-to-mlflow/{DEPLOYMENT}"),),
    # Recorded and checked before it is announced; the run shows it in Slack and Jira.
    INCIDENT_UPDATED: (Route(f"track-incident/{DEPLOYMENT}"),),
    # Scheduled reviews come from the deployment's schedule; requested ones from here. The review id
    # is the request's, so however often it is delivered one review is prepared.
    REVIEW_REQUESTED: (Route(f"hold-management-review/{DEPLOYMENT}"),),
}


def labels(route: Route, event: AimsEvent) -> tuple[str, list[str]]:
    """The name and tags of the run a route starts for an event: what a person reads and filters by
    in the Prefect UI (the coalescing tag, which depends on the policy, is the router's to add)."""
    tags = [route.tag(event)] if route.tag is not None else []
    return run_name(route.flow_name, event), list(dict.fromkeys([*tags, *subject_tags(event)]))


def routes_for(event_type: str) -> tuple[Route, ...]:
    return ROUTES.get(event_type, ())
