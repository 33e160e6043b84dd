"""Which event type starts (or resumes) which flows: written out by hand, not read from `ROUTES`.

Not a test module. `tests/events/test_routing_table.py` compares it with `events/routing.py`, and the
end-to-end test expects the runs it names, so a row changed by mistake in `ROUTES` fails both.
Adding an event type means adding its row here too, on purpose.
"""

from __future__ import annotations

from types import MappingProxyType

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
)

# type -> (flow names it starts, flow names whose waiting run it resumes)
FLOWS_BY_TYPE = MappingProxyType(
    {
        MODEL_VERSION_REGISTERED: (("onboard-model",), ()),
        DATA_CHANGED: (("check-data-quality",), ()),
        INCIDENT_REPORTED: (("handle-incident",), ()),
        RISK_REASSESSMENT_REQUESTED: (("reassess-risk",), ()),
        APPROVAL_REQUESTED: (("request-approval",), ()),
        APPROVAL_DECISION_SUBMITTED: ((), ("request-approval",)),
        INCIDENT_UPDATED: (("track-incident",), ()),
        REVIEW_REQUESTED: (("hold-management-review",), ()),
        # Written back onto the system's MLflow versions (issue 21).
        RISK_ASSESSED: (("write-back-to-mlflow",), ()),
        APPROVAL_DECIDED: (("write-back-to-mlflow",), ()),
        # An outcome event: recorded, starts nothing.
        DATA_QUALITY_VALIDATED: ((), ()),
    }
)


def started_flow(event_type: str) -> str:
    """The one flow an event type starts (for types that start exactly one)."""
    (flow,) = FLOWS_BY_TYPE[event_type][0]
    return flow
