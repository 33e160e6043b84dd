"""The flows as Prefect's own workers run them: the entrypoints that `prefect.yaml` names.

`aims worker` hands each run to a flow-run process it started ahead of time (`infra/warm_engine.py`),
which builds the run's resources before the flow starts. Prefect's own process worker (and its
Kubernetes worker, by configuration) instead starts `python -m prefect.engine` for each run; that
imports the deployment's entrypoint and runs the flow at once, with no composition root of ours
before it. This module is that root for those workers, so that the warm worker is an optimisation
and not a requirement:

- importing it lets flow code build its resources from the settings the first time it asks for them
  (`flows.runtime.provide`), as the warm engine builds them before the run;
- each flow here carries hooks that rebuild the dashboard once its run has ended, as the warm engine
  does after the run (`flows.dashboard.hook`).

Importing it opens nothing: `prefect deploy` imports it too, to read the flows' parameters, on a
machine that may have no register. The names below are the flows' function names, so that an
entrypoint reads like the flow's own (`infra/flow_process.py:onboard_model`); `tests/infra/
test_prefect_yaml.py` holds them, `prefect.yaml` and `flows.catalog.FLOWS` to each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flows.catalog import flow_spec
from flows.runtime import Runtime, current, provide

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.client.schemas.objects import FlowRun
    from prefect.client.schemas.objects import State as PrefectState


class _ProcessRuntime:
    """Builds the run's resources on first use and notes the register's audit head at that moment:
    nothing of the run has written yet, so a head that moved by the end means the run changed the
    register (what the warm engine notes before it starts the run)."""

    def __init__(self) -> None:
        self.head: int | None = None

    def build(self) -> Runtime:
        from flows.dashboard.hook import register_head
        from infra.resources import flow_runtime

        runtime = flow_runtime()
        self.head = register_head(runtime)
        return runtime


_PROCESS = _ProcessRuntime()
provide(_PROCESS.build)


def _rebuild_dashboard(flow: Flow[..., Any], flow_run: FlowRun, state: PrefectState[Any]) -> None:
    """Prefect's state hook: the run has ended (completed, failed, crashed or cancelled)."""
    from flows.dashboard.hook import after_run

    after_run(current(), _PROCESS.head, flow.name, failed=not state.is_completed())


def _entry(name: str) -> Flow[..., Any]:
    flow = flow_spec(name).load()
    hooks = [_rebuild_dashboard]
    return flow.with_options(
        on_completion=[*flow.on_completion_hooks, *hooks],
        on_failure=[*flow.on_failure_hooks, *hooks],
        on_crashed=[*flow.on_crashed_hooks, *hooks],
        on_cancellation=[*flow.on_cancellation_hooks, *hooks],
    )


onboard_model = _entry("onboard-model")
write_back_to_mlflow = _entry("write-back-to-mlflow")
check_data_quality = _entry("check-data-quality")
handle_incident = _entry("handle-incident")
track_incident = _entry("track-incident")
watch_incident_clocks = _entry("watch-incident-clocks")
reassess_risk = _entry("reassess-risk")
schedule_risk_reviews = _entry("schedule-risk-reviews")
request_approval = _entry("request-approval")
chase_approvals = _entry("chase-approvals")
hold_management_review = _entry("hold-management-review")
collect_evidence = _entry("collect-evidence")
