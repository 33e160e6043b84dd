"""Write an AI system's register state back onto its MLflow model versions (issue 21, "written back").

Started by every risk-assessed and approval-decided event. The decision is already in the register
when this runs: the run reads the system's versions, assessments and approvals, computes what MLflow
should say (`flows.models.mlflow_writeback`, pure) and brings MLflow there — the aims.* tags and the
policy's approved alias — then records what it wrote as evidence. Each MLflow call is retried by the
connector; the writing task and the run are retried on top; a run that still fails is a failed run
in the Prefect UI, and any later run (or a re-run) converges, since nothing depends on the event but
the system it names. After writing, the run reads the register again and writes once more if it
changed meanwhile, so a slower run never leaves an older state behind a newer one.

Skipped, with the reason recorded, when no tracking server is set (AIMS_MLFLOW_TRACKING_URI), when
the policy writes nothing back, or when none of the system's versions came from MLflow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import flow, task

from flows.evidence import (
    actor,
    evidence_record,
    load_policy,
    names_its_run,
    publish_summary,
    register,
    run_settings,
)
from flows.models.mlflow_writeback import Plan, links_of, outcome_of, plan_of, write, write_back_headline
from flows.runtime import current
from schemas.events import ApprovalDecidedEvent, RiskAssessedEvent

FLOW = "write-back-to-mlflow"


def system_of(event: RiskAssessedEvent | ApprovalDecidedEvent) -> str | None:
    """The AI system the event concerns; an approval names it, or its register row does."""
    data = event.data
    if data.ai_system is not None:
        return data.ai_system
    approval_id = getattr(data, "approval_id", None)
    with register().reader() as uow:
        approval = uow.approvals.get(approval_id) if approval_id else None
    return approval.system if approval is not None else None


@task(name="plan-write-back")
def plan_for(system: str) -> Plan | str:
    """What MLflow should say of the system's versions, or why nothing is written."""
    with register().reader() as uow:
        return plan_of(uow, system, load_policy().mlflow.write_back, links_of(run_settings()))


@task(name="write-to-mlflow", retries=3, retry_delay_seconds=[5, 15, 30])
def apply(wanted: Plan) -> dict[str, list[str]]:
    """Bring MLflow to `wanted`; what was changed. Reads first, so a repeat changes nothing."""
    mlflow = current().mlflow
    assert mlflow is not None  # the flow checked
    return write(mlflow, wanted)


@task(name="record-write-back")
def record(event: RiskAssessedEvent | ApprovalDecidedEvent, outcome: dict[str, Any]) -> None:
    """The evidence of what was written; a repeat of the same event adds nothing (keyed by event)."""
    with register().unit_of_work(actor(FLOW)) as uow:
        uow.evidence.add_if_absent(evidence_record(FLOW, event, outcome))


@flow(
    name=FLOW,
    description="Write an AI system's assessment and approval state onto its MLflow model versions.",
    flow_run_name=names_its_run(FLOW),
    retries=2,
    retry_delay_seconds=30,
)
def write_back_to_mlflow(event: RiskAssessedEvent | ApprovalDecidedEvent) -> dict[str, Any]:
    system = system_of(event)
    wanted: Plan | str
    if system is None:
        wanted = "the event names no AI system and its approval is not in the register"
    elif current().mlflow is None:
        wanted = "no MLflow tracking server is set (AIMS_MLFLOW_TRACKING_URI)"
    else:
        wanted = plan_for(system)
    if isinstance(wanted, str):
        outcome: dict[str, Any] = {"ai_system": system, "written": False, "why": wanted}
    else:
        assert system is not None
        outcome = outcome_of(system, wanted, converge(wanted, lambda: plan_for(system), apply))
        title = f"Written back to MLflow: {system}"
        publish_summary(FLOW, title, event, outcome, write_back_headline(outcome))
    record(event, outcome)
    return outcome


def converge(
    wanted: Plan,
    replan: Callable[[], Plan | str],
    write: Callable[[Plan], dict[str, list[str]]],
    passes: int = 3,
) -> dict[str, list[str]]:
    """Write, then read the register again (`replan`): a decision recorded while this run wrote (and
    whose own run may have finished first) would otherwise be overwritten by this run's older plan."""
    written: dict[str, list[str]] = {"tags_set": [], "aliases": []}
    for _ in range(passes):
        for key, changes in write(wanted).items():
            written[key] += changes
        again = replan()
        if isinstance(again, str) or again == wanted:
            break
        wanted = again
    return written
