"""Every flow, listed once: its name, where its function lives, and what starts it besides events.

Deployments (`infra/deployments.py`), the worker (which runs these flows and pre-imports them)
and the tests that hold the ISO/IEC 42001 catalogue and the routing table to the flows that exist
all read this list. A flow's name is its Prefect flow name and the first half of its deployment
("<name>/aims"): routes and suspended runs find it by that name, so it never changes.

Prefect-free: nothing here imports a flow until `load` is called.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect import Flow


class Schedule(StrEnum):
    """What starts a flow other than the events routed to it (`events/routing.py`)."""

    none = "none"  # events only
    cron = "cron"  # its module's `SCHEDULE`
    calendar = "calendar"  # the policy's management-review calendar (9.3)


class Profile(StrEnum):
    """Which warm flow-run processes the worker hands the flow's runs to (`infra/warm_worker.py`)."""

    plain = "plain"
    gx = "gx"  # has Great Expectations imported already


@dataclass(frozen=True)
class FlowSpec:
    name: str
    module: str
    function: str
    schedule: Schedule = Schedule.none
    profile: Profile = Profile.plain

    def load(self) -> Flow[..., Any]:
        """The Prefect flow itself (imports its module, and so Prefect)."""
        flow: Flow[..., Any] = getattr(importlib.import_module(self.module), self.function)
        return flow

    def cron(self) -> str:
        """The module's cron expression, for a flow on `Schedule.cron`."""
        if self.schedule is not Schedule.cron:
            raise ValueError(f"flow {self.name!r} runs on {self.schedule.value}, not on a cron")
        return str(importlib.import_module(self.module).SCHEDULE)


# In the order of the catalogue (schemas/iso42001.yaml), activity by activity.
FLOWS: tuple[FlowSpec, ...] = (
    FlowSpec("onboard-model", "flows.models.onboard_model", "onboard_model"),
    FlowSpec("write-back-to-mlflow", "flows.models.write_back_to_mlflow", "write_back_to_mlflow"),
    FlowSpec(
        "check-data-quality",
        "flows.data_quality.check_data_quality",
        "check_data_quality",
        profile=Profile.gx,
    ),
    FlowSpec("handle-incident", "flows.incidents.handle_incident", "handle_incident"),
    FlowSpec("track-incident", "flows.incidents.track_incident", "track_incident"),
    FlowSpec(
        "watch-incident-clocks",
        "flows.incidents.watch_incident_clocks",
        "watch_incident_clocks",
        Schedule.cron,
    ),
    FlowSpec("reassess-risk", "flows.risk.reassess_risk", "reassess_risk"),
    FlowSpec(
        "schedule-risk-reviews", "flows.risk.schedule_risk_reviews", "schedule_risk_reviews", Schedule.cron
    ),
    FlowSpec("request-approval", "flows.approvals.request_approval", "request_approval"),
    FlowSpec("chase-approvals", "flows.approvals.chase_approvals", "chase_approvals", Schedule.cron),
    FlowSpec(
        "hold-management-review",
        "flows.reviews.hold_management_review",
        "hold_management_review",
        Schedule.calendar,
    ),
    FlowSpec("collect-evidence", "flows.freshness.collect_evidence", "collect_evidence", Schedule.cron),
)


def flow_names() -> list[str]:
    return [f.name for f in FLOWS]


def flow_spec(name: str) -> FlowSpec:
    for spec in FLOWS:
        if spec.name == name:
            return spec
    raise KeyError(f"no flow {name!r}; the flows are {', '.join(flow_names())}")
