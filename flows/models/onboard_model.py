"""Onboard a newly registered model version: the first step of its risk and approval path.

Records the AI system (first time it is seen) and the model version, then asks for the version's
risk assessment in the same transaction, so the assessment always finds what it assesses.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task

from flows.evidence import names_its_run, publish_summary, reassessment_request, record_evidence, send_outbox
from schemas.events import ModelVersionRegisteredEvent, RiskReassessmentRequestedEvent
from schemas.payloads import ModelVersionRegistered, ReassessmentReason
from schemas.records import AISystem, ModelVersion, Record

FLOW = "onboard-model"


@task(name="summarise-model-version")
def summarise_model_version(model: ModelVersionRegistered) -> dict[str, Any]:
    unversioned = [d.dataset_id for d in model.training_datasets if d.version is None]
    return {
        "ai_system": model.ai_system,
        "model": f"{model.name} v{model.version}",
        "owner": model.owner,
        "risk_tier": model.risk_tier.value if model.risk_tier else "unknown: assessment needed",
        "training_datasets": len(model.training_datasets),
        # Provenance (A.7.5) needs the exact version of every dataset used.
        "datasets_without_version": ", ".join(unversioned) or "none",
        "provenance_complete": not unversioned and bool(model.training_datasets),
    }


def onboarding_headline(outcome: dict[str, Any]) -> str:
    """What onboarding found, in one sentence, first in the run's artifact."""
    provenance = (
        "training data provenance complete"
        if outcome["provenance_complete"]
        else f"provenance incomplete (datasets without version: {outcome['datasets_without_version']})"
    )
    return (
        f"{outcome['model']} of {outcome['ai_system']} recorded (owner {outcome['owner']});"
        f" {provenance}; risk reassessment requested"
    )


def model_version_id(model: ModelVersionRegistered) -> str:
    return f"{model.ai_system}/{model.name}/{model.version}"


def register_records(event: ModelVersionRegisteredEvent) -> list[Record]:
    """The inventory entry (first time the system is seen) and the model version."""
    model = event.data
    return [
        AISystem(
            name=model.ai_system,
            owner=model.owner,
            intended_use=model.intended_use,
            risk_tier=model.risk_tier,
        ),
        ModelVersion(
            id=model_version_id(model),
            system=model.ai_system,
            model_name=model.name,
            version=model.version,
            source_uri=model.source_uri,
            submitted_by=model.owner,
            datasets=[ModelVersion.dataset_ref(d.dataset_id, d.version) for d in model.training_datasets],
            event_key=event.dedup_key,
        ),
    ]


def reassessment_for(event: ModelVersionRegisteredEvent) -> RiskReassessmentRequestedEvent:
    """The version's initial risk assessment; its id derives from the version, so it is asked once."""
    model = event.data
    version_id = model_version_id(model)
    return reassessment_request(
        FLOW,
        f"reassess:{version_id}",
        model.ai_system,
        ReassessmentReason.new_model_version,
        version_id,
        {"model": model.name, "version": model.version},
    )


@flow(
    name=FLOW,
    description="Record a registered model version and what its onboarding needs.",
    flow_run_name=names_its_run(FLOW),
)
def onboard_model(event: ModelVersionRegisteredEvent) -> dict[str, Any]:
    outcome = summarise_model_version(event.data)
    request = reassessment_for(event)
    keys = record_evidence(FLOW, event, outcome, register_records(event), announce=[request])
    send_outbox(FLOW, keys)
    title = f"Model version registered: {outcome['model']}"
    publish_summary(FLOW, title, event, outcome, onboarding_headline(outcome))
    return outcome
